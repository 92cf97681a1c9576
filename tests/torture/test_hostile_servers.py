"""Hostile server responses: a small HTTP server answering malformed, enormous, deeply
nested, mistyped, slow or looping responses in place of the GitHub API, the health endpoint
and the Prometheus API. The hotfix fails or rolls back with a clear message, in bounded time,
with no traceback, and no journal row swallows an enormous body."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.store import Hotfix
from tests.torture.harness import FIGURES, Result, copy_store, merge, parallel, toml_dumps
from tests.torture.hostile_inputs import SERVER_CASES, Reply
from tests.torture.sandbox import ISSUE, Sandbox

ROW_LIMIT = 256 * 1024  # no journal payload may hold an enormous body
VERIFY_TIMEOUT = 2.0
REQUEST_TIMEOUT = 1.0


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that hung up on a hostile answer is expected


class HostileServer:
    """Answers every request with one ``Reply``; ``stop()`` ends drips and joins threads."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests = 0
        self.stopping = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                r = outer.reply
                with contextlib.suppress(OSError):
                    self.send_response(r.status)
                    for name, value in r.headers:
                        self.send_header(name, value)
                    size = r.content_length if r.content_length is not None else len(r.body)
                    self.send_header("Content-Length", str(size))
                    self.end_headers()
                    if not r.drip:
                        self.wfile.write(r.body)
                    else:
                        for i in range(len(r.body)):
                            if outer.stopping.wait(r.drip):
                                break
                            self.wfile.write(r.body[i : i + 1])
                            self.wfile.flush()
                    if r.content_length is not None:
                        self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@contextlib.contextmanager
def hostile(reply: Reply) -> Iterator[HostileServer]:
    server = HostileServer(reply)
    try:
        yield server
    finally:
        server.stop()


def _check(sb: Sandbox, db: Path, name: str, result: Result, found: list[str]) -> None:
    where = f"{name}: exit {result.code}"
    text = str(result)
    if result.code not in (ExitCode.OK, ExitCode.FAILED, ExitCode.USAGE, ExitCode.PAUSED):
        found.append(f"{where}: unexpected exit code\n{text[-1500:]}")
    for bad in ("Traceback (most recent call last)", "unexpected error", "likely a bug"):
        if bad in text:
            found.append(f"{where}: {bad!r} in the output\n{text[-1500:]}")
            break
    with sb.store_at(db) as store:
        hotfix = store.find(ISSUE)
        big = [e.seq for e in store.journal(hotfix.id) if len(json.dumps(e.payload)) > ROW_LIMIT]
    if big:
        found.append(f"{where}: journal rows {big} are larger than {ROW_LIMIT} bytes")


@dataclass
class Stages:
    """One sandbox driven to three checkpoints; each case resumes a copy of one of them."""

    sb: Sandbox
    stores: dict[str, Path]

    def case(self, stage: str, name: str, changes: dict[str, Any], found: list[str]) -> Hotfix:
        base = self.sb.base / "cases" / f"{stage}-{name}"
        db = copy_store(self.stores[stage], base / "hotfix.db")
        config = base / "hotfix.toml"
        config.write_text(toml_dumps(merge(self.sb.read_config(), changes)))
        # The hotfix pinned its configuration at start: the hostile one is taken explicitly.
        result = self.sb.cli(
            "--db",
            str(db),
            "--config",
            str(config),
            *self.sb.resume_args(),
            "--reload-config",
            timeout=150,
        )
        _check(self.sb, db, f"{stage} {name}", result, found)
        with self.sb.store_at(db) as store:
            return store.find(ISSUE)


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stages]:
    """pushed (next: open the PR), deployed (next: verify), verified (next: monitor)."""
    with Sandbox(tmp_path_factory.mktemp("stages")) as sb:
        stores: dict[str, Path] = {}
        first = sb.start_args()
        for stage, failpoint in (
            ("pushed", "push"),
            ("deployed", "deploy"),
            ("verified", "verify"),
        ):
            args = first if not stores else sb.resume_args()
            killed = sb.cli(*args, env={"HOTFIX_FSM_FAILPOINTS": f"{failpoint}:after_done"})
            assert killed.killed, str(killed)
            stores[stage] = copy_store(sb.db, sb.base / "stages" / f"{stage}.db")
        yield Stages(sb, stores)


def _github_case(stages: Stages, name: str, found: list[str]) -> None:
    with hostile(SERVER_CASES[name]) as server:
        changes = {
            "github": {"api_url": server.url, "request_timeout": 1, "max_retries": 2},
            "retry_limit": 2,
        }
        hotfix = stages.case("pushed", f"github-{name}", changes, found)
    if hotfix.state not in ("failed", "pushed"):
        found.append(f"github {name}: ended {hotfix.state} against a hostile GitHub")
    FIGURES.add(
        "inputs", category="server:github", tried=int(server.requests > 0), requests=server.requests
    )


def _health_case(stages: Stages, name: str, found: list[str]) -> None:
    with hostile(SERVER_CASES[name]) as server:
        verify = {
            "url": f"{server.url}/health",
            "timeout": VERIFY_TIMEOUT,
            "request_timeout": REQUEST_TIMEOUT,
        }
        changes = {"verify": verify, "rollback": {"policy": "never"}, "monitor": {"enabled": False}}
        hotfix = stages.case("deployed", f"health-{name}", changes, found)
    if hotfix.state not in ("failed", "done") and not hotfix.paused_reason:
        found.append(f"health {name}: ended {hotfix.state} instead of a verdict on production")
    took = hotfix.context.get("_durations", {}).get("verify") or 0
    if took > VERIFY_TIMEOUT + REQUEST_TIMEOUT + 2:
        found.append(f"health {name}: verify took {took:.1f}s (verify.timeout {VERIFY_TIMEOUT}s)")
    FIGURES.add(
        "inputs", category="server:health", tried=int(server.requests > 0), requests=server.requests
    )


def _prometheus_case(stages: Stages, name: str, found: list[str]) -> None:
    with hostile(SERVER_CASES[name]) as server:
        metric = {
            "name": "errors",
            "source": "prometheus",
            "query": "error_rate",
            "success": "< 5",
            "failure": ">= 10",
        }
        changes = {
            "monitor": {"prometheus_url": server.url, "metrics": [metric]},
            "rollback": {"policy": "never"},
        }
        hotfix = stages.case("verified", f"prometheus-{name}", changes, found)
    if hotfix.state not in ("failed", "done") and not hotfix.paused_reason:
        found.append(f"prometheus {name}: ended {hotfix.state}")
    FIGURES.add(
        "inputs",
        category="server:prometheus",
        tried=int(server.requests > 0),
        requests=server.requests,
    )


GITHUB_CLEAR = ["short-body", "redirect-loop", "status-999"]
GITHUB_MALFORMED = [n for n in SERVER_CASES if n not in (*GITHUB_CLEAR, "slow-drip")]
HEALTH = [n for n in SERVER_CASES if n not in ("deep-nesting", "slow-drip")]
PROMETHEUS = ["malformed-json", "html", "nan", "enormous", "json-array", "wrong-types"]


def _all(
    kind: str, names: list[str], run: Callable[[Stages, str, list[str]], None], stages: Stages
) -> None:
    found: list[str] = []
    parallel(lambda n: run(stages, n, found), names, workers=4)
    assert not found, f"{len(found)} hostile {kind} responses mishandled:\n" + "\n".join(found)


def test_hostile_github_api(stages: Stages) -> None:
    _all("GitHub", GITHUB_CLEAR, _github_case, stages)


def test_github_bodies_that_are_not_the_expected_json(stages: Stages) -> None:
    _all("GitHub", GITHUB_MALFORMED, _github_case, stages)


def test_hostile_health_endpoint(stages: Stages) -> None:
    _all("health", HEALTH, _health_case, stages)


def test_hostile_prometheus_api(stages: Stages) -> None:
    _all("Prometheus", PROMETHEUS, _prometheus_case, stages)


def test_deeply_nested_health_body_is_judged_unhealthy(stages: Stages) -> None:
    found: list[str] = []
    _health_case(stages, "deep-nesting", found)
    assert not found, "\n".join(found)


def test_trickling_health_body_respects_the_timeouts(stages: Stages) -> None:
    """A body trickled a byte at a time (7 s in all) is cut at request_timeout (1 s), so
    verify ends within verify.timeout (2 s) plus one call."""
    found: list[str] = []
    _health_case(stages, "slow-drip", found)
    assert not found, "\n".join(found)
