"""The runner against the in-memory world, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfix_fsm.core import machine
from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import ExitCode, IllegalTransition, LeaseHeld, UnknownGraph
from hotfix_fsm.store import Entry

from .world import Crash, NoAlerts, World, make_engine, start


def drive_to_end(engine, hotfix_id: str) -> str:  # type: ignore[no-untyped-def]
    outcome = engine.drive(hotfix_id)
    if outcome.paused_gate == "deploy":
        engine.approve(hotfix_id, "deploy")
        outcome = engine.drive(hotfix_id)
    return str(outcome.state)


def test_happy_path_runs_every_effect_once(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path)
    outcome = engine.drive(hid)
    assert outcome.state == "awaiting_deploy_approval"
    assert outcome.paused_gate == "deploy"
    assert outcome.exit_code == ExitCode.PAUSED
    assert "hotfix approve" in outcome.next_action
    engine.approve(hid, "deploy")
    outcome = engine.drive(hid)
    assert outcome.state == "done"
    assert outcome.exit_code == ExitCode.OK
    forward = machine.EFFECT_PHASES - {p for p, _, _ in machine.ROLLBACK} - {"approve_deploy"}
    assert set(world.effects) == {f"{hid}:{p}" for p in forward}
    assert all(count == 1 for count in world.effects.values())
    seqs = [e.seq for e in engine.journal(hid)]
    assert seqs == list(range(1, len(seqs) + 1))
    engine.close()


@pytest.mark.parametrize("point", failpoints.POINTS)
@pytest.mark.parametrize("phase", ["branch", "push", "deploy", "gate:build", "merge"])
def test_crash_at_each_boundary_resumes_without_repeating(
    store_url: str, tmp_path: Path, phase: str, point: str
) -> None:
    world = World()
    db = store_url
    engine = make_engine(db, world)
    hid = start(engine, tmp_path, yes=True)

    def crash(at_phase: str, at_point: str) -> None:
        if (at_phase, at_point) == (phase, point):
            raise Crash

    failpoints.set_hook(crash)
    try:
        with pytest.raises(Crash):
            engine.drive(hid)
    finally:
        failpoints.set_hook(None)
    engine.close()
    # A new process: new engine on the same file; the dead driver's lease is taken over.
    engine = make_engine(db, world)
    assert engine.drive(hid, take_over=True).state == "done"
    # Gates have no external effect: one caught between effect and done simply runs again.
    effects = {k: v for k, v in world.effects.items() if ":gate:" not in k}
    assert all(count == 1 for count in effects.values()), world.effects
    kinds = [(e.kind, e.phase) for e in engine.journal(hid)]
    if point == "after_effect" and not phase.startswith("gate:"):
        assert ("probe", phase) in kinds
        done = [e for e in engine.journal(hid) if e.kind == "done" and e.phase == phase]
        assert done[-1].payload.get("inferred") is True
    engine.close()


def test_transient_failures_retry_and_count_attempts(store_url: str, tmp_path: Path) -> None:
    world = World(fail_next={"open_pr": "transient"})
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path, yes=True)
    assert engine.drive(hid).state == "done"
    failed = [e for e in engine.journal(hid) if e.kind == "failed" and e.phase == "open_pr"]
    assert len(failed) == 1
    assert failed[0].payload["transient"] is True
    intents = [
        e.attempt for e in engine.journal(hid) if e.kind == "intent" and e.phase == "open_pr"
    ]
    assert intents == [1, 2]
    engine.close()


def test_permanent_failure_fails_then_resumes_at_the_phase(store_url: str, tmp_path: Path) -> None:
    world = World(fail_next={"wait_ci": "permanent"})
    alerts = NoAlerts()
    engine = make_engine(store_url, world, alerts=alerts)
    hid = start(engine, tmp_path, yes=True)
    outcome = engine.drive(hid)
    assert outcome.state == "failed"
    assert outcome.exit_code == ExitCode.FAILED
    hotfix = engine.get(hid)
    assert hotfix.failed_from == "pr_open"
    assert "the world said no" in (hotfix.error or "")
    assert "phase wait_ci" in (hotfix.error or "")
    assert "failed" in [event for event, _ in alerts.sent]
    assert engine.drive(hid).state == "done"
    assert world.effects[f"{hid}:wait_ci"] == 1
    engine.close()


def test_gate_failure_reruns_only_the_failed_gate(store_url: str, tmp_path: Path) -> None:
    world = World(fail_next={"gate:audit": "permanent"})
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path, yes=True)
    outcome = engine.drive(hid)
    assert outcome.state == "failed"
    assert engine.get(hid).failed_from == "gating"
    assert engine.drive(hid).state == "done"
    intents = [e.phase for e in engine.journal(hid) if e.kind == "intent"]
    assert intents.count("gate:tests") == 1
    assert intents.count("gate:audit") == 2
    engine.close()


def test_unhealthy_verify_rolls_back_automatically(store_url: str, tmp_path: Path) -> None:
    world = World(unhealthy=True)
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path, yes=True)
    outcome = engine.drive(hid)
    assert outcome.state == "rolled_back"
    assert outcome.exit_code == ExitCode.FAILED
    for phase in ("rollback_revert", "rollback_redeploy", "rollback_verify"):
        assert world.effects[f"{hid}:{phase}"] == 1
    assert world.effects[f"{hid}:merge"] == 0
    engine.close()


def test_deploy_approval_lapses_when_the_fix_changes(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path)
    engine.drive(hid)
    engine.approve(hid, "deploy")
    # The fix sha changes after the approval (say, an amended fix): the approval lapses.
    engine.store.append(
        hid,
        [Entry("note", payload={"test": "amend"})],
        context={**engine.get(hid).context, "fix_sha": "e" * 40},
    )
    outcome = engine.drive(hid)
    assert outcome.paused_gate == "deploy"
    assert "lapsed" in (outcome.paused_reason or "")
    engine.close()


def test_probe_that_cannot_tell_pauses_for_a_human(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    phases = engine.runner.phases
    hid = start(engine, tmp_path, yes=True)

    class Blind(type(phases["open_pr"])):  # type: ignore[misc]
        def probe(self, ctx):  # type: ignore[no-untyped-def]
            from hotfix_fsm.phases.base import Probe

            return Probe.unknown("the PR service is dark")

    phases["open_pr"] = Blind("open_pr", world)

    def crash(phase: str, point: str) -> None:
        if (phase, point) == ("open_pr", "before_effect"):
            raise Crash

    failpoints.set_hook(crash)
    try:
        with pytest.raises(Crash):
            engine.drive(hid)
    finally:
        failpoints.set_hook(None)
    outcome = engine.drive(hid, take_over=True)
    assert outcome.state == "pushed"
    assert "cannot tell whether open_pr took effect" in (outcome.paused_reason or "")
    assert outcome.exit_code == ExitCode.PAUSED
    engine.close()


def test_second_driver_is_refused_with_the_holder_named(store_url: str, tmp_path: Path) -> None:
    world = World()
    first = make_engine(store_url, world)
    hid = start(first, tmp_path)
    lease = first.store.acquire_lease(hid, "laptop-a:123:abcd", ttl=60)
    second = make_engine(store_url, world)
    with pytest.raises(LeaseHeld, match="laptop-a:123:abcd"):
        second.drive(hid)
    # Take-over bumps the fencing token: the first holder's writes are refused.
    assert second.drive(hid, take_over=True).state == "awaiting_deploy_approval"
    from hotfix_fsm.errors import LeaseLost

    with pytest.raises(LeaseLost):
        first.store.checkpoint(lease, [Entry("note")])
    first.close()
    second.close()


def test_unknown_graph_is_refused(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path)
    with engine.store.engine.begin() as conn:
        from sqlalchemy import text

        conn.execute(
            text("UPDATE hotfixes SET graph_hash = 'deadbeef' WHERE id = :id"), {"id": hid}
        )
    with pytest.raises(UnknownGraph, match="deadbeef"):
        engine.drive(hid)
    engine.close()


def test_abort_and_illegal_rollback(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path)
    with pytest.raises(IllegalTransition, match="cannot be rolled back"):
        engine.rollback(hid)
    assert engine.abort(hid).state == "cancelled"
    with pytest.raises(IllegalTransition):
        engine.abort(hid)
    engine.close()


def test_manual_rollback_of_a_done_hotfix(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path, yes=True)
    assert engine.drive(hid).state == "done"
    assert engine.rollback(hid).state == "rolled_back"
    assert world.effects[f"{hid}:rollback_redeploy"] == 1
    engine.close()


def test_subscribers_see_every_committed_row(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    seen: list[int] = []
    engine.subscribe(lambda event: seen.append(event.seq) if event.seq else None)
    hid = start(engine, tmp_path, yes=True)
    engine.drive(hid)
    journal = [e.seq for e in engine.journal(hid)]
    assert seen == journal  # the creation row too: every row reaches subscribers
    engine.close()


def test_a_gates_transient_failure_is_retried_not_fatal(store_url: str, tmp_path: Path) -> None:
    """A gate is a step like any phase: a transient failure is retried by the policy (the
    other gates are not re-run), and the hotfix goes on instead of failing."""
    world = World(fail_next={"gate:build": "transient"})
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path, yes=True)
    assert engine.drive(hid).state == "done"
    journal = engine.journal(hid)
    failed = [e for e in journal if e.kind == "failed" and e.phase == "gate:build"]
    assert len(failed) == 1
    assert failed[0].payload["transient"] is True
    intents = [e.attempt for e in journal if e.kind == "intent" and e.phase == "gate:build"]
    assert intents == [1, 2]
    assert world.effects[f"{hid}:gate:build"] == 1
    assert world.effects[f"{hid}:gate:tests"] == 1
    assert not [e for e in journal if e.kind == "transition" and e.phase == "fail"]
    engine.close()
