"""PagerDuty incidents across crashes: SIGKILL the ``hotfix`` command right before and right
after an alert is sent (its state written, its row not), resume until the hotfix ends, and
count the Events API v2 events the rehearsal world received: one incident per hotfix (the
dedup key is the hotfix id), and none left open."""

from __future__ import annotations

import sys
from collections.abc import Callable

from hotfix_fsm.durable import failpoints
from hotfix_fsm.store import JournalEntry
from tests.torture.invariants import check_trial, incidents
from tests.torture.sandbox import FAILPOINT_LOG, Sandbox, drive
from tests.torture.test_crash import prepare

Factory = Callable[..., Sandbox]


def _drive_through(sb: Sandbox, specs: tuple[str, ...]) -> dict[str, list[str]]:
    run = drive(sb, failpoint_specs=specs)
    assert run.kills == len(specs), run.fired
    assert sorted(f.rsplit("@", 1)[0] for f in run.fired) == sorted(specs)
    check_trial(sb, None)  # includes the incident invariant, with every other one
    return incidents(sb.effects())


def test_rollback_pages_once_and_resolves_across_kills_around_the_alerts(
    sandboxes: Factory,
) -> None:
    sb = sandboxes("pd-rollback")
    prepare(sb, "rollback")  # verify fails: rollback_started triggers, rolled_back resolves
    specs = ("alert:rollback_started:after_effect", "alert:rollback_finished:before_effect")
    found = _drive_through(sb, specs)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "rolled_back"
    assert set(found) == {hotfix.id}, found  # one incident however many processes sent
    actions = found[hotfix.id]
    assert "trigger" in actions, actions
    assert actions[-1] == "resolve", actions  # the resolve swallowed by the kill was owed
    # The resolve was re-sent by the resumed process: the journal says so.
    journal = sb.journal(hotfix.id)
    ends = [
        e for e in journal if e.kind == "alert" and e.payload.get("event") == "rollback_finished"
    ]
    assert len(ends) == 1, ends
    assert ends[0].payload.get("delivered") == ["pagerduty"], ends[0].payload


def test_a_kill_after_the_resolve_was_sent_leaves_one_resolved_incident(
    sandboxes: Factory,
) -> None:
    sb = sandboxes("pd-done")
    found = _drive_through(sb, ("alert:completed:after_effect",))
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "done"
    # Nothing paged on the happy path; the end was announced (twice: sent, killed, owed).
    assert found == {hotfix.id: ["resolve", "resolve"]}, found


def _owed(sb: Sandbox, hotfix_id: str, event: str) -> list[JournalEntry]:
    return [
        e
        for e in sb.journal(hotfix_id)
        if e.kind == "alert_owed" and e.payload.get("event") == event
    ]


def _answer(sb: Sandbox, hotfix_id: str, owed: JournalEntry) -> dict[str, object]:
    found = [
        e.payload
        for e in sb.journal(hotfix_id)
        if e.kind == "alert" and e.payload.get("owed") == owed.seq
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_failure_page_lost_to_a_kill_is_sent_by_the_next_driver(sandboxes: Factory) -> None:
    """Killed with the failure journaled and its page not sent, then killed again with it
    sent and not marked: every later process sends what is owed, on one incident, and the
    abort resolves it."""
    sb = sandboxes("pd-failed")
    fail = [sys.executable, "-c", "import sys; sys.exit(1)"]
    sb.configure({"gates": {"audit": {"command": fail}}})
    specs = ("alert:failed:before_effect", "alert:failed:after_effect")
    run = drive(sb, failpoint_specs=specs)
    assert run.kills == 2, run.fired
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "failed"
    owed = _owed(sb, hotfix.id, "failed")
    assert len(owed) == 2, owed  # the killed run's failure, and the resumed run's own
    first = _answer(sb, hotfix.id, owed[0])
    assert first["late"] is True  # sent by a later process than the one that failed
    assert first["delivered"] == ["pagerduty"]
    assert "late" not in _answer(sb, hotfix.id, owed[1])
    # The first page was sent twice (killed after sending it, before marking it), the second
    # once: three triggers, one incident, still open — the hotfix has not ended.
    assert incidents(sb.effects()) == {hotfix.id: ["trigger", "trigger", "trigger"]}
    check_trial(sb, None)
    aborted = sb.cli("abort", hotfix.id, "--reason", "audit cannot pass")
    assert aborted.code == 0, str(aborted)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "cancelled"
    assert incidents(sb.effects()) == {hotfix.id: ["trigger"] * 3 + ["resolve"]}
    check_trial(sb, None)


def test_a_pause_page_lost_to_a_kill_is_sent_on_resume_and_resolved_by_the_rollback(
    sandboxes: Factory,
) -> None:
    """The hotfix waits for a person (rollback policy ``ask``) and the process dies before
    paging anyone: nobody would know. The next process pages first, then carries on."""
    sb = sandboxes("pd-paused")
    prepare(sb, "rollback")  # verify fails
    sb.configure({"rollback": {"policy": "ask"}})
    env = {failpoints.ENV: "alert:paused:before_effect", FAILPOINT_LOG: str(sb.failpoint_log)}
    first = sb.spawn(*sb.start_args(), env=env).finish()
    assert first.killed, str(first)
    assert sb.fired_failpoints() == ["alert:paused:before_effect@1"]
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.paused_gate == "rollback"
    assert incidents(sb.effects()) == {}  # the window: paused, and nobody paged
    [owed] = _owed(sb, hotfix.id, "paused")
    resumed = sb.cli(*sb.resume_args())
    assert resumed.code not in (0, 1), str(resumed)  # paused again: verify still fails
    assert _answer(sb, hotfix.id, owed)["late"] is True
    found = incidents(sb.effects())
    assert found == {hotfix.id: ["trigger", "trigger"]}, found  # owed page, then its own
    approved = sb.cli("approve", hotfix.id, "rollback")
    assert approved.code == 0, str(approved)
    run = drive(sb)
    assert run.kills == 0
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "rolled_back"
    actions = incidents(sb.effects())[hotfix.id]
    assert actions[:2] == ["trigger", "trigger"]
    assert actions[-1] == "resolve"
    assert actions.count("resolve") == 1
    check_trial(sb, None)
