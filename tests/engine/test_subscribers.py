"""Subscribers see every journal row, once, in sequence order — whatever wrote it.

Random sequences of what people and drivers do (start, drive, approve, abort, roll back,
with phases failing or production unhealthy on the way) run against the in-memory world;
whether each command is accepted or refused, the rows ``hotfix log`` shows for the hotfix
must be exactly the rows ``HotfixEngine.subscribe`` callbacks received. Adopt and hand-off
are checked against the rehearsal sandbox in ``tests/team/test_subscribers.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from hotfix_fsm.core import machine
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import HotfixError
from tests.helpers_events import Seen

from .world import World, make_engine

ACTIONS = st.sampled_from(
    [
        "drive",
        "approve_fix",
        "approve_deploy",
        "approve_rollback",
        "abort",
        "rollback",
        "fail_deploy",
        "fail_verify",
        "fail_rollback_redeploy",
        "unhealthy",
    ]
)


def act(engine: HotfixEngine, world: World, hid: str, action: str) -> None:
    try:
        if action == "drive":
            engine.drive(hid)
        elif action.startswith("approve_"):
            engine.approve(hid, action.removeprefix("approve_"))
        elif action == "abort":
            engine.abort(hid)
        elif action == "rollback":
            engine.rollback(hid)
        elif action.startswith("fail_"):
            world.fail_next[action.removeprefix("fail_")] = "permanent"
        elif action == "unhealthy":
            world.unhealthy = not world.unhealthy
    except HotfixError:
        pass  # a refusal writes nothing, or what it wrote must have been published too


@given(yes=st.booleans(), actions=st.lists(ACTIONS, min_size=1, max_size=10))
def test_every_row_of_the_journal_reached_subscribers(yes: bool, actions: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        world = World()
        engine = make_engine(f"sqlite:///{Path(tmp) / 'store.db'}", world)
        seen = Seen()
        engine.subscribe(seen)
        try:
            hid = engine.start("INC-1", "Fix the thing", repo=tmp, yes=yes).id
            for action in actions:
                act(engine, world, hid, action)
                seen.assert_saw_every_row(engine, hid)
            assert seen.seqs(hid) == list(range(1, len(seen.seqs(hid)) + 1))  # gapless
            if engine.get(hid).state not in machine.TERMINAL:
                act(engine, world, hid, "drive")
            seen.assert_saw_every_row(engine, hid)
        finally:
            engine.close()


def test_start_drive_approve_abort_and_rollback_reach_subscribers(
    store_url: str, tmp_path: Path
) -> None:
    """Each command once, on SQLite and PostgreSQL; the creation row included."""
    world = World()
    engine = make_engine(store_url, world)
    seen = Seen()
    engine.subscribe(seen)
    driven = engine.start("INC-1", "Fix the thing", repo=tmp_path).id
    assert engine.drive(driven).paused_gate == "deploy"
    engine.approve(driven, "deploy")
    assert engine.drive(driven).state == "done"
    assert engine.rollback(driven).state == "rolled_back"
    aborted = engine.start("INC-2", "Fix the thing", repo=tmp_path).id
    engine.drive(aborted)
    assert engine.abort(aborted).state == "cancelled"
    for hid in (driven, aborted):
        seen.assert_saw_every_row(engine, hid)
    kinds = {row[1] for hid in (driven, aborted) for row in seen.rows[hid]}
    assert {"created", "intent", "done", "transition", "approval", "pause", "note"} <= kinds
    engine.close()
