"""The alert outbox in one process: an alert owed with its cause, sent after, answered once;
a crash between the two leaves it owed, and the next driver sends it (late), once."""

from __future__ import annotations

import pytest

from hotfix_fsm.durable import failpoints, outbox

from .conftest import Receiver
from .world import Crash, World


def _crash_at(event: str, point: str) -> None:
    def hook(phase: str, at: str) -> None:
        if (phase, at) == (f"alert:{event}", point):
            raise Crash

    failpoints.set_hook(hook)


def test_each_alert_is_owed_with_its_cause_and_answered_once(
    world: World, receiver: Receiver
) -> None:
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.settings = {"alerts": {"webhook_url": receiver.url + "/hook"}}
    engine = world.engine()
    hid = world.start(engine)
    assert engine.drive(hid).state == "rolled_back"
    journal = engine.journal(hid)
    owed = [e for e in journal if e.kind == "alert_owed"]
    assert [e.payload["event"] for e in owed] == ["rollback_started", "rollback_finished"]
    for row in owed:  # in the transaction of the transition that causes it: right before it
        after = next(e for e in journal if e.seq == row.seq + 1)
        assert after.kind == "transition", after
    answers = [e.payload for e in journal if e.kind == "alert"]
    assert [a["owed"] for a in answers] == [e.seq for e in owed]
    assert not any(a.get("late") for a in answers)
    assert [b["event"] for b in receiver.bodies("/hook")] == [
        "rollback_started",
        "rollback_finished",
    ]  # no crash, no repeat
    assert outbox.undelivered(engine.store, hid) == []


@pytest.mark.parametrize("point", ["before_effect", "after_effect"])
def test_an_alert_a_crash_kept_back_is_sent_by_the_next_driver(
    world: World, receiver: Receiver, point: str
) -> None:
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.settings = {
        "alerts": {"webhook_url": receiver.url + "/hook"},
        "rollback": {"policy": "never"},
    }
    engine = world.engine()
    hid = world.start(engine)
    _crash_at("failed", point)
    try:
        with pytest.raises(Crash):
            engine.drive(hid)
    finally:
        failpoints.set_hook(None)
    assert engine.get(hid).state == "failed"
    [owed] = outbox.undelivered(engine.store, hid)
    assert owed.payload["event"] == "failed"
    sent = [b["event"] for b in receiver.bodies("/hook")]
    assert sent == ([] if point == "before_effect" else ["failed"])
    engine.close()
    engine = world.engine()
    engine.drive(hid, take_over=True)  # retries verify: it fails again, and alerts again
    answers = [e.payload for e in engine.journal(hid) if e.kind == "alert"]
    assert answers[0]["owed"] == owed.seq
    assert answers[0]["late"] is True
    assert "(sent after an interruption)" in receiver.bodies("/hook")[len(sent)]["message"]
    assert [b["event"] for b in receiver.bodies("/hook")] == [*sent, "failed", "failed"]
    assert outbox.undelivered(engine.store, hid) == []
