"""Rulesets and GitHub's auto-merge against the rehearsal GitHub: a ruleset's review and
check requirements are durable waits like branch protection's; ``merge.auto`` turns on
auto-merge once (even across crashes) and follows the PR to GitHub's own merge."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.durable import failpoints
from tests.github.conftest import TOKEN, World, git
from tests.github.test_crash_resume import POINTS


def _client(world: World) -> GitHubClient:
    return GitHubClient.from_config(world.config, world.work, backoff_base=0.005)


def test_the_rules_of_a_branch_are_served_in_githubs_shape(world: World) -> None:
    world.gh.set_ruleset(
        "production",
        required_approving_review_count=2,
        required_status_checks=["ci/test"],
        allowed_merge_methods=["squash"],
    )
    client = _client(world)
    try:
        rules = client.branch_rules("production")
        assert client.branch_rules("main") == []
    finally:
        client.close()
    by_type = {r["type"]: r for r in rules}
    assert by_type["pull_request"]["parameters"]["required_approving_review_count"] == 2
    assert by_type["pull_request"]["parameters"]["allowed_merge_methods"] == ["squash"]
    assert by_type["required_status_checks"]["parameters"]["required_status_checks"] == [
        {"context": "ci/test"}
    ]
    assert {r["ruleset_source_type"] for r in rules} == {"Repository"}


def test_a_ruleset_refuses_a_merge_as_github_does(world: World) -> None:
    world.push_fix()
    world.gh.set_ruleset("production", required_approving_review_count=1)
    client = _client(world)
    try:
        pr, _ = client.open_pull(world.branch, "production", "t", "b")
    finally:
        client.close()
    answer = requests.put(
        f"{world.gh.base_url}/repos/acme/shop/pulls/{pr['number']}/merge",
        json={"merge_method": "squash"},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 405
    assert answer.json()["message"].startswith("Repository rule violations found")
    assert "approving review is required" in answer.json()["message"]
    assert world.gh.effects()["merges"] == []


def test_a_ruleset_review_is_a_durable_wait_then_resume_merges(world: World) -> None:
    world.gh.set_ruleset("production", required_approving_review_count=1)
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert "awaiting an approving review of PR #1 (1 required, 0 given)" in outcome.paused_reason
    assert world.gh.effects()["merges"] == []
    world.gh.review_pull(1, "alice")
    done = world.engine().drive(hotfix_id)
    assert done.state == "done", done.error or done.paused_reason
    assert len(world.gh.effects()["merges"]) == 1
    assert world.facts(hotfix_id)["merge_required_reviews"] == 1


def test_a_ruleset_required_check_that_fails_is_a_durable_wait(world: World) -> None:
    world.gh.set_ruleset(
        "production", required_approving_review_count=0, required_status_checks=["security"]
    )
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert (
        "awaiting required status checks on PR #1: security (missing" in (outcome.paused_reason)
        or "security (failure)" in outcome.paused_reason
    )
    assert world.facts(hotfix_id)["merge_required_checks"] == ["security"]
    assert world.gh.effects()["merges"] == []


def test_a_ruleset_that_forbids_the_configured_merge_method_fails_clearly(world: World) -> None:
    world.gh.set_ruleset(
        "production", required_approving_review_count=0, allowed_merge_methods=["rebase"]
    )
    world.config_sections = {"merge": {"method": "squash"}}
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "allow only rebase merges, not merge.method = 'squash'" in outcome.error
    assert world.gh.effects()["merges"] == []


def test_auto_merge_is_turned_on_and_github_merges_after_the_review(world: World) -> None:
    world.gh.protect_branch("production", required_approving_review_count=1)
    world.config_sections = {"merge": {"auto": True}}
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert "awaiting an approving review of PR #1" in outcome.paused_reason
    assert "auto-merge is on" in outcome.paused_reason
    effects = world.gh.effects()
    assert [(a["pr"], a["method"]) for a in effects["auto_merges"]] == [(1, "squash")]
    assert effects["merges"] == []
    auto = world.facts(hotfix_id)["merge_auto"]
    assert (auto["method"], auto["enabled_by"]) == ("squash", "rehearsal-bot")

    world.gh.review_pull(1, "alice")  # GitHub merges it by itself from now on
    done = world.engine().drive(hotfix_id)
    assert done.state == "done", done.error or done.paused_reason
    effects = world.gh.effects()
    assert len(effects["auto_merges"]) == 1
    assert len(effects["merges"]) == 1
    facts = world.facts(hotfix_id)
    assert facts["merge_sha"] == effects["merges"][0]["merge_commit_sha"]
    assert facts["merged_head_sha"] == world.fix_sha


def test_auto_merge_on_a_pr_with_nothing_to_wait_for_merges_directly(world: World) -> None:
    world.config_sections = {"merge": {"auto": True}}
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error or outcome.paused_reason
    effects = world.gh.effects()
    assert effects["auto_merges"] == []  # GitHub refuses it on a clean PR: gh merges
    assert len(effects["merges"]) == 1
    assert "merge_auto" not in world.facts(hotfix_id)


class Crash(BaseException):
    """A simulated power cut."""


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_around_turning_on_auto_merge_turns_it_on_once(world: World, point: str) -> None:
    world.gh.protect_branch("production", required_approving_review_count=1)
    world.config_sections = {"merge": {"auto": True}}
    world.push_fix()
    crashed: list[str] = []

    def hook(name: str, at: str) -> None:
        if name == "merge" and at == point and not crashed:
            crashed.append(at)
            raise Crash(at)

    failpoints.set_hook(hook)
    engine = world.engine()
    hotfix_id = world.start(engine)
    outcome: Any = None
    try:
        outcome = engine.drive(hotfix_id)
    except Crash:
        engine.close()
    finally:
        failpoints.set_hook(None)
    if point == "before_effect":
        assert crashed == [point]
    for _ in range(2):
        outcome = world.engine().drive(hotfix_id, take_over=True)
    assert outcome.paused_reason is not None, outcome.error
    assert "auto-merge is on" in outcome.paused_reason
    world.gh.review_pull(1, "alice")
    done = world.engine().drive(hotfix_id, take_over=True)
    assert done.state == "done", done.error or done.paused_reason
    effects = world.gh.effects()
    assert len(effects["auto_merges"]) == 1
    assert len(effects["merges"]) == 1


def test_auto_merge_not_allowed_by_the_repository_fails_with_what_to_do(world: World) -> None:
    world.gh.protect_branch("production", required_approving_review_count=1)
    world.gh.set_repository(allow_auto_merge=False)
    world.config_sections = {"merge": {"auto": True}}
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "GitHub refused to turn on auto-merge of PR #1" in outcome.error
    assert "Auto merge is not allowed for this repository" in outcome.error
    effects = world.gh.effects()
    assert effects["auto_merges"] == []
    assert effects["merges"] == []


def test_a_github_without_rulesets_is_read_as_no_rules(world: World) -> None:
    """A GitHub Enterprise Server older than rulesets answers 404: branch protection alone
    then decides, and the hotfix merges."""
    world.gh.set_fault(
        "GET /repos/{owner}/{repo}/rules/branches/{branch}", status=404, error_rate=1.0
    )
    _hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error or outcome.paused_reason
    assert len(world.gh.effects()["merges"]) == 1
    counts = world.gh.request_counts()["GET /repos/{owner}/{repo}/rules/branches/{branch}"]
    assert counts["faulted"] >= 1, counts  # the 404 was really answered


def test_a_ruleset_required_check_that_passes_lets_the_merge_through(world: World) -> None:
    world.gh.set_ruleset(
        "production", required_approving_review_count=0, required_status_checks=["ci/test"]
    )
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error or outcome.paused_reason
    assert world.facts(hotfix_id)["merge_required_checks"] == ["ci/test"]
    assert len(world.gh.effects()["merges"]) == 1


def test_auto_merge_is_asked_for_the_deployed_head_and_a_moved_head_stops_the_phase(
    world: World,
) -> None:
    world.gh.protect_branch("production", required_approving_review_count=1)
    world.config_sections = {"merge": {"auto": True}}
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert "auto-merge is on" in outcome.paused_reason
    # Someone pushes to the hotfix branch after the deploy, before the review.
    (world.work / "later.txt").write_text("not deployed\n")
    git(world.work, "add", "later.txt")
    git(world.work, "commit", "-q", "-m", "a change production does not run")
    git(world.work, "push", "-q", "origin", f"HEAD:refs/heads/{world.branch}")
    moved = git(world.work, "rev-parse", "HEAD")
    assert moved != world.fix_sha

    stopped = world.engine().drive(hotfix_id)
    assert stopped.state == "failed"
    assert stopped.error is not None
    assert f"head moved to {moved[:12]} after auto-merge was turned on" in stopped.error
    assert "turn auto-merge off on GitHub now" in stopped.error
    assert world.gh.effects()["merges"] == []


def test_github_refuses_auto_merge_for_a_head_other_than_the_expected_one(world: World) -> None:
    world.push_fix()
    world.gh.protect_branch("production", required_approving_review_count=1)
    client = _client(world)
    try:
        pr, _ = client.open_pull(world.branch, "production", "t", "b")
        ok, message = client.enable_auto_merge(str(pr["node_id"]), "squash", "0" * 40)
        assert (ok, message) == (False, "Head branch was modified. Review and try the merge again.")
        assert client.enable_auto_merge(str(pr["node_id"]), "squash", world.fix_sha) == (True, "")
    finally:
        client.close()
    assert len(world.gh.effects()["auto_merges"]) == 1
