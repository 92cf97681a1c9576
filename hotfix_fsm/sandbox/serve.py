"""Serve a sandbox: the rehearsal GitHub API and production app on 127.0.0.1.

``serve_sandbox(DIR)`` starts both servers in background threads of this process, keeps
their state under DIR (so a restart loses nothing), reuses the ports recorded in
``DIR/sandbox.json`` when they are free (so ``hotfix.toml`` stays valid across restarts),
and rewrites the work tree's ``hotfix.toml`` and ``sandbox.json`` with the URLs. A
successful deploy or rollback run sets the production app's running version.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from hotfix_fsm.sandbox.github_state import EFFECT_KEYS
from hotfix_fsm.sandbox.production_app import STATE_FILE, ProductionApp
from hotfix_fsm.sandbox.refhook import read_ref_log
from hotfix_fsm.sandbox.world import (
    TOKEN_ENV,
    SandboxInfo,
    build_sandbox,
    load_info,
    write_config,
)

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


@dataclass
class RunningSandbox:
    """Both servers of a sandbox, running in this process; a context manager."""

    info: SandboxInfo
    github: RehearsalGitHub
    production: ProductionApp
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
        return out

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.github.stop()
        finally:
            self.production.stop()

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
    """Start the sandbox in ``root`` (built by ``build_sandbox``); return the running servers."""
    info = load_info(root)
    base = Path(info.root)
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
        write_config(info)
        info.save()
    except BaseException:
        running.stop()
        raise
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
    return out


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
    "RunningSandbox",
    "effects_of",
    "serve_sandbox",
    "temporary_sandbox",
]
