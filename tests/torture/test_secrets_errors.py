"""Secrets in error text never leak: a property test over phases that fail saying a secret.

A phase's exception text is the path a secret most easily takes: an HTTP client echoing its
``Authorization`` header, a test suite printing its environment, a tool quoting the webhook it
could not reach. Each example draws a GitHub-shaped token (``ghp_`` + 36 alphanumerics, never
registered: the shape alone must mask it) and a random token of no particular shape that the
configuration registers (the GitHub token value, literal or through ``token_env``, and a Slack
webhook URL on no Slack host), puts them in a failure, and searches everything the failure
left behind:

* **library use** — a ``HotfixEngine`` with a custom phase whose ``run`` raises
  ``PermanentError`` (the secret in message and hint), ``TransientError`` (retried, then given
  up on) or a bare ``RuntimeError`` (an unexpected error: its traceback is logged), with
  ``configure_logging(-vv)``;
* **CLI use** — the ``hotfix`` command against the rehearsal world, with a tests gate that
  prints the tokens from its environment and fails (its output is the failure's text).

Searched: every column of every journal and hotfix row (read with ``sqlite3``, not the store
code), the store's raw bytes, every file under the state directory (JSON logs, gate logs),
``hotfix report``/``status --json``/``log``/``log --json`` output, and the stdout/stderr of
every process (of the test process itself in library use) and the drive's ``Outcome``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import string
import sys
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hotfix_fsm.config import config_from_mapping
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import ExitCode, PermanentError, TransientError
from hotfix_fsm.log import configure_logging, reset_logging
from hotfix_fsm.phases.base import PhaseContext
from tests.engine.world import NoAlerts, World, WorldPhase, world_phases
from tests.torture.harness import FIGURES, ForkPool
from tests.torture.sandbox import ISSUE, Sandbox
from tests.torture.test_secrets import distinctive

ALNUM = string.ascii_letters + string.digits
EXAMPLES = 10
_counter = itertools.count()

shaped_token = st.text(ALNUM, min_size=36, max_size=36).map(lambda body: f"ghp_{body}")
# No shape the redactor knows: only the registration masks it.
plain_token = st.text(ALNUM + "-_.~+/=!$%&*()[]{}|;:,<>?@^", min_size=16, max_size=48).filter(
    distinctive
)
url_part = st.text(ALNUM + "-_.~", min_size=16, max_size=40).filter(distinctive)
ERRORS = {"permanent": PermanentError, "transient": TransientError, "runtime": RuntimeError}

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # A failing example is reported as drawn: shrinking process runs would take minutes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _rows(db: Path) -> dict[str, bytes]:
    """Every column of every journal and hotfix row, read without the store code."""
    out: dict[str, bytes] = {}
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        for table in ("journal", "hotfixes"):
            cursor = conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            names = [d[0] for d in cursor.description]
            for i, row in enumerate(cursor.fetchall()):
                for name, value in zip(names, row, strict=True):
                    data = value if isinstance(value, bytes) else str(value).encode()
                    out[f"{table} row {i} column {name}"] = data
    return out


def _files(root: Path, skip: Collection[Path] = ()) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path not in skip and ".git/objects" not in str(path):
            yield str(path.relative_to(root)), path.read_bytes()


def _leaks(texts: dict[str, bytes], secrets: list[str]) -> list[str]:
    return [
        f"{s[:8]}… in {where}"
        for s in secrets
        for where, data in texts.items()
        if s.encode() in data
    ]


def _inspect(pool: ForkPool, env: dict[str, str], cwd: Path, stem: Path) -> dict[str, bytes]:
    """What ``report``, ``status --json``, ``log`` and ``log --json`` print."""
    texts: dict[str, bytes] = {}
    for i, args in enumerate(
        (("report", ISSUE), ("status", ISSUE, "--json"), ("log", ISSUE), ("log", ISSUE, "--json"))
    ):
        result = pool.run(
            ("-vv", *args), env=env, cwd=cwd, stem=stem.with_name(f"{stem.name}-{i}"), timeout=60
        )
        assert result.code == ExitCode.OK, str(result)
        texts[f"hotfix {' '.join(args)}"] = (result.out + result.err).encode()
    return texts


def _record(texts: dict[str, bytes], secrets: list[str], hotfix_id: str, where: str) -> None:
    # The search has teeth: the hotfix id is in the rows, the logs and the outputs.
    seen = sum(1 for data in texts.values() if hotfix_id.encode() in data)
    assert seen > 10, f"{where}: the hotfix id is in only {seen} places"
    leaks = _leaks(texts, secrets)
    FIGURES.add("secrets", searched=len(secrets), places=len(texts), leaks=len(leaks), where=where)
    assert not leaks, f"secrets leaked ({where}):\n" + "\n".join(leaks)


# -- library use ---------------------------------------------------------------------------


class LeakyPhase(WorldPhase):
    """A phase whose effect fails with the secrets in its message (and hint)."""

    def __init__(self, name: str, world: World, error: str, secrets: list[str]) -> None:
        super().__init__(name, world)
        self.error = error
        self.secrets = secrets
        self.raised = 0

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        self.raised += 1
        text = "the server answered 401 for Authorization: token {} (webhook {}, key {})".format(
            *self.secrets
        )
        if self.error == "runtime":
            raise RuntimeError(text)
        raise ERRORS[self.error](text, hint=f"check the token {self.secrets[1]} and resume")


@SETTINGS
@given(
    shaped=shaped_token,
    token=plain_token,
    hook=url_part,
    error=st.sampled_from(sorted(ERRORS)),
    phase=st.sampled_from(["push", "deploy", "merge"]),
)
def test_library_phase_error_never_leaks_a_secret(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    forks: ForkPool,
    shaped: str,
    token: str,
    hook: str,
    error: str,
    phase: str,
) -> None:
    base = tmp_path / f"lib-{next(_counter)}"
    state, repo = base / "state", base / "repo"
    repo.mkdir(parents=True)
    db = base / "hotfix.db"
    slack = f"https://chat.example.test/services/T0/B0/{hook}"
    secrets = [shaped, slack, token]
    world = World()
    phases = world_phases(world)
    leaky = LeakyPhase(phase, world, error, secrets)
    phases[phase] = leaky
    config = config_from_mapping(
        {"github": {"token": token}, "alerts": {"slack_webhook": slack}, "retry_limit": 2}
    )
    capfd.readouterr()
    configure_logging(2, state_dir=state, colors=False)
    try:
        with HotfixEngine(
            db,
            phases=phases,
            services={"alerts": lambda _s: NoAlerts()},
            config=config,
            preflight=lambda _s, _c, _i: {"base_sha": "b" * 40},
            backoff_base=0.001,
        ) as engine:
            events: list[str] = []
            engine.subscribe(lambda event: events.append(repr(event)))
            hotfix = engine.start(ISSUE, "Fix the token check", repo=repo, yes=True)
            outcome = engine.drive(hotfix.id)
            again = engine.drive(hotfix.id)  # resumed: fails the same way, journaled again
    finally:
        reset_logging()
    captured = capfd.readouterr()
    assert leaky.raised >= 2, "the phase never failed"
    assert (outcome.state, again.state) == ("failed", "failed"), (outcome, again)
    texts: dict[str, bytes] = dict(_rows(db))
    texts.update((f"store file {n}", d) for n, d in _files(base) if n.startswith("hotfix.db"))
    texts.update((f"state/{n}", d) for n, d in _files(state))
    if error != "permanent":  # a retry and a crash are logged (a permanent error is not)
        assert any(n.endswith("log.jsonl") for n in texts), "no JSON log was written"
    env = {
        "HOTFIX_FSM_DB": str(db),
        "HOTFIX_FSM_STATE_DIR": str(state),
        "XDG_STATE_HOME": str(base / "xdg"),
        "XDG_CONFIG_HOME": str(base / "xdg-config"),
        "COLUMNS": "200",
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(base),
    }
    texts.update(_inspect(forks, env, repo, base / "inspect"))
    texts["test process stdout/stderr"] = (captured.out + captured.err).encode()
    texts["outcomes"] = f"{outcome!r}\n{again!r}".encode()
    texts["subscribed events"] = "\n".join(events).encode()
    _record(texts, [*secrets, hook], hotfix.id, f"library:{error}:{phase}")


# -- CLI use -------------------------------------------------------------------------------

# A tests gate that prints what its environment holds, then fails; with TORTURE_LONG, in
# one line of some 300 kB (a minified bundle, a JSON dump): the gate log is written in pieces.
PRINTER = (
    "import os, sys\n"
    "shaped, token = os.environ['TORTURE_SHAPED'], os.environ['TORTURE_TOKEN']\n"
    "print('auth failed for', shaped, 'and', token)\n"
    "print('Authorization: token ' + token, file=sys.stderr)\n"
    "if os.environ.get('TORTURE_LONG'):\n"
    "    sys.stdout.write((' ' + shaped + ' ' + token) * (300_000 // (len(token) + 42)))\n"
    "sys.exit(1)\n"
)


@SETTINGS
@given(shaped=shaped_token, token=plain_token, via_env=st.booleans(), long=st.booleans())
def test_cli_gate_failure_never_leaks_a_secret(
    tmp_path: Path, forks: ForkPool, shaped: str, token: str, via_env: bool, long: bool
) -> None:
    sb = Sandbox(tmp_path / f"cli-{next(_counter)}")
    try:
        _cli_example(sb, forks, shaped, token, via_env, long)
    finally:
        sb.stop()


def _cli_example(
    sb: Sandbox, forks: ForkPool, shaped: str, token: str, via_env: bool, long: bool
) -> None:
    sb.running.github.tokens = frozenset({token})
    sb.configure(
        {
            "github": {
                "token": "" if via_env else token,
                "token_env": "TORTURE_TOKEN" if via_env else "",
            },
            "gates": {"tests": {"command": [sys.executable, "-c", PRINTER]}},
        }
    )
    sb.env.update(TORTURE_SHAPED=shaped, TORTURE_TOKEN=token, TORTURE_LONG="1" if long else "")
    failed = sb.cli("-vv", *sb.start_args())
    assert failed.code == ExitCode.FAILED, str(failed)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "failed", hotfix.state
    assert "gate tests failed" in failed.err + failed.out, str(failed)
    texts: dict[str, bytes] = dict(_rows(sb.db))
    # Process outputs (runs/), the state dir (JSON and gate logs), the store's raw bytes and
    # the rehearsal world's files; not the configuration, which holds the token on purpose.
    texts.update(_files(sb.base, {Path(sb.info.config)}))
    gate_logs = [n for n in texts if "/gates/" in n]
    assert gate_logs, "the gate wrote no log"
    for i, args in enumerate(
        (("report", ISSUE), ("status", ISSUE, "--json"), ("log", ISSUE), ("log", ISSUE, "--json"))
    ):
        shown = sb.quick(forks, "-vv", *args)
        assert shown.code == ExitCode.OK, str(shown)
        texts[f"hotfix {' '.join(args)} ({i})"] = (shown.out + shown.err).encode()
    where = f"cli:gate:{'env' if via_env else 'toml'}{':long-line' if long else ''}"
    _record(texts, [shaped, token], hotfix.id, where)
