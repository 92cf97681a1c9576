"""The rehearsal world for the release phases: a real bare origin and clone, the rehearsal
GitHub server, the production app, and stand-ins for the phases before the deploy.

The stand-ins set the facts later phases read (``fix_sha``, ``branch``, ``pr_number`` …); the
deploy stand-in records the rollback target and puts the fix on production, and the merge
stand-in merges the real PR through the rehearsal API. Verify, monitor and the rollback
phases are the real ones.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.config import Config, MetricConfig, config_from_mapping
from hotfix_fsm.core import machine
from hotfix_fsm.durable.runner import Event
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.release import (
    Monitor,
    RollbackRedeploy,
    RollbackRevert,
    RollbackVerify,
    Verify,
)
from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from hotfix_fsm.sandbox.production_app import ProductionApp
from tests.helpers_git import make_release_origin

TOKEN = "sandbox-token"
BRANCH = "hotfix/INC-1"


class Crash(BaseException):
    """A simulated crash: nothing in the engine catches a BaseException."""


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1"},
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


def _facts(facts: dict[str, Any]) -> Callable[[PhaseContext], dict[str, Any]]:
    return lambda _ctx: dict(facts)


class SharedClient:
    """One GitHub client for every engine of a test (building a ghapi client is slow);
    the engine's ``close`` of its services leaves it open, the world closes it."""

    def __init__(self, client: GitHubClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def close(self) -> None:
        return


class StandIn(BasePhase):
    """A phase before (or after) the ones under test: facts only, or a small real effect."""

    def __init__(
        self, name: str, effect: Callable[[PhaseContext], dict[str, Any]] | None = None
    ) -> None:
        self.name = name
        self.effect = effect

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done()

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        return self.effect(ctx) if self.effect else {}


@dataclass
class World:
    root: Path
    bare: Path
    work: Path
    gh: RehearsalGitHub
    prod: ProductionApp
    base_sha: str
    fix_sha: str
    settings: dict[str, Any] = field(default_factory=dict)
    engines: list[HotfixEngine] = field(default_factory=list)
    real_pr: bool = False  # open and merge a real PR (else the facts only: faster)
    _github: GitHubClient | None = None

    def github(self, _services: Any) -> SharedClient:
        if self._github is None:
            self._github = GitHubClient.from_config(self.config(), self.work)
        return SharedClient(self._github)

    # -- configuration -------------------------------------------------------------------

    def config(self) -> Config:
        data: dict[str, Any] = {
            "github": {
                "api_url": self.gh.base_url,
                "repository": "acme/shop",
                "token": TOKEN,
                "max_retries": 2,
                "request_timeout": 5,
            },
            "deploy": {"poll_interval": 0.05, "timeout": 10},
            "verify": {
                "url": self.prod.base_url + "/health",
                "interval": 0.05,
                "timeout": 0.4,
                "request_timeout": 2,
            },
            "monitor": {"interval": 0.05, "duration": 0.5},
        }
        for section, values in self.settings.items():
            data.setdefault(section, {}).update(values)
        metrics = data["monitor"].pop("metrics", None)
        config = config_from_mapping(data, "tests")
        if metrics is not None:
            # Built directly: config.py's loader refuses the key `source` in a metric table
            # (it skips every field named `source`, meant for Config.source only).
            config.monitor.metrics = [MetricConfig(**m) for m in metrics]
        return config

    # -- phases --------------------------------------------------------------------------

    def _deploy(self, ctx: PhaseContext) -> dict[str, Any]:
        ctx.save(rollback_target={"sha": self.base_sha, "tag": "v1.0.0", "branch": "production"})
        self.prod.set_version(self.fix_sha)
        return {"deployed_sha": self.fix_sha, "deploy_run_url": f"{self.gh.base_url}/runs/1"}

    def _open_pr(self, ctx: PhaseContext) -> dict[str, Any]:
        if not self.real_pr:
            return {"pr_number": 1, "pr_url": f"{self.gh.base_url}/acme/shop/pull/1"}
        pr, _ = ctx.services.github.open_pull(BRANCH, "production", "HOTFIX: fix", "body")
        return {"pr_number": pr["number"], "pr_url": pr["html_url"]}

    def _merge(self, ctx: PhaseContext) -> dict[str, Any]:
        if not self.real_pr:
            return {"merged": "stand-in"}
        gh = ctx.services.github
        number = int(ctx.data["pr_number"])
        pr = gh.get_pull(number)
        if not pr.get("merged_at"):
            gh.merge_pull(number, sha=self.fix_sha, method="squash")
            pr = gh.get_pull(number)
        return {"merge_sha": pr["merge_commit_sha"]}

    def phases(self, **overrides: Any) -> dict[str, Any]:
        facts = {
            "branch": {"branch": BRANCH},
            "commit_fix": {"fix_sha": self.fix_sha},
            "push": {"pushed_sha": self.fix_sha},
        }
        phases: dict[str, Any] = {
            name: StandIn(name, _facts(facts.get(name, {}))) for name in machine.EFFECT_PHASES
        }
        phases["open_pr"] = StandIn("open_pr", self._open_pr)
        phases["deploy"] = StandIn("deploy", self._deploy)
        phases["merge"] = StandIn("merge", self._merge)
        phases.update(
            verify=Verify(),
            monitor=Monitor(),
            rollback_revert=RollbackRevert(),
            rollback_redeploy=RollbackRedeploy(),
            rollback_verify=RollbackVerify(),
        )
        phases.update(overrides)
        return phases

    def engine(
        self,
        *,
        phases: dict[str, Any] | None = None,
        on_event: Callable[[Event], None] | None = None,
    ) -> HotfixEngine:
        engine = HotfixEngine(
            self.root / "store.db",
            phases=phases or self.phases(),
            config=self.config(),
            backoff_base=0.001,
            preflight=lambda _s, _c, _i: {"base_sha": self.base_sha},
        )
        if on_event is not None:
            engine.subscribe(on_event)
        self.engines.append(engine)
        return engine

    def start(self, engine: HotfixEngine) -> str:
        return engine.start("INC-1", "Fix token expiry", repo=self.work, yes=True).id

    # -- inspection ----------------------------------------------------------------------

    def dispatches(self, workflow: str) -> list[dict[str, Any]]:
        return [d for d in self.gh.effects()["dispatches"] if d["workflow"] == workflow]

    def remote_head(self, branch: str) -> str:
        return git(self.root, "--git-dir", str(self.bare), "rev-parse", f"refs/heads/{branch}")

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
        if self._github is not None:
            self._github.close()


def build_world(root: Path) -> World:
    bare, work = make_release_origin(root, run=git, feature_on_main=False)
    base = git(work, "rev-parse", "HEAD")
    git(work, "checkout", "-q", "-b", BRANCH, "origin/production")
    (work / "app.txt").write_text("line 1\nline 2 fixed\n")
    git(work, "commit", "-q", "-am", "fix token expiry")
    git(work, "push", "-q", "origin", f"HEAD:refs/heads/{BRANCH}")
    fix = git(work, "rev-parse", "HEAD")
    prod = ProductionApp(root / "prod", version=base)
    prod.start()
    gh = RehearsalGitHub(
        root / "github",
        bare,
        tokens={TOKEN},
        ci_seconds=0.1,
        run_queued_seconds=0.02,
        run_seconds=0.1,
        on_deploy=prod.on_deploy,
    )
    gh.start()
    return World(root=root, bare=bare, work=work, gh=gh, prod=prod, base_sha=base, fix_sha=fix)
