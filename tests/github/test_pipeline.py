"""Every GitHub phase end to end against the rehearsal server and a real bare repository."""

from __future__ import annotations

from collections.abc import Callable

from tests.github.conftest import World, git


def test_happy_path_runs_every_github_phase_once(world: World) -> None:
    world.gate_facts["audit"] = {"skipped": True, "reason": "gates.audit.enabled = false"}
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    facts = world.facts(hotfix_id)
    effects = world.gh.effects()

    # One emergency PR into production, labelled, with evidence in its body.
    hotfix_prs = [p for p in effects["pull_requests"] if p["base"] == "production"]
    assert len(hotfix_prs) == 1
    pr = hotfix_prs[0]
    assert pr["head"] == world.branch
    assert pr["title"] == "HOTFIX(INC-1): Fix token expiry"
    body = pr["body"]
    assert "**Issue**: INC-1" in body
    assert "**Severity**: critical" in body
    assert f"`{world.fix_sha[:12]}` Fix token expiry check in fix.txt" in body
    assert "fix.txt | 1 +" in body
    assert f"- [x] Critical tests — passed on `{world.fix_sha[:12]}` in 0.2s" in body
    assert "- [x] Build — passed" in body
    # Ticked only from recorded gate results: a skipped gate stays unticked.
    assert "- [ ] Security audit — skipped (gates.audit.enabled = false)" in body
    assert f"`{world.base_sha[:12]}` (release tag `v1.0.0`)" in body
    assert facts["pr_number"] == 1
    assert facts["pr_labels"] == ["hotfix", "urgent"]
    assert {e["name"] for e in effects["labels_created"]} == {"hotfix", "urgent"}
    assert not any(e["auto"] for e in effects["labels_created"])

    # CI passed on the fix sha.
    assert facts["ci"]["status"] == "passed"
    assert [c["name"] for c in facts["ci"]["checks"]] == ["ci/test"]

    # One deploy dispatch, with the correlation id, after the rollback target was recorded.
    assert len(effects["dispatches"]) == 1
    dispatch = effects["dispatches"][0]
    assert dispatch["ref"] == world.branch
    assert dispatch["inputs"] == {
        "environment": "prod",
        "correlation_id": facts["deploy_correlation_id"],
        "hotfix_id": hotfix_id,
        "sha": world.fix_sha,
    }
    assert facts["deploy_correlation_id"].startswith(f"{hotfix_id}-deploy-1-")
    assert facts["deploy_run_id"] == dispatch["run_id"]
    assert facts["deploy_run_url"].endswith(f"/actions/runs/{dispatch['run_id']}")
    assert facts["deployed_sha"] == world.fix_sha
    assert facts["rollback_target"]["sha"] == world.base_sha
    assert facts["rollback_target"]["tag"] == "v1.0.0"
    assert [d["sha"] for d in effects["deploys"]] == [world.fix_sha]

    # One merge pinned to the fix sha, then an annotated tag on the merge commit.
    assert len(effects["merges"]) == 1
    assert effects["merges"][0]["sha"] == world.fix_sha
    assert effects["merges"][0]["method"] == "squash"
    merge_sha = facts["merge_sha"]
    assert world.remote_ref("refs/heads/production") == merge_sha
    assert facts["release_tag"] == "v1.0.1"
    assert git(world.bare, "cat-file", "-t", "v1.0.1") == "tag"
    assert world.remote_ref("v1.0.1^{commit}") == merge_sha
    assert "hotfix INC-1" in git(world.bare, "tag", "-l", "--format=%(contents)", "v1.0.1")

    # The back-merge PR comes from its own branch, so the cleanup cannot close it.
    backports = [p for p in effects["pull_requests"] if p["base"] == "main"]
    assert [p["head"] for p in backports] == [f"backport/{world.branch}"]
    assert facts["backport_status"] == "open"
    assert facts["backport_pr_number"] == 2
    assert world.remote_ref(f"refs/heads/backport/{world.branch}") == world.fix_sha

    # Cleanup deleted both hotfix branches, and nothing was ever force-pushed.
    assert facts["cleaned"] == {
        "remote": True,
        "local": True,
        "notes": [f"{world.work} switched to main"],
    }
    assert [e["ref"] for e in effects["refs_deleted_via_api"]] == [f"refs/heads/{world.branch}"]
    assert git(world.work, "branch", "--list", world.branch) == ""
    assert git(world.work, "symbolic-ref", "--short", "HEAD") == "main"
    assert effects["force_updates"] == []
    tags = [r for r in effects["refs"] if r["ref"].startswith("refs/tags/")]
    assert [t["ref"] for t in tags] == ["refs/tags/v1.0.1"]


def test_dispatch_without_run_details_finds_the_run_by_correlation_id(
    make_world: Callable[..., World],
) -> None:
    world = make_world(supports_run_details=False)
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    facts = world.facts(hotfix_id)
    dispatches = world.gh.effects()["dispatches"]
    assert len(dispatches) == 1
    assert facts["deploy_run_id"] == dispatches[0]["run_id"]
    assert facts["deploy_dispatches"][0]["run_id"] == dispatches[0]["run_id"]


def test_template_tag_scheme_and_optional_phases(world: World) -> None:
    world.config_sections = {
        "tag": {"scheme": "hotfix-{issue}"},
        "ci": {"enabled": False},
        "backport": {"enabled": False},
        "cleanup": {"delete_local_branch": False},
    }
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    facts = world.facts(hotfix_id)
    assert facts["release_tag"] == "hotfix-INC-1"
    assert world.remote_ref("hotfix-INC-1^{commit}") == facts["merge_sha"]
    assert facts["backport_status"] == "skipped"
    assert [p["base"] for p in world.gh.effects()["pull_requests"]] == ["production"]
    assert facts["cleaned"]["local"] is False
    assert git(world.work, "branch", "--list", world.branch) != ""
    assert facts["ci"]["status"] == "skipped"
    assert "GET /repos/{owner}/{repo}/commits/{ref}/check-runs" not in world.gh.request_counts()


def test_backport_conflict_is_reported_and_the_hotfix_completes(world: World) -> None:
    world.push_fix(name="app.txt", content="line 1 fixed\nline 2\n")
    git(world.work, "checkout", "-q", "main")
    (world.work / "app.txt").write_text("line 1 rewritten on main\nline 2\n")
    git(world.work, "commit", "-q", "-am", "conflicting change on main")
    git(world.work, "push", "-q", "origin", "main")
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    facts = world.facts(hotfix_id)
    assert facts["backport_status"] == "conflict"
    assert "resolve it on the branch" in facts["backport_message"]
    assert facts["cleaned"]["remote"] is True


def test_repository_without_ci_passes_after_the_grace(make_world: Callable[..., World]) -> None:
    world = make_world(ci_checks=())
    hotfix_id, outcome = world.run()
    assert outcome.state == "done", outcome.error
    ci = world.facts(hotfix_id)["ci"]
    assert ci["status"] == "no_checks"
    assert "without CI" in ci["note"]
