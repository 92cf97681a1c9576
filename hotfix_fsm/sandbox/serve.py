"""Serve a sandbox: the rehearsal GitHub API and production app on 127.0.0.1.

``serve_sandbox(DIR)`` starts both servers in background threads of this process, keeps
their state under DIR (so a restart loses nothing), reuses the ports recorded in
``DIR/sandbox.json`` when they are free (so ``hotfix.toml`` stays valid across restarts),
sets the keys it owns in the work tree's ``hotfix.toml`` (the URLs and the token; the
user's other keys and comments are kept) and writes ``sandbox.json``. A successful deploy
or rollback run sets the production app's running version.

One server per directory: ``DIR/serve.lock`` is locked (``flock``) for the server's life and
names its pid and URLs. A second ``serve`` of the same directory is refused with the name of
the process serving it; the lock of a process that died (even by SIGKILL) is released by the
kernel, so the next ``serve`` takes it over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from hotfix_fsm.errors import UsageError
from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from hotfix_fsm.sandbox.github_state import EFFECT_KEYS
from hotfix_fsm.sandbox.production_app import STATE_FILE, ProductionApp
from hotfix_fsm.sandbox.refhook import read_ref_log
from hotfix_fsm.sandbox.world import (
    TOKEN_ENV,
    SandboxInfo,
    build_sandbox,
    load_info,
    update_config,
)

LOCK_FILE = "serve.lock"

# Quick CI and workflow runs: a drill should take seconds, not minutes.
FAST_TIMINGS: dict[str, float] = {"ci_seconds": 0.4, "run_queued_seconds": 0.1, "run_seconds": 0.4}


def _start_on(make: Callable[[int], Any], port: int) -> Any:
    """Start a server on ``port``; on a taken port fall back to a free one."""
    server = make(port)
    try:
        server.start()
    except OSError:
        server = make(0)
        server.start()
    return server


class ServeLock:
    """The lock that makes one process the server of a sandbox directory.

    ``flock`` on ``DIR/serve.lock``, held while the servers run: the kernel releases it when
    the process ends however it ends, so a stale lock (a dead pid in the file) is simply
    taken. The file is written in place (never replaced: a new file would be a new lock).
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._busy() from None
        self._fd = fd
        # A dead server's record, if any, is replaced whole.
        self._write({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})

    def record(self, data: dict[str, Any]) -> None:
        """Add what the lock's holder serves (ports, URLs) to the lock file."""
        self._write({**(self.holder() or {}), **data})

    def _write(self, data: dict[str, Any]) -> None:
        if self._fd is None:
            return
        blob = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, blob + b"\n", 0)

    def holder(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8") or "null")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # an empty lock file: nobody serves the directory
        finally:
            os.close(fd)  # closing drops the flock

    def _busy(self) -> UsageError:
        held = self.holder() or {}
        who = f"process {held['pid']}" if held.get("pid") else "another process"
        if held.get("host") and held["host"] != socket.gethostname():
            who += f" on {held['host']}"
        since = (
            time.strftime(" (since %Y-%m-%d %H:%M:%S)", time.localtime(float(held["since"])))
            if isinstance(held.get("since"), (int, float))
            else ""
        )
        urls = ""
        if held.get("github_url") or held.get("production_url"):
            urls = (
                f": GitHub API {held.get('github_url', '?')}, production "
                f"{held.get('production_url', '?')}"
            )
        stop = f"`kill {held['pid']}`" if held.get("pid") else "stop it"
        return UsageError(
            f"the sandbox {self.path.parent} is already served by {who}{since}{urls}",
            hint=f"use that server (its URLs are in {self.path.parent / 'sandbox.json'}), or "
            f"stop it first (Ctrl-C in its terminal, or {stop}) and serve again",
        )


@dataclass
class RunningSandbox:
    """Both servers of a sandbox, running in this process; a context manager."""

    info: SandboxInfo
    github: RehearsalGitHub
    production: ProductionApp
    lock: ServeLock | None = field(default=None, repr=False)
    # What was done to hotfix.toml (which owned keys were set, or why it was left alone).
    config_notes: list[str] = field(default_factory=list)
    _stopped: bool = field(default=False, repr=False)

    @property
    def urls(self) -> dict[str, str]:
        return {
            "github": self.info.github_url,
            "production": self.info.production_url,
            "health": self.info.health_url,
        }

    def effects(self) -> dict[str, Any]:
        """Everything the world recorded: GitHub effects, ref log, production versions."""
        out: dict[str, Any] = dict(self.github.effects())
        snap = self.production.snapshot()
        out["production_versions"] = [{"version": v} for v in snap.get("versions_seen", [])]
        out["pagerduty_events"] = list(snap.get("pagerduty_events", []))
        return out

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.github.stop()
        finally:
            try:
                self.production.stop()
            finally:
                if self.lock is not None:
                    self.lock.release()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_sandbox(
    root: str | os.PathLike[str],
    *,
    timings: dict[str, float] | None = None,
    host: str = "127.0.0.1",
) -> RunningSandbox:
    """Start the sandbox in ``root`` (built by ``build_sandbox``); return the running servers.

    Raises ``UsageError`` (naming the process) when another server holds the directory.
    """
    info = load_info(root)
    base = Path(info.root)
    lock = ServeLock(base)
    lock.acquire()
    try:
        return _serve_locked(info, base, lock, timings, host)
    except BaseException:
        lock.release()
        raise


def _serve_locked(
    info: SandboxInfo,
    base: Path,
    lock: ServeLock,
    timings: dict[str, float] | None,
    host: str,
) -> RunningSandbox:
    t = {**FAST_TIMINGS, **(timings or {})}
    tokens = {info.token}
    env_token = os.environ.get(TOKEN_ENV)
    if env_token:
        tokens.add(env_token)
    production = _start_on(
        lambda port: ProductionApp(
            base / "production", version=info.production_sha, host=host, port=port
        ),
        info.production_port,
    )
    try:
        github = _start_on(
            lambda port: RehearsalGitHub(
                base / "github",
                Path(info.origin),
                tokens=tokens,
                on_deploy=production.on_deploy,
                host=host,
                port=port,
                ci_seconds=t["ci_seconds"],
                run_queued_seconds=t["run_queued_seconds"],
                run_seconds=t["run_seconds"],
            ),
            info.github_port,
        )
    except BaseException:
        production.stop()
        raise
    info.production_port = int(production.base_url.rsplit(":", 1)[1])
    info.github_port = int(github.base_url.rsplit(":", 1)[1])
    info.production_url = production.base_url
    info.github_url = github.base_url
    running = RunningSandbox(info, github, production)
    try:
        running.config_notes = update_config(info)
        info.save()
        lock.record(
            {
                "github_port": info.github_port,
                "production_port": info.production_port,
                "github_url": info.github_url,
                "production_url": info.production_url,
            }
        )
    except BaseException:
        running.stop()
        raise
    running.lock = lock
    return running


@contextlib.contextmanager
def temporary_sandbox(prefix: str = "hotfix-sandbox-") -> Iterator[RunningSandbox]:
    """Build a sandbox in a temporary directory and serve it; everything goes on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        build_sandbox(Path(tmp) / "sandbox")
        with serve_sandbox(Path(tmp) / "sandbox") as running:
            yield running


def effects_of(root: str | os.PathLike[str], *, timeout: float = 3.0) -> dict[str, Any]:
    """Every effect a sandbox recorded, as lists of objects.

    Asks the running servers when ``hotfix sandbox serve`` is up (so runs that just finished
    are included); otherwise reads the state files without changing them.
    """
    info = load_info(root)
    base = Path(info.root)
    try:
        github = _get_json(f"{info.github_url}/_sandbox/effects", timeout)
        prod = _get_json(f"{info.production_url}/_state", timeout)
    except (OSError, ValueError):
        state_path = base / "github" / "github-state.json"
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.exists() else {}
        github = {key: list(state.get("effects", {}).get(key, [])) for key in EFFECT_KEYS}
        refs = read_ref_log(base / "github" / "ref-log.jsonl")
        github["refs"] = refs
        github["force_updates"] = [entry for entry in refs if entry.get("forced")]
        prod_path = base / "production" / STATE_FILE
        prod = json.loads(prod_path.read_text(encoding="utf-8")) if prod_path.exists() else {}
    out: dict[str, Any] = dict(github)
    out["production_versions"] = [{"version": v} for v in prod.get("versions_seen", [])]
    out["pagerduty_events"] = list(prod.get("pagerduty_events", []))
    return out


def control(
    root: str | os.PathLike[str], what: str, body: dict[str, Any], *, timeout: float = 5.0
) -> Any:
    """POST ``body`` to the running sandbox's GitHub control ``/_sandbox/<what>``.

    Raises ``UsageError`` when no ``hotfix sandbox serve`` answers, or with GitHub's
    message when the control refuses (an unknown PR, a reviewer who may not approve).
    """
    info = load_info(root)
    url = f"{info.github_url}/_sandbox/{what}"
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise UsageError(f"{url} is not a local sandbox URL")
    request = urllib.request.Request(  # noqa: S310 - local URL
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read().decode("utf-8")).get("message")
        except ValueError:
            message = None
        raise UsageError(
            f"the sandbox refused {what}: {message or exc.reason} (HTTP {exc.code})"
        ) from None
    except OSError as exc:
        raise UsageError(
            f"no sandbox is serving {info.root} ({exc})",
            hint=f"start it with `hotfix sandbox serve {info.root}`",
        ) from None
    return json.loads(raw) if raw.strip() else None


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("not a local sandbox URL")
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - local URL
        data = json.loads(resp.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("unexpected answer")
    return data


__all__ = [
    "FAST_TIMINGS",
    "LOCK_FILE",
    "RunningSandbox",
    "ServeLock",
    "control",
    "effects_of",
    "serve_sandbox",
    "temporary_sandbox",
]
