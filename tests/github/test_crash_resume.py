"""Crash at every checkpoint boundary of each GitHub phase, resume with a fresh engine on the
same database, and count the effects in the rehearsal world: never a second PR, dispatch,
merge or tag, and never a force push."""

from __future__ import annotations

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.durable.runner import Outcome
from tests.github.conftest import World

POINTS = ("before_effect", "after_effect", "after_done")


class Crash(BaseException):
    """A simulated power cut: BaseException, so nothing in the engine handles it."""


@pytest.mark.parametrize("phases", [("open_pr", "deploy", "merge"), ("tag", "backport", "cleanup")])
def test_crash_at_each_boundary_then_resume(world: World, phases: tuple[str, ...]) -> None:
    """One hotfix crashes at every boundary of each phase in ``phases`` (nine crashes)."""
    world.push_fix()
    pending = [(phase, point) for phase in phases for point in POINTS]
    crashes: list[tuple[str, str]] = []

    def hook(name: str, point: str) -> None:
        if (name, point) in pending:
            pending.remove((name, point))
            crashes.append((name, point))
            raise Crash(f"{name}:{point}")

    failpoints.set_hook(hook)
    engine = world.engine()
    hotfix_id = world.start(engine)
    outcome: Outcome | None = None
    for _ in range(len(phases) * len(POINTS) + 1):
        try:
            outcome = engine.drive(hotfix_id, take_over=True)
            break
        except Crash:
            engine.close()
            engine = world.engine()  # a new process: fresh engine, same database file
    failpoints.set_hook(None)

    assert crashes == [(phase, point) for phase in phases for point in POINTS]
    assert outcome is not None
    assert outcome.state == "done", outcome.error
    effects = world.gh.effects()
    assert [p["base"] for p in effects["pull_requests"]] == ["production", "main"]
    assert len(effects["dispatches"]) == 1
    assert len(effects["deploys"]) == 1
    assert len(effects["merges"]) == 1
    created_tags = [
        r for r in effects["refs"] if r["ref"].startswith("refs/tags/") and set(r["old"]) == {"0"}
    ]
    assert [r["ref"] for r in created_tags] == ["refs/tags/v1.0.1"]
    assert len(effects["refs_deleted_via_api"]) == 1
    assert effects["force_updates"] == []

    # Each effect in doubt was probed: not done before it, adopted after it.
    for phase in phases:
        probes = [
            r.payload["status"]
            for r in engine.journal(hotfix_id)
            if r.kind == "probe" and r.phase == phase
        ]
        assert probes == ["not_done", "done"], phase
    facts = engine.get(hotfix_id).context
    assert facts["release_tag"] == "v1.0.1"
    assert facts["cleaned"]["remote"] is True
