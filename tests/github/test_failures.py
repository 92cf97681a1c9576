"""What the GitHub phases do when GitHub or the world says no: clear, resumable failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hotfix_fsm.adapters.github import GitHubAPIError, GitHubClient
from hotfix_fsm.phases.base import PhaseContext
from hotfix_fsm.phases.github_phases import Backport, Deploy
from tests.github.conftest import World, git


def test_failed_ci_check_names_the_check_and_resume_waits_again(world: World) -> None:
    world.gh.set_ci(conclusion="failure")
    hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "phase wait_ci" in outcome.error
    assert "CI check 'ci/test' failed (failure)" in outcome.error
    assert "/acme/shop/runs/" in outcome.error
    assert "hotfix resume" in outcome.error
    assert world.gh.effects()["dispatches"] == []

    world.gh.set_ci(sha=world.fix_sha, conclusion="success")  # the check was re-run
    outcome = world.engine().drive(hotfix_id)
    assert outcome.state == "done", outcome.error


def test_required_check_that_never_reports_fails_at_the_deadline(world: World) -> None:
    world.config_sections = {"ci": {"required_checks": ["ci/test", "ci/lint"], "timeout": 0.6}}
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "did not finish within 1s" in outcome.error
    assert "ci/lint (not reported)" in outcome.error


def test_failed_deploy_run_fails_with_its_link_and_resume_deploys_again(world: World) -> None:
    world.gh.set_workflow_conclusion("deploy-production.yml", "failure")
    hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    dispatches = world.gh.effects()["dispatches"]
    assert len(dispatches) == 1
    assert f"/actions/runs/{dispatches[0]['run_id']}" in outcome.error
    assert "conclusion failure" in outcome.error
    facts = world.facts(hotfix_id)
    assert facts["rollback_target"] == {
        **facts["rollback_target"],
        "sha": world.base_sha,
        "tag": "v1.0.0",
    }
    assert world.gh.effects()["deploys"] == []

    # Resuming after a reported failure is a deliberate second deploy attempt.
    world.gh.set_workflow_conclusion("deploy-production.yml", "success")
    outcome = world.engine().drive(hotfix_id)
    assert outcome.state == "done", outcome.error
    effects = world.gh.effects()
    assert len(effects["dispatches"]) == 2
    assert (
        effects["dispatches"][0]["inputs"]["correlation_id"]
        != (effects["dispatches"][1]["inputs"]["correlation_id"])
    )
    assert [d["sha"] for d in effects["deploys"]] == [world.fix_sha]


@pytest.mark.parametrize(
    ("github", "expected"),
    [
        ({"token": "not-a-valid-token"}, ["401 Bad credentials", "`repo` scope"]),
        ({"repository": "acme/nope"}, ["repository acme/nope does not exist", "github.repository"]),
    ],
)
def test_bad_token_or_repository_fails_the_pr_clearly(
    world: World, github: dict[str, str], expected: list[str]
) -> None:
    world.config_sections = {"github": github}
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "phase open_pr" in outcome.error
    for text in expected:
        assert text in outcome.error
    assert "not-a-valid-token" not in outcome.error
    assert world.gh.effects()["pull_requests"] == []


def test_merge_refuses_a_head_that_moved_after_the_deploy(world: World) -> None:
    def someone_pushes() -> None:
        (world.work / "late.txt").write_text("unreviewed\n")
        git(world.work, "add", "late.txt")
        git(world.work, "commit", "-q", "-m", "late change")
        git(world.work, "push", "-q", "origin", f"HEAD:refs/heads/{world.branch}")

    world.on_monitor = someone_pushes
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "phase merge" in outcome.error
    assert "head moved" in outcome.error
    assert f"approved fix is {world.fix_sha[:12]}" in outcome.error
    assert world.gh.effects()["merges"] == []


def test_merge_refuses_a_pr_that_conflicts_with_production(world: World) -> None:
    def production_moves() -> None:
        git(world.work, "checkout", "-q", "-B", "other", "origin/production")
        (world.work / "fix.txt").write_text("someone else's fix\n")
        git(world.work, "add", "fix.txt")
        git(world.work, "commit", "-q", "-m", "conflicting change on production")
        git(world.work, "push", "-q", "origin", "HEAD:refs/heads/production")

    world.on_monitor = production_moves
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "PR #1 cannot be merged (squash)" in outcome.error
    assert "Pull Request is not mergeable" in outcome.error
    assert "resolve conflicts" in outcome.error
    assert world.gh.effects()["merges"] == []


def test_tag_name_taken_by_another_commit_is_not_overwritten(world: World) -> None:
    world.config_sections = {"tag": {"scheme": "hotfix-{issue}"}}
    git(world.work, "tag", "hotfix-INC-1", world.base_sha)
    git(world.work, "push", "-q", "origin", "hotfix-INC-1")
    _hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "tag hotfix-INC-1" in outcome.error
    assert "not the merge commit" in outcome.error
    assert world.remote_ref("hotfix-INC-1^{commit}") == world.base_sha
    assert world.gh.effects()["force_updates"] == []


def test_cleanup_accepts_a_deleted_branch_and_frees_a_work_tree(world: World) -> None:
    world.push_fix()
    tree = world.root / "hotfix-tree"
    git(world.work, "checkout", "-q", "main")
    git(world.work, "worktree", "add", "-q", str(tree), world.branch)

    class BackportThenDeleteBranch(Backport):
        """GitHub's "delete branch on merge" removes the head before our cleanup."""

        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            facts = super().run(ctx)
            git(world.work, "push", "-q", "origin", "--delete", world.branch)
            return facts

    hotfix_id, outcome = world.run(backport=BackportThenDeleteBranch(mergeable_wait=2.0))
    assert outcome.state == "done", outcome.error
    cleaned = world.facts(hotfix_id)["cleaned"]
    assert cleaned["remote"] is True
    assert cleaned["local"] is True
    assert f"{tree} switched to" in cleaned["notes"][0]
    assert world.gh.effects()["refs_deleted_via_api"] == []
    assert git(world.work, "branch", "--list", world.branch) == ""


def test_storm_of_errors_and_dropped_connections_is_survived_exactly_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world()
    world.push_fix()
    world.gh.set_fault("*", error_rate=0.25, status=502, drop_rate=0.1, seed=7)
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    effects = world.gh.effects()
    assert [p["base"] for p in effects["pull_requests"]] == ["production", "main"]
    assert len(effects["dispatches"]) == 1
    assert len(effects["merges"]) == 1
    assert len(effects["refs_deleted_via_api"]) == 1
    assert effects["force_updates"] == []
    faulted = sum(c["faulted"] for c in world.gh.request_counts().values())
    assert faulted >= 5
    assert world.facts(hotfix_id)["release_tag"] == "v1.0.1"


def test_a_dispatch_whose_answer_was_lost_is_adopted_not_resent(world: World) -> None:
    """The dispatch reaches GitHub but its answer does not come back in time."""
    world.config_sections = {"github": {"request_timeout": 0.3}}
    world.gh.set_fault("POST */dispatches", latency=0.45)
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    dispatches = world.gh.effects()["dispatches"]
    assert len(dispatches) == 1
    assert world.facts(hotfix_id)["deploy_run_id"] == dispatches[0]["run_id"]


def test_a_dispatch_that_failed_before_reaching_github_is_sent_again(world: World) -> None:
    world.push_fix()
    world.gh.set_fault("POST */dispatches", error_rate=1.0, status=502)

    def client_that_recovers(s: Any) -> GitHubClient:
        class Recovering(GitHubClient):
            def dispatch_workflow(self, *args: Any, **kw: Any) -> dict[str, Any] | None:
                try:
                    return super().dispatch_workflow(*args, **kw)
                finally:
                    world.gh.clear_faults()  # GitHub recovers after the first 502

        return Recovering.from_config(s.config, s.repo, backoff_base=0.005)

    engine = world.engine(github=client_that_recovers)
    hotfix_id = world.start(engine)
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "done", outcome.error
    effects = world.gh.effects()
    assert len(effects["dispatches"]) == 1
    transient = [
        r.payload["error"]
        for r in engine.journal(hotfix_id)
        if r.kind == "failed" and r.phase == "deploy"
    ]
    assert len(transient) == 1
    assert "may or may not have taken effect" in transient[0]
    ledger = world.facts(hotfix_id)["deploy_dispatches"]
    assert len(ledger) == 2  # the lost one and the one that ran
    assert ledger[1]["run_id"] == effects["dispatches"][0]["run_id"]


def test_a_refused_dispatch_is_marked_and_resume_dispatches_the_fixed_workflow(
    world: World,
) -> None:
    """404 for a misnamed deploy workflow: nothing was dispatched, the ledger says so, and
    once ``deploy.workflow`` is corrected the resume dispatches the right workflow once."""
    world.config_sections = {"deploy": {"workflow": "deploy-prod.yml"}}
    hotfix_id, outcome = world.run()
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "phase deploy" in outcome.error
    assert "workflow deploy-prod.yml does not exist in acme/shop" in outcome.error
    assert "404" in outcome.error
    assert "nothing was dispatched" in outcome.error
    assert "deploy.workflow" in outcome.error  # what to fix
    assert "hotfix resume" in outcome.error
    assert world.gh.effects()["dispatches"] == []
    [refused] = world.facts(hotfix_id)["deploy_dispatches"]
    assert refused["workflow"] == "deploy-prod.yml"
    assert refused["run_id"] is None
    assert refused["refused"]["status"] == 404
    assert "deploy-prod.yml" in refused["refused"]["reason"]

    world.config_sections = {}  # the user fixes deploy.workflow
    outcome = world.engine().drive(hotfix_id)
    assert outcome.state == "done", outcome.error
    dispatches = world.gh.effects()["dispatches"]
    assert [d["workflow"] for d in dispatches] == ["deploy-production.yml"]
    ledger = world.facts(hotfix_id)["deploy_dispatches"]
    assert [e["workflow"] for e in ledger] == ["deploy-prod.yml", "deploy-production.yml"]
    assert "refused" not in ledger[1]
    assert ledger[1]["run_id"] == dispatches[0]["run_id"]
    assert ledger[1]["correlation_id"] == dispatches[0]["inputs"]["correlation_id"]
    assert world.facts(hotfix_id)["deploy_run_id"] == dispatches[0]["run_id"]


class PowerCut(BaseException):
    """A simulated crash: BaseException, so nothing in the engine handles it."""


def test_a_crash_after_a_refused_dispatch_probes_it_as_not_dispatched(world: World) -> None:
    """The refusal was recorded in the ledger, then the process died before the failure was
    journaled: the probe must call the dispatch "not done" without looking for runs of the
    missing workflow, and the resume dispatches the corrected workflow once."""

    class DeployThenCrash(Deploy):
        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            try:
                return super().run(ctx)
            except GitHubAPIError as exc:
                raise PowerCut from exc

    world.push_fix()
    world.config_sections = {"deploy": {"workflow": "deploy-prod.yml"}}
    engine = world.engine(deploy=DeployThenCrash(run_search_grace=0.5, find_timeout=5.0))
    hotfix_id = world.start(engine)
    with pytest.raises(PowerCut):
        engine.drive(hotfix_id)
    engine.close()
    assert world.gh.effects()["dispatches"] == []
    assert world.facts(hotfix_id)["deploy_dispatches"][0]["refused"]["status"] == 404

    world.config_sections = {}
    engine = world.engine()
    outcome = engine.drive(hotfix_id, take_over=True)
    assert outcome.state == "done", outcome.error
    probes = [r.payload for r in engine.journal(hotfix_id) if r.kind == "probe"]
    deploy_probes = [p for p in probes if "deploy-prod.yml" in str(p["reason"])]
    assert len(deploy_probes) == 1
    assert deploy_probes[0]["status"] == "not_done"
    assert "refused" in deploy_probes[0]["reason"]
    dispatches = world.gh.effects()["dispatches"]
    assert [d["workflow"] for d in dispatches] == ["deploy-production.yml"]
