"""Team-mode fixtures: a served rehearsal sandbox and engines over a shared store.

Everything is real: the sandbox's bare origin and work tree (``build_sandbox``), the rehearsal
GitHub API and production app over HTTP (``serve_sandbox``), the default phases (git, gates
running the sandbox app's tests, GitHub, verify, monitor), and SQLite files or PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.config import Config, load_config
from hotfix_fsm.durable import failpoints
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.sandbox.serve import RunningSandbox, serve_sandbox
from hotfix_fsm.sandbox.world import SandboxInfo, build_sandbox

TIMINGS = {"ci_seconds": 0.1, "run_queued_seconds": 0.05, "run_seconds": 0.2}
DESCRIPTION = "Fix token expiry check\n\nTokens were accepted for 60 times their lifetime."


class Stop(BaseException):
    """A simulated crash: nothing in the engine catches a BaseException."""


def git(cwd: Path | str, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


def fast_config(work: Path | str) -> Config:
    """The sandbox's own hotfix.toml with polls in tens of milliseconds and a 1 s monitor."""
    config = load_config(work)
    config.ci.poll_interval = 0.05
    config.deploy.poll_interval = 0.05
    config.verify.interval = 0.05
    config.monitor.duration = 1.0
    config.monitor.interval = 0.2
    config.github.max_backoff = 0.05
    return config


def stop_after(point: str, phase: str) -> None:
    """Raise ``Stop`` when the runner reaches ``phase:point``."""

    def hook(at_phase: str, at_point: str) -> None:
        if at_phase == phase and at_point == point:
            raise Stop(f"{phase}:{point}")

    failpoints.set_hook(hook)


@dataclass
class Team:
    """One sandbox; each ``engine()`` is a machine (its own owner) over a given store."""

    root: Path
    info: SandboxInfo
    sandbox: RunningSandbox
    config: Config
    engines: list[HotfixEngine] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return Path(self.info.work)

    def engine(self, db: str | os.PathLike[str], **kwargs: Any) -> HotfixEngine:
        engine = HotfixEngine(db, config=self.config, backoff_base=0.01, **kwargs)
        self.engines.append(engine)
        return engine

    def start(self, engine: HotfixEngine, issue: str = "INC-8", *, yes: bool = True) -> str:
        return engine.start(
            issue, DESCRIPTION, repo=self.work, cherry_pick=[self.info.fix_sha], yes=yes
        ).id

    def effects(self) -> dict[str, Any]:
        return self.sandbox.effects()

    def assert_effects_once(self, branch: str, *, done: bool = True) -> None:
        """One PR, one deploy dispatch and deploy, one merge, one tag, no force push."""
        eff = self.effects()
        heads = [p["head"] for p in eff["pull_requests"]]
        assert heads.count(branch) == 1, heads
        assert heads.count(f"backport/{branch}") == (1 if done else heads.count(branch) - 1)
        assert len(eff["dispatches"]) == 1, eff["dispatches"]
        assert len(eff["deploys"]) == 1, eff["deploys"]
        assert len(eff["merges"]) == 1, eff["merges"]
        created = [r["ref"] for r in eff["refs"] if set(r["old"]) == {"0"}]
        assert len([r for r in created if r.startswith("refs/tags/")]) == 1, created
        assert created.count(f"refs/heads/{branch}") == 1, created
        assert eff["force_updates"] == []
        production = eff["production_versions"]
        assert len([v for v in production if v["version"] != self.info.production_sha]) <= 1

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
        self.engines.clear()


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    build_sandbox(tmp_path / "sandbox")
    running = serve_sandbox(tmp_path / "sandbox", timings=TIMINGS)
    world = Team(tmp_path, running.info, running, fast_config(running.info.work))
    try:
        yield world
    finally:
        failpoints.set_hook(None)
        world.close()
        running.stop()
