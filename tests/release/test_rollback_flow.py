"""Rolling back in the rehearsal world: failing workflow, crash mid-rollback, after the merge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.durable.runner import Event
from hotfix_fsm.errors import ExitCode

from .conftest import Receiver, free_port
from .world import BRANCH, Crash, World, git


def test_a_failing_rollback_workflow_stops_in_rollback_failed_with_instructions(
    world: World, receiver: Receiver
) -> None:
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.gh.set_workflow_conclusion("rollback.yml", "failure")
    world.settings = {"alerts": {"webhook_url": receiver.url + "/hook"}}
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "rollback_failed", outcome
    assert outcome.exit_code == ExitCode.FAILED
    hotfix = engine.get(hid)
    assert hotfix.failed_from == "rollback_reverted"
    error = str(outcome.error)
    run_url = hotfix.context["rollback_run_url"]
    assert run_url in error
    assert "finished with conclusion failure" in error
    assert "gh run view" in error
    assert f"gh workflow run rollback.yml --ref v1.0.0 -f target_sha={world.base_sha}" in error
    assert world.prod.version == world.fix_sha  # production still runs the hotfix
    events = [b["event"] for b in receiver.bodies("/hook")]
    assert events == ["rollback_started", "failed"]
    assert receiver.bodies("/hook")[1]["links"]["run"] == run_url
    # the workflow is fixed; resume dispatches the rollback again and finishes it
    world.gh.set_workflow_conclusion("rollback.yml", "success")
    outcome = engine.resume(hid)
    assert outcome.state == "rolled_back", outcome
    assert len(world.dispatches("rollback.yml")) == 2
    assert world.prod.version == world.base_sha


def test_rollback_verify_failure_gives_precise_manual_steps(world: World) -> None:
    """The rollback run succeeds but production stays broken on the target too."""
    world.prod.set_mode("failing")
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "rollback_failed", outcome
    error = str(outcome.error)
    assert "after the rollback production at" in error
    assert "now: HTTP 503" in error
    assert f"version {world.base_sha}" in error
    facts = engine.get(hid).context
    assert f"gh run view {facts['rollback_run_id']} --log" in error
    assert f"curl -sS {world.prod.base_url}/health" in error
    assert f"`hotfix resume {hid}`" in error


@pytest.mark.parametrize("point", ["progress", "after_effect"])
def test_a_crash_mid_rollback_resumes_with_one_dispatch(world: World, point: str) -> None:
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.gh.run_seconds = 0.1

    def crash_while_waiting(event: Event) -> None:
        if (
            event.kind == "progress"
            and event.phase == "rollback_redeploy"
            and "rollback run" in str(event.payload.get("message"))
        ):
            raise Crash

    def crash_after_effect(phase: str, at: str) -> None:
        if (phase, at) == ("rollback_redeploy", "after_effect"):
            raise Crash

    engine = world.engine(on_event=crash_while_waiting if point == "progress" else None)
    hid = world.start(engine)
    if point == "after_effect":
        failpoints.set_hook(crash_after_effect)
    try:
        with pytest.raises(Crash):
            engine.drive(hid)
    finally:
        failpoints.set_hook(None)
    assert engine.get(hid).state == "rollback_reverted"
    engine.close()
    engine = world.engine()
    outcome = engine.drive(hid, take_over=True)
    assert outcome.state == "rolled_back", outcome
    assert len(world.dispatches("rollback.yml")) == 1
    assert world.prod.version == world.base_sha
    probes = [
        e.payload
        for e in engine.journal(hid)
        if e.kind == "probe" and e.phase == "rollback_redeploy"
    ]
    assert len(probes) == 1
    assert probes[0]["status"] == "done"


def healthy_then_done(world: World) -> tuple[Any, str]:
    world.real_pr = True
    world.settings = {"monitor": {"count": 2}}
    engine = world.engine()
    hid = world.start(engine)
    assert engine.drive(hid).state == "done"
    return engine, hid


def test_manual_rollback_after_the_merge_reverts_through_a_pr(world: World) -> None:
    engine, hid = healthy_then_done(world)
    merge_sha = engine.get(hid).context["merge_sha"]
    assert world.remote_head("production") == merge_sha
    checkout = git(world.work, "rev-parse", "--abbrev-ref", "HEAD")
    outcome = engine.rollback(hid, reason="customers report errors")
    assert outcome.state == "rolled_back", outcome
    revert = engine.get(hid).context["rollback_revert"]
    assert revert["mode"] == "revert"
    assert revert["reverted"] == merge_sha
    assert revert["branch"] == f"rollback/{hid}"
    production = world.remote_head("production")
    assert production == revert["production_sha"]
    assert production != merge_sha
    # production's content is the target's again, with the history kept
    tree = git(world.root, "--git-dir", str(world.bare), "rev-parse", f"{production}^{{tree}}")
    target_tree = git(
        world.root, "--git-dir", str(world.bare), "rev-parse", f"{world.base_sha}^{{tree}}"
    )
    assert tree == target_tree
    assert world.gh.effects()["force_updates"] == []
    merges = world.gh.effects()["merges"]
    assert len(merges) == 2  # the hotfix PR, then the revert PR
    assert git(world.work, "rev-parse", "--abbrev-ref", "HEAD") == checkout  # untouched
    assert "rollback-worktree" not in git(world.work, "worktree", "list")
    assert world.prod.version == world.base_sha


def test_revert_is_idempotent_by_branch_and_pr(world: World) -> None:
    """A crash after the revert branch was pushed and the PR opened: nothing is doubled."""
    engine, hid = healthy_then_done(world)

    def crash(event: Event) -> None:
        if event.kind == "note" and event.payload.get("pushed") == f"rollback/{hid}":
            raise Crash

    engine.close()
    engine = world.engine(on_event=crash)
    with pytest.raises(Crash):
        engine.rollback(hid)
    engine.close()
    engine = world.engine()
    outcome = engine.drive(hid, take_over=True)
    assert outcome.state == "rolled_back", outcome
    pulls = [
        p
        for p in world.gh.effects()["pull_requests"]
        if p.get("head") in (f"rollback/{hid}", f"acme:rollback/{hid}")
    ]
    assert len(pulls) == 1, world.gh.effects()["pull_requests"]
    assert len(world.gh.effects()["merges"]) == 2


def test_reset_needs_allow_reset_and_an_approval_then_uses_force_with_lease(
    world: World,
) -> None:
    engine, hid = healthy_then_done(world)
    merge_sha = engine.get(hid).context["merge_sha"]
    world.settings["rollback"] = {"after_merge": "reset"}
    engine.close()
    engine = world.engine()
    outcome = engine.rollback(hid)
    assert outcome.state == "rollback_failed"
    assert "rollback.allow_reset is false" in str(outcome.error)
    world.settings["rollback"] = {"after_merge": "reset", "allow_reset": True}
    engine.close()
    engine = world.engine()
    outcome = engine.resume(hid)
    assert outcome.state == "rolling_back"
    assert outcome.paused_gate == "rollback"
    assert "--force-with-lease" in str(outcome.paused_reason)
    assert world.remote_head("production") == merge_sha
    engine.approve(hid, "rollback", by="oncall")
    outcome = engine.resume(hid)
    assert outcome.state == "rolled_back", outcome
    assert world.remote_head("production") == world.base_sha
    (forced,) = world.gh.effects()["force_updates"]
    assert forced["ref"] == "refs/heads/production"
    assert engine.get(hid).context["rollback_revert"] == {
        "mode": "reset",
        "from": merge_sha,
        "production_sha": world.base_sha,
    }


def test_an_unreachable_webhook_never_fails_the_hotfix(world: World) -> None:
    hook = f"http://127.0.0.1:{free_port()}/services/T9/B9/do-not-leak-me"
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.settings = {"alerts": {"slack_webhook": hook}}
    engine = world.engine()
    hid = world.start(engine)
    assert engine.drive(hid).state == "rolled_back"
    alerts = [e.payload for e in engine.journal(hid) if e.kind == "alert"]
    assert [a["event"] for a in alerts] == ["rollback_started", "rollback_finished"]
    assert all(
        # Refused (nothing sent): tried three times, then reported.
        a["failed"] == [{"target": "slack", "error": "cannot connect to the webhook (3 attempts)"}]
        for a in alerts
    )
    dump = json.dumps([e.payload for e in engine.journal(hid)])
    assert "do-not-leak-me" not in dump
    assert BRANCH  # the world's fix branch is untouched by alerts


def test_no_revert_pr_when_production_already_lost_the_changes(world: World) -> None:
    engine, hid = healthy_then_done(world)
    merge_sha = engine.get(hid).context["merge_sha"]
    git(world.work, "fetch", "-q", "origin")
    git(world.work, "checkout", "-q", "-B", "manual", "origin/production")
    git(world.work, "revert", "--no-edit", merge_sha)
    git(world.work, "push", "-q", "origin", "HEAD:refs/heads/production")
    outcome = engine.rollback(hid)
    assert outcome.state == "rolled_back", outcome
    revert = engine.get(hid).context["rollback_revert"]
    assert revert["mode"] == "none"
    assert "no longer contains" in revert["note"]
    assert len(world.gh.effects()["merges"]) == 1  # only the hotfix PR
    assert world.prod.version == world.base_sha
