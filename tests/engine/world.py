"""An in-memory world for engine tests: phases whose effects land in counters.

The world stands for git, GitHub and production; it outlives engine restarts (as the real
world outlives a dead laptop), so probes can look at it after a crash.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfix_fsm.core import machine
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import PermanentError, RollbackRequired, TransientError
from hotfix_fsm.phases.approval import ApproveDeploy
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe


class Crash(BaseException):
    """A simulated crash: BaseException so nothing in the engine mistakes it for an error."""


@dataclass
class World:
    effects: Counter[str] = field(default_factory=Counter)
    fail_next: dict[str, str] = field(default_factory=dict)  # phase -> transient|permanent
    unhealthy: bool = False

    def key(self, hotfix_id: str, phase: str) -> str:
        return f"{hotfix_id}:{phase}"


class WorldPhase(BasePhase):
    def __init__(self, name: str, world: World) -> None:
        self.name = name
        self.world = world

    def probe(self, ctx: PhaseContext) -> Probe:
        done = self.world.effects[self.world.key(ctx.hotfix.id, self.name)] > 0
        return Probe.done(self.facts(ctx)) if done else Probe.not_done()

    def facts(self, ctx: PhaseContext) -> dict[str, Any]:
        if self.name == "commit_fix":
            return {"fix_sha": "f" * 40}
        if self.name == "deploy":
            return {"deploy_run_id": 1}
        return {}

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        failure = self.world.fail_next.pop(self.name, None)
        if failure == "transient":
            raise TransientError(f"{self.name}: the world blinked")
        if failure == "permanent":
            raise PermanentError(f"{self.name}: the world said no", hint="fix it and resume")
        if self.name == "deploy":
            ctx.save(rollback_target={"sha": "a" * 40, "tag": "v1.0.0"})
        if self.name == "verify" and self.world.unhealthy:
            raise RollbackRequired("production is unhealthy")
        self.world.effects[self.world.key(ctx.hotfix.id, self.name)] += 1
        return self.facts(ctx)


class NoAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, event: str, hotfix: Any, message: str, fields: dict[str, Any]) -> None:
        self.sent.append((event, message))


def world_phases(world: World) -> dict[str, Any]:
    phases: dict[str, Any] = {name: WorldPhase(name, world) for name in machine.EFFECT_PHASES}
    phases["approve_deploy"] = ApproveDeploy()
    return phases


def make_engine(db: str | os.PathLike[str], world: World, **kw: Any) -> HotfixEngine:
    alerts = kw.pop("alerts", None) or NoAlerts()
    return HotfixEngine(
        db,
        phases=world_phases(world),
        services={"alerts": lambda _s: alerts},
        preflight=lambda _s, _c, _i: {"base_sha": "b" * 40},
        backoff_base=0.001,
        **kw,
    )


def start(engine: HotfixEngine, repo: Path, issue: str = "INC-1", **kw: Any) -> str:
    return engine.start(issue, "Fix the thing", repo=repo, **kw).id
