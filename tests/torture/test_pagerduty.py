"""PagerDuty incidents across crashes: SIGKILL the ``hotfix`` command right before and right
after an alert is sent (its state written, its row not), resume until the hotfix ends, and
count the Events API v2 events the rehearsal world received: one incident per hotfix (the
dedup key is the hotfix id), and none left open."""

from __future__ import annotations

from collections.abc import Callable

from tests.torture.invariants import check_trial, incidents
from tests.torture.sandbox import Sandbox, drive
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
