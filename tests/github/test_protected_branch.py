"""Merging into a protected production branch: required reviews and checks are durable
waits read from GitHub, never failures; the reviews are recorded as evidence."""

from __future__ import annotations

from typing import Any

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.durable import failpoints
from tests.github.conftest import World, git
from tests.github.test_crash_resume import POINTS


def _client(world: World) -> GitHubClient:
    return GitHubClient.from_config(world.config, world.work, backoff_base=0.005)


def test_a_missing_review_pauses_the_merge_and_an_approval_lets_resume_merge(
    world: World,
) -> None:
    world.gh.protect_branch(
        "production",
        required_approving_review_count=1,
        required_status_checks=["ci/test"],
        allowed_merge_methods=["squash"],
    )
    hotfix_id, outcome = world.run()
    assert outcome.state == "monitored", outcome.error
    assert outcome.paused_reason is not None
    assert "awaiting an approving review of PR #1 (1 required, 0 given)" in (outcome.paused_reason)
    assert "/acme/shop/pull/1" in outcome.paused_reason
    assert outcome.paused_gate is None
    assert world.gh.effects()["merges"] == []

    # Resuming without a review waits again, and merges nothing.
    again = world.engine().drive(hotfix_id)
    assert again.paused_reason is not None
    assert "awaiting an approving review" in again.paused_reason
    assert world.gh.effects()["merges"] == []

    world.gh.review_pull(1, "alice")
    done = world.engine().drive(hotfix_id)
    assert done.state == "done", done.error or done.paused_reason
    merges = world.gh.effects()["merges"]
    assert [(m["pr"], m["method"]) for m in merges] == [(1, "squash")]
    facts = world.facts(hotfix_id)
    assert facts["merge_required_reviews"] == 1
    assert [(r["user"], r["state"], r["commit_id"]) for r in facts["merge_reviews"]] == [
        ("alice", "APPROVED", world.fix_sha)
    ]


def test_a_token_that_cannot_read_the_protection_reads_the_405_as_a_wait(
    world: World,
) -> None:
    world.gh.protect_branch("production", required_approving_review_count=2)
    # GitHub answers 404 to a token without admin rights on the protection.
    world.gh.set_fault(
        "GET /repos/{owner}/{repo}/branches/{branch}/protection", status=404, error_rate=1.0
    )
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None
    assert "awaiting an approving review of PR #1" in outcome.paused_reason
    assert "At least 2 approving reviews are required" in outcome.paused_reason
    world.gh.review_pull(1, "alice")
    world.gh.review_pull(1, "bob")
    done = world.engine().drive(hotfix_id)
    assert done.state == "done", done.error or done.paused_reason
    assert len(world.gh.effects()["merges"]) == 1


def test_reviews_are_read_across_pages(world: World) -> None:
    world.push_fix()
    client = _client(world)
    try:
        pr, _ = client.open_pull(world.branch, "production", "t", "b")
        for n in range(105):
            world.gh.review_pull(int(pr["number"]), f"reviewer-{n:03d}", "COMMENTED")
        reviews = client.pull_reviews(int(pr["number"]))
    finally:
        client.close()
    assert [r["user"]["login"] for r in reviews] == [f"reviewer-{n:03d}" for n in range(105)]


class Crash(BaseException):
    """A simulated power cut (nothing in the engine handles a BaseException)."""


def test_a_crash_at_every_boundary_of_the_review_wait_merges_once(world: World) -> None:
    """Crash before the merge's effect while the review is missing (a wait writes no
    effect, so it has no later boundary), then at each boundary after the approval: one
    review, one merge."""
    world.gh.protect_branch("production", required_approving_review_count=1)
    world.push_fix()
    pending = [("waiting", "before_effect")] + [("approved", point) for point in POINTS]
    crashes: list[tuple[str, str]] = []
    stage = ["waiting"]

    def hook(name: str, point: str) -> None:
        if name == "merge" and (stage[0], point) in pending:
            pending.remove((stage[0], point))
            crashes.append((stage[0], point))
            raise Crash(f"merge:{point}")

    failpoints.set_hook(hook)
    engine = world.engine()
    hotfix_id = world.start(engine)
    outcome: Any = None
    for _ in range(2 * len(POINTS) + 3):
        try:
            outcome = engine.drive(hotfix_id, take_over=True)
        except Crash:
            engine.close()
            engine = world.engine()
            continue
        if outcome.state == "done":
            break
        assert outcome.paused_reason is not None, outcome.error
        assert "awaiting an approving review of PR #1" in outcome.paused_reason
        assert world.gh.effects()["merges"] == []
        if stage[0] == "waiting" and not [p for p in pending if p[0] == "waiting"]:
            stage[0] = "approved"
            world.gh.review_pull(1, "alice")
    failpoints.set_hook(None)
    assert outcome is not None
    assert outcome.state == "done", outcome
    assert crashes == [("waiting", "before_effect")] + [("approved", p) for p in POINTS]
    assert len(world.gh.effects()["merges"]) == 1
    assert len(world.gh.effects()["reviews"]) == 1


def test_a_back_merge_probed_after_a_crash_reads_mergeability_from_the_pr_itself(
    world: World,
) -> None:
    """GitHub's PR list items carry no ``mergeable``: the probe reads the single PR, so a
    conflicting back-merge found after a crash is recorded as a conflict, not "pending"."""
    world.push_fix(name="app.txt", content="line 1 fixed\nline 2\n")
    git(world.work, "checkout", "-q", "main")
    (world.work / "app.txt").write_text("line 1 rewritten on main\nline 2\n")
    git(world.work, "commit", "-q", "-am", "conflicting change on main")
    git(world.work, "push", "-q", "origin", "main")
    crashed: list[str] = []

    def hook(name: str, point: str) -> None:
        if (name, point) == ("backport", "after_effect") and not crashed:
            crashed.append(point)
            raise Crash("backport:after_effect")

    failpoints.set_hook(hook)
    engine = world.engine()
    hotfix_id = world.start(engine)
    try:
        engine.drive(hotfix_id)
    except Crash:
        engine.close()
    finally:
        failpoints.set_hook(None)
    assert crashed == ["after_effect"]
    outcome = world.engine().drive(hotfix_id, take_over=True)
    assert outcome.state == "done", outcome.error
    facts = world.facts(hotfix_id)
    assert facts["backport_status"] == "conflict"
    assert len(world.gh.effects()["pull_requests"]) == 2


def test_a_deploy_waiting_on_environment_reviewers_pauses_naming_them(world: World) -> None:
    world.gh.set_environment("production", reviewers=["alice", "bob"])
    world.config_sections = {"deploy": {"timeout": 1.0}}
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert "waits for a reviewer of environment production (alice, bob)" in (outcome.paused_reason)
    assert "/acme/shop/actions/runs/" in outcome.paused_reason
    dispatches = world.gh.effects()["dispatches"]
    assert len(dispatches) == 1
    assert world.gh.effects()["deploys"] == []

    world.gh.approve_deployment(dispatches[0]["run_id"], "bob")
    done = world.engine().drive(hotfix_id)
    assert done.state == "done", done.error or done.paused_reason
    effects = world.gh.effects()
    assert len(effects["dispatches"]) == 1  # the waiting run was followed, not replaced
    assert len(effects["deploys"]) == 1
    assert [r["user"] for r in effects["deployment_reviews"]] == ["bob"]
