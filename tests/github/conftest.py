"""A rehearsal world for the GitHub phases: a real bare origin, a clone, the rehearsal GitHub
server over HTTP and an engine whose non-GitHub phases are small stand-ins.

The stand-ins (branch, commit_fix, gates, push, verify, monitor, rollback) only return the
facts of work the fixture did for real beforehand (the hotfix branch with a fix commit,
pushed to origin), so the GitHub phases run exactly as they would after the git phases.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.config import Config, config_from_mapping
from hotfix_fsm.core import machine
from hotfix_fsm.durable import failpoints
from hotfix_fsm.durable.runner import Outcome
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.phases.approval import ApproveDeploy
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.github_phases import (
    Backport,
    Cleanup,
    Deploy,
    Merge,
    OpenPullRequest,
    Tag,
    WaitForCI,
)
from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from tests.helpers_git import make_release_origin

TOKEN = "sandbox-token"
FAST = {"ci_seconds": 0.15, "run_queued_seconds": 0.02, "run_seconds": 0.1}


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


def base_config(api_url: str, **sections: Any) -> Config:
    data: dict[str, Any] = {
        "retry_limit": 6,
        "github": {
            "api_url": api_url,
            "repository": "acme/shop",
            "token": TOKEN,
            "max_retries": 8,
            "max_backoff": 0.05,
            "request_timeout": 5.0,
        },
        "ci": {"poll_interval": 0.03, "timeout": 15.0, "no_checks_grace": 0.3},
        "deploy": {"poll_interval": 0.03, "timeout": 15.0, "inputs": {"environment": "prod"}},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return config_from_mapping(data, "tests")


class StandIn(BasePhase):
    """A phase owned by someone else: returns the facts of work the fixture did."""

    def __init__(self, name: str, facts: Callable[[PhaseContext], dict[str, Any]]) -> None:
        self.name = name
        self.facts = facts

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.done(self.facts(ctx))

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        return self.facts(ctx)


class NoAlerts:
    def send(self, event: str, hotfix: Any, message: str, fields: dict[str, Any]) -> None:
        return None


@dataclass
class World:
    root: Path
    bare: Path
    work: Path
    gh: RehearsalGitHub
    db: Path
    base_sha: str
    branch: str = ""
    fix_sha: str = ""
    config_sections: dict[str, Any] = field(default_factory=dict)
    gate_facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_monitor: Callable[[], None] | None = None
    engines: list[HotfixEngine] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return base_config(self.gh.base_url, **self.config_sections)

    def push_fix(
        self, branch: str = "hotfix/INC-1", name: str = "fix.txt", content: str = "fixed\n"
    ) -> str:
        """Cut ``branch`` from origin/production, commit a fix, push it (the git phases'
        work, done here for real)."""
        git(self.work, "fetch", "-q", "origin")
        git(self.work, "checkout", "-q", "-B", branch, "origin/production")
        (self.work / name).write_text(content)
        git(self.work, "add", name)
        git(self.work, "commit", "-q", "-m", f"Fix token expiry check in {name}")
        git(self.work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        self.branch, self.fix_sha = branch, git(self.work, "rev-parse", "HEAD")
        return self.fix_sha

    def phases(self, **overrides: Any) -> dict[str, Any]:
        def gate(name: str) -> StandIn:
            return StandIn(
                f"gate:{name}",
                lambda _c: self.gate_facts.get(
                    name, {"status": "passed", "duration": 0.25, "exit_code": 0}
                ),
            )

        def monitor(_ctx: PhaseContext) -> dict[str, Any]:
            if self.on_monitor is not None:
                self.on_monitor()
            return {"monitor": {"status": "healthy"}}

        phases: dict[str, Any] = {
            "branch": StandIn("branch", lambda _c: {"branch": self.branch}),
            "commit_fix": StandIn(
                "commit_fix", lambda _c: {"fix_sha": self.fix_sha, "fix_commits": [self.fix_sha]}
            ),
            "push": StandIn("push", lambda _c: {"pushed_sha": self.fix_sha}),
            "verify": StandIn("verify", lambda _c: {"verify": {"status": "healthy"}}),
            "monitor": StandIn("monitor", monitor),
            "approve_deploy": ApproveDeploy(),
            "open_pr": OpenPullRequest(),
            "wait_ci": WaitForCI(),
            "deploy": Deploy(run_search_grace=0.5, find_timeout=5.0),
            "merge": Merge(),
            "tag": Tag(),
            "backport": Backport(mergeable_wait=2.0),
            "cleanup": Cleanup(),
        }
        for name in machine.GATES:
            phases[f"gate:{name}"] = gate(name)
        for name in ("rollback_revert", "rollback_redeploy", "rollback_verify"):
            phases[name] = StandIn(name, lambda _c: {})
        phases.update(overrides)
        assert phases.keys() >= machine.EFFECT_PHASES
        return phases

    def engine(
        self, github: Callable[[Any], GitHubClient] | None = None, **phase_overrides: Any
    ) -> HotfixEngine:
        engine = HotfixEngine(
            self.db,
            phases=self.phases(**phase_overrides),
            services={
                "alerts": lambda _s: NoAlerts(),
                "github": github
                or (
                    lambda s: GitHubClient.from_config(
                        s.config, s.repo, backoff_base=0.005, secondary_base=0.01
                    )
                ),
            },
            config=self.config,
            preflight=lambda _s, _c, _i: {"base_sha": self.base_sha},
            backoff_base=0.01,
        )
        self.engines.append(engine)
        return engine

    def start(self, engine: HotfixEngine, issue: str = "INC-1") -> str:
        return engine.start(
            issue, "Fix token expiry\n\nTokens expired an hour early.", repo=self.work, yes=True
        ).id

    def run(self, issue: str = "INC-1", **phase_overrides: Any) -> tuple[str, Outcome]:
        """Push a fix, start a hotfix and drive it until it stops."""
        if not self.fix_sha:
            self.push_fix()
        engine = self.engine(**phase_overrides)
        hotfix_id = self.start(engine, issue)
        return hotfix_id, engine.drive(hotfix_id)

    def facts(self, hotfix_id: str) -> dict[str, Any]:
        engine = self.engines[-1] if self.engines else self.engine()
        return dict(engine.get(hotfix_id).context)

    def remote_ref(self, ref: str) -> str:
        return git(self.bare, "rev-parse", "--verify", "-q", ref)


def make_origin(root: Path) -> tuple[Path, Path, str]:
    """A bare origin with ``main``, ``production`` at release ``v1.0.0``, and a clone."""
    bare, work = make_release_origin(root, run=git)
    return bare, work, git(work, "rev-parse", "production")


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """Build a world; the server options (e.g. ``supports_run_details``) are arguments."""
    made: list[World] = []

    def build(**server: Any) -> World:
        root = tmp_path / f"world{len(made)}"
        root.mkdir()
        bare, work, base = make_origin(root)
        gh = RehearsalGitHub(root / "github-state", bare, tokens={TOKEN}, **{**FAST, **server})
        gh.start()
        world = World(root, bare, work, gh, root / "hotfix.db", base)
        made.append(world)
        return world

    yield build
    failpoints.set_hook(None)
    for world in made:
        for engine in world.engines:
            engine.close()
        world.gh.stop()


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
