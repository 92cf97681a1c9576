"""Real ``hotfix`` processes SIGKILLed at every boundary of the review wait (a protected
production branch) and of an environment approval (``hotfix approve ID deploy`` from a
second terminal while the driver follows the waiting deploy run): afterwards the rehearsal
GitHub shows exactly one review, one approval, one merge and one deploy dispatch."""

from __future__ import annotations

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import ExitCode
from hotfix_fsm.recovery.environment_approval import deploy_run_id
from tests.torture.harness import FIGURES, assert_no_traceback, wait_for
from tests.torture.invariants import check_trial, duplicates
from tests.torture.sandbox import FAILPOINT_LOG, ISSUE, Sandbox


def _deploys(sb: Sandbox) -> int:
    dispatches = sb.effects().get("dispatches", [])
    return sum(1 for d in dispatches if d["workflow"] == "deploy-production.yml")


def test_a_driver_killed_at_every_boundary_of_the_review_wait_merges_once(
    sandbox: Sandbox,
) -> None:
    sb = sandbox
    sb.running.github.protect_branch("production", required_approving_review_count=1)
    log = {FAILPOINT_LOG: str(sb.failpoint_log)}
    # While the review is missing: killed at the merge step's intent, then a resume waits.
    first = sb.spawn(*sb.start_args(), env={**log, failpoints.ENV: "merge:before_effect"}).finish()
    assert first.killed, str(first)
    waiting = sb.cli(*sb.resume_args(), env=log)
    assert waiting.code == ExitCode.PAUSED, str(waiting)
    assert_no_traceback(waiting)
    assert "awaiting an approving review of PR #1 (1 required, 0 given)" in (
        waiting.out + waiting.err
    )
    assert sb.effects()["merges"] == []

    sb.running.github.review_pull(1, "alice")
    # After the approval: killed before the merge, right after it, right after its record.
    for point in failpoints.POINTS:
        run = sb.spawn(*sb.resume_args(), env={**log, failpoints.ENV: f"merge:{point}"}).finish()
        assert run.killed, str(run)
    final = sb.cli(*sb.resume_args(), env=log)
    assert final.code == ExitCode.OK, str(final)
    assert_no_traceback(final)
    fired = sb.fired_failpoints()
    effects = sb.effects()
    FIGURES.add(
        "review_wait",
        kills=len(fired),
        merges=len(effects["merges"]),
        reviews=len(effects["reviews"]),
        duplicated=duplicates(sb),
    )
    assert fired == ["merge:before_effect@1"] + [f"merge:{p}@1" for p in failpoints.POINTS]
    assert len(effects["reviews"]) == 1
    assert len(effects["merges"]) == 1
    assert _deploys(sb) == 1
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "done"
    assert [r["user"] for r in hotfix.context["merge_reviews"]] == ["alice"]
    check_trial(sb, None)


def test_a_driver_killed_around_turning_on_auto_merge_turns_it_on_once(sandbox: Sandbox) -> None:
    """``merge.auto``: killed right after GitHub turned auto-merge on (before the record),
    then after GitHub merged (before the done row): one auto-merge, one merge."""
    sb = sandbox
    sb.running.github.protect_branch("production", required_approving_review_count=1)
    sb.configure({"merge": {"auto": True}})
    log = {FAILPOINT_LOG: str(sb.failpoint_log)}
    first = sb.spawn(*sb.start_args(), env={**log, failpoints.ENV: "merge:auto_merge_on"}).finish()
    assert first.killed, str(first)
    assert len(sb.effects()["auto_merges"]) == 1
    waiting = sb.cli(*sb.resume_args(), env=log)
    assert waiting.code == ExitCode.PAUSED, str(waiting)
    assert "auto-merge is on" in waiting.out + waiting.err, str(waiting)
    assert sb.effects()["merges"] == []

    sb.running.github.review_pull(1, "alice")  # GitHub merges it on its own from now on
    merged = sb.spawn(*sb.resume_args(), env={**log, failpoints.ENV: "merge:after_effect"}).finish()
    assert merged.killed, str(merged)
    final = sb.cli(*sb.resume_args(), env=log)
    assert final.code == ExitCode.OK, str(final)
    assert_no_traceback(final)
    effects = sb.effects()
    FIGURES.add(
        "auto_merge",
        kills=len(sb.fired_failpoints()),
        auto_merges=len(effects["auto_merges"]),
        merges=len(effects["merges"]),
        duplicated=duplicates(sb),
    )
    assert len(effects["auto_merges"]) == 1
    assert len(effects["merges"]) == 1
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "done"
    assert hotfix.context["merge_auto"]["inferred"] is True  # adopted, never sent twice
    assert hotfix.context["merge_sha"] == effects["merges"][0]["merge_commit_sha"]
    check_trial(sb, None)


@pytest.mark.parametrize("point", failpoints.POINTS)
def test_an_approve_killed_at_each_boundary_of_an_environment_approval_approves_once(
    sandbox: Sandbox, point: str
) -> None:
    sb = sandbox
    sb.running.github.set_environment("production", reviewers=["rehearsal-bot", "alice"])
    sb.configure({"deploy": {"timeout": 600}})
    driver = sb.spawn(*sb.start_args())

    def run_known() -> bool:
        hotfix = sb.hotfix()
        return not driver.running() or (hotfix is not None and deploy_run_id(hotfix) is not None)

    wait_for(run_known, "the deploy run waiting for the environment's reviewers")
    assert driver.running(), driver.finish()
    log = {FAILPOINT_LOG: str(sb.failpoint_log)}
    killed = sb.spawn(
        "approve",
        ISSUE,
        "deploy",
        "--comment",
        "ship it",
        env={**log, failpoints.ENV: f"environment_approval:{point}"},
    ).finish()
    assert killed.killed, str(killed)
    assert sb.fired_failpoints() == [f"environment_approval:{point}@1"]

    if point != "after_done":
        # The intent is in doubt: the next approve probes GitHub before sending anything.
        again = sb.cli("approve", ISSUE, "deploy", "--comment", "ship it", env=log)
        assert again.code == ExitCode.OK, str(again)
        assert_no_traceback(again)
        assert "to environment production approved on GitHub by rehearsal-bot" in again.out, str(
            again
        )
    # (after_done: the approval and its record are complete; the driver goes on by itself.)

    drove = driver.finish(timeout=300)
    assert drove.code == ExitCode.OK, str(drove)
    assert_no_traceback(drove)
    effects = sb.effects()
    FIGURES.add(
        "environment_approval",
        point=point,
        approvals=len(effects["deployment_reviews"]),
        deploys=_deploys(sb),
        duplicated=duplicates(sb),
    )
    assert [(r["user"], r["comment"]) for r in effects["deployment_reviews"]] == [
        ("rehearsal-bot", "ship it")
    ]
    assert _deploys(sb) == 1
    assert len(effects["deploys"]) == 1
    assert len(effects["merges"]) == 1
    check_trial(sb, None)
    hotfix = sb.hotfix()
    assert hotfix is not None
    shown = sb.cli("log", hotfix.id)
    assert "environment production approved by rehearsal-bot" in shown.out, str(shown)
    report = sb.cli("report", hotfix.id)
    assert "environment production approved by rehearsal-bot" in report.out, str(report)
    status = sb.cli("status", hotfix.id)
    assert "environment_approval" in status.out, str(status)
