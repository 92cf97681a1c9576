"""The rehearsal GitHub server over real HTTP, backed by real bare git repositories."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from hotfix_fsm.sandbox.production_app import ProductionApp
from hotfix_fsm.sandbox.refhook import read_ref_log
from tests.helpers_git import make_release_origin

TOKEN = "sandbox-token"
AUTH = {"Authorization": f"token {TOKEN}", "Accept": "application/vnd.github+json"}
REPO = "/repos/acme/shop"
GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
# Short enough for a fast suite, long enough that each phase is observable under load.
FAST: dict[str, Any] = {"ci_seconds": 0.6, "run_queued_seconds": 0.1, "run_seconds": 0.5}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return stripped stdout."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout.strip()


def make_origin(root: Path) -> tuple[Path, Path]:
    """A bare origin with ``main``, ``production`` and tag ``v1.0.0``, plus a clone."""
    return make_release_origin(root, run=git)


def push_hotfix(work: Path, branch: str, content: str = "fixed\n", name: str = "fix.txt") -> str:
    """Branch from origin/production, commit one file, push; return the commit sha."""
    git(work, "fetch", "-q", "origin")
    git(work, "checkout", "-q", "-B", branch, "origin/production")
    (work / name).write_text(content)
    git(work, "add", name)
    git(work, "commit", "-q", "-m", f"fix on {branch}")
    git(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(work, "rev-parse", "HEAD")


def wait_for(check: Callable[[], Any], timeout: float = 120.0) -> Any:
    """Poll ``check`` every 20 ms until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


@dataclass
class World:
    """A running rehearsal server, its repositories and an authenticated session."""

    root: Path
    bare: Path
    work: Path
    gh: RehearsalGitHub
    url: str
    http: requests.Session
    deploys: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.url + path, headers={**AUTH, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.http.post(self.url + path, json=body, headers=AUTH, **kw)

    def open_pr(self, branch: str = "hotfix/ISSUE-1", base: str = "production") -> dict[str, Any]:
        resp = self.post(
            REPO + "/pulls",
            {"title": "HOTFIX: auth", "head": f"acme:{branch}", "base": base, "body": "b"},
        )
        assert resp.status_code == 201, resp.text
        pr: dict[str, Any] = resp.json()
        return pr


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    bare, work = make_origin(tmp_path)
    deploys: list[tuple[str, str, dict[str, str]]] = []
    gh = RehearsalGitHub(
        tmp_path / "state",
        bare,
        on_deploy=lambda wf, sha, inputs: deploys.append((wf, sha, inputs)),
        **FAST,
    )
    with gh, requests.Session() as http:
        yield World(tmp_path, bare, work, gh, gh.base_url, http, deploys)


# -- auth, repository, headers -------------------------------------------------------------------


def test_auth_is_required_and_headers_are_github_shaped(world: World) -> None:
    anon = world.http.get(world.url + "/user")
    assert anon.status_code == 401
    bad = world.http.get(world.url + "/user", headers={"Authorization": "token nope"})
    assert bad.status_code == 401
    assert bad.json()["message"] == "Bad credentials"
    assert "documentation_url" in bad.json()

    ok = world.http.get(world.url + "/user", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    assert ok.headers["X-OAuth-Scopes"] == "repo, workflow"
    for name in ("limit", "remaining", "reset", "used", "resource"):
        assert f"x-ratelimit-{name}" in ok.headers
    assert world.get(REPO).json()["full_name"] == "acme/shop"
    assert world.get("/repos/acme/other").status_code == 404
    assert world.get("/repos/acme/other").json()["message"] == "Not Found"
    core = world.get("/rate_limit").json()["resources"]["core"]
    assert core["limit"] == 5000
    assert core["used"] >= 2


# -- pull requests and labels --------------------------------------------------------------------


def test_pull_request_create_list_and_duplicate(world: World) -> None:
    sha = push_hotfix(world.work, "hotfix/ISSUE-1")
    pr = world.open_pr()
    assert pr["number"] == 1
    assert pr["head"] == {
        "label": "acme:hotfix/ISSUE-1",
        "ref": "hotfix/ISSUE-1",
        "sha": sha,
        "repo": pr["head"]["repo"],
        "user": pr["head"]["user"],
    }
    assert (pr["head"]["repo"]["full_name"], pr["head"]["user"]["login"]) == ("acme/shop", "acme")
    assert pr["base"]["ref"] == "production"
    assert pr["state"] == "open"
    # As on GitHub, mergeability is computed in the background: unknown on the first read.
    assert pr["mergeable"] is None
    assert pr["mergeable_state"] == "unknown"
    assert world.get(REPO + "/pulls/1").json()["mergeable"] is True
    assert pr["html_url"].endswith("/acme/shop/pull/1")

    listed = world.get(REPO + "/pulls", params={"head": "acme:hotfix/ISSUE-1", "state": "all"})
    assert [p["number"] for p in listed.json()] == [1]
    # List items are GitHub's pull-request-simple: no mergeability, no ``merged``.
    assert not {"mergeable", "mergeable_state", "merged"} & set(listed.json()[0])
    assert world.get(REPO + "/pulls", params={"head": "acme:hotfix/other"}).json() == []
    assert world.get(REPO + "/pulls", params={"head": "evil:hotfix/ISSUE-1"}).json() == []

    dup = world.post(
        REPO + "/pulls", {"title": "again", "head": "acme:hotfix/ISSUE-1", "base": "production"}
    )
    assert dup.status_code == 422
    assert dup.json()["message"] == "Validation Failed"
    assert dup.json()["errors"][0]["message"] == (
        "A pull request already exists for acme:hotfix/ISSUE-1."
    )

    missing = world.post(
        REPO + "/pulls", {"title": "t", "head": "acme:hotfix/none", "base": "production"}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "head"
    assert missing.json()["errors"][0]["code"] == "invalid"

    commits = world.get(REPO + "/pulls/1/commits").json()
    assert [c["sha"] for c in commits] == [sha]
    assert world.get(REPO + "/pulls/99").status_code == 404

    closed = world.http.patch(world.url + REPO + "/pulls/1", json={"state": "closed"}, headers=AUTH)
    assert closed.json()["state"] == "closed"
    assert world.get(REPO + "/pulls", params={"state": "open"}).json() == []
    assert [p["title"] for p in world.gh.effects()["pull_requests"]] == ["HOTFIX: auth"]


def test_labels_create_and_add(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    world.open_pr()
    assert world.get(REPO + "/labels/hotfix").status_code == 404
    created = world.post(REPO + "/labels", {"name": "hotfix", "color": "d73a4a"})
    assert created.status_code == 201
    assert created.json()["name"] == "hotfix"
    again = world.post(REPO + "/labels", {"name": "hotfix", "color": "d73a4a"})
    assert again.status_code == 422
    assert again.json()["errors"][0]["code"] == "already_exists"
    assert world.get(REPO + "/labels/hotfix").json()["color"] == "d73a4a"

    added = world.post(REPO + "/issues/1/labels", {"labels": ["hotfix", "urgent"]})
    assert added.status_code == 200
    assert sorted(label["name"] for label in added.json()) == ["hotfix", "urgent"]
    assert len(world.get(REPO + "/issues/1/labels").json()) == 2
    assert [lb["name"] for lb in world.get(REPO + "/pulls/1").json()["labels"]] == [
        "hotfix",
        "urgent",
    ]
    effects = world.gh.effects()
    assert effects["labels_added"] == [{"pr": 1, "labels": ["hotfix", "urgent"]}]
    assert [lb["name"] for lb in effects["labels_created"]] == ["hotfix", "urgent"]


# -- merges --------------------------------------------------------------------------------------


def test_squash_merge_really_updates_the_bare_repo(world: World) -> None:
    head = push_hotfix(world.work, "hotfix/ISSUE-1")
    old_production = git(world.bare, "rev-parse", "production")
    world.open_pr()

    stale = world.http.put(
        world.url + REPO + "/pulls/1/merge",
        json={"merge_method": "squash", "sha": old_production},
        headers=AUTH,
    )
    assert stale.status_code == 409
    assert stale.json()["message"] == "Head branch was modified. Review and try the merge again."
    assert git(world.bare, "rev-parse", "production") == old_production

    merged = world.http.put(
        world.url + REPO + "/pulls/1/merge",
        json={"merge_method": "squash", "sha": head},
        headers=AUTH,
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["merged"] is True
    assert body["message"] == "Pull Request successfully merged"
    assert git(world.bare, "rev-parse", "production") == body["sha"]
    assert git(world.bare, "rev-parse", f"{body['sha']}^") == old_production
    assert git(world.bare, "log", "-1", "--format=%s", body["sha"]) == "HOTFIX: auth (#1)"
    assert git(world.bare, "show", f"{body['sha']}:fix.txt") == "fixed"

    pr = world.get(REPO + "/pulls/1").json()
    assert pr["merged"] is True
    assert pr["state"] == "closed"
    assert pr["merge_commit_sha"] == body["sha"]
    assert world.get(REPO + "/pulls/1/merge").status_code == 204
    again = world.http.put(world.url + REPO + "/pulls/1/merge", json={}, headers=AUTH)
    assert again.status_code == 405
    effects = world.gh.effects()
    assert effects["merges"] == [
        {"pr": 1, "sha": head, "method": "squash", "merge_commit_sha": body["sha"]}
    ]
    updates = [e for e in effects["refs"] if e["ref"] == "refs/heads/production"]
    assert updates[-1]["new"] == body["sha"]
    assert updates[-1]["forced"] is False


def test_merge_commit_has_two_parents(world: World) -> None:
    head = push_hotfix(world.work, "hotfix/ISSUE-1")
    world.open_pr(base="main")
    merged = world.http.put(
        world.url + REPO + "/pulls/1/merge", json={"merge_method": "merge"}, headers=AUTH
    )
    assert merged.status_code == 200
    parents = git(world.bare, "log", "-1", "--format=%P", "main").split()
    assert parents[1] == head


def test_conflicting_pull_request_is_not_mergeable(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1", content="hotfix version\n", name="app.txt")
    # Production moves on with a conflicting change to the same file.
    git(world.work, "checkout", "-q", "-B", "prod-change", "origin/production")
    (world.work / "app.txt").write_text("someone else\n")
    git(world.work, "commit", "-q", "-am", "conflicting")
    git(world.work, "push", "-q", "origin", "HEAD:production")
    world.open_pr()
    pr = world.get(REPO + "/pulls/1").json()
    assert pr["mergeable"] is False
    assert pr["mergeable_state"] == "dirty"
    resp = world.http.put(
        world.url + REPO + "/pulls/1/merge", json={"merge_method": "squash"}, headers=AUTH
    )
    assert resp.status_code == 405
    assert resp.json()["message"] == "Pull Request is not mergeable"


# -- CI ------------------------------------------------------------------------------------------


def test_ci_checks_progress_to_success(world: World) -> None:
    sha = push_hotfix(world.work, "hotfix/ISSUE-1")
    first = world.get(f"{REPO}/commits/{sha}/check-runs").json()
    assert first["total_count"] == 1
    assert first["check_runs"][0]["name"] == "ci/test"
    assert first["check_runs"][0]["status"] in ("queued", "in_progress")
    assert world.get(f"{REPO}/commits/{sha}/status").json()["state"] == "pending"

    def completed() -> dict[str, Any] | None:
        runs = world.get(f"{REPO}/commits/hotfix/ISSUE-1/check-runs").json()["check_runs"]
        return runs[0] if runs[0]["status"] == "completed" else None

    check = wait_for(completed)
    assert check["conclusion"] == "success"
    assert check["head_sha"] == sha
    status = world.get(f"{REPO}/commits/{sha}/status").json()
    assert status["state"] == "success"
    assert status["statuses"][0]["context"] == "ci/test"

    # A commit on no branch has no CI; an unknown ref is a 422.
    git(world.work, "commit", "-q", "--allow-empty", "-m", "local only")
    local = git(world.work, "rev-parse", "HEAD")
    git(world.work, "push", "-q", "origin", f"{local}:refs/heads/tmp")
    git(world.work, "push", "-q", "origin", ":tmp")
    assert world.get(f"{REPO}/commits/{local}/check-runs").json()["total_count"] == 0
    assert world.get(f"{REPO}/commits/nope/check-runs").status_code == 422


def test_ci_failure_is_configurable(world: World) -> None:
    world.gh.set_ci(conclusion="failure", checks=["ci/test", "ci/lint"], seconds=0.1)
    sha = push_hotfix(world.work, "hotfix/ISSUE-1")

    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = world.get(f"{REPO}/commits/{sha}/status").json()
        return body if body["state"] != "pending" else None

    assert wait_for(done)["state"] == "failure"
    runs = world.get(f"{REPO}/commits/{sha}/check-runs").json()["check_runs"]
    assert sorted(r["name"] for r in runs) == ["ci/lint", "ci/test"]
    assert {r["conclusion"] for r in runs} == {"failure"}
    world.gh.set_ci(sha=sha, conclusion="success")
    assert world.get(f"{REPO}/commits/{sha}/status").json()["state"] == "success"


# -- workflows -----------------------------------------------------------------------------------


def test_dispatch_with_run_details_and_run_lifecycle(world: World) -> None:
    sha = push_hotfix(world.work, "hotfix/ISSUE-1")
    workflow = world.get(REPO + "/actions/workflows/deploy-production.yml")
    assert workflow.json()["path"] == ".github/workflows/deploy-production.yml"
    assert world.get(REPO + "/actions/workflows/nope.yml").status_code == 404

    resp = world.post(
        REPO + "/actions/workflows/deploy-production.yml/dispatches",
        {
            "ref": "hotfix/ISSUE-1",
            "inputs": {"correlation_id": "hf-123"},
            "return_run_details": True,
        },
    )
    assert resp.status_code == 200, resp.text
    details = resp.json()
    run_id = details["workflow_run_id"]
    assert details["run_url"].endswith(f"/actions/runs/{run_id}")
    assert "html_url" in details

    run = world.get(f"{REPO}/actions/runs/{run_id}").json()
    assert run["status"] in ("queued", "in_progress")
    assert run["conclusion"] is None
    assert run["head_sha"] == sha
    assert run["head_branch"] == "hotfix/ISSUE-1"
    assert run["event"] == "workflow_dispatch"
    assert run["display_title"] == "Deploy Production hf-123"
    assert run["path"] == ".github/workflows/deploy-production.yml"
    assert "inputs" not in run
    seen = {run["status"]}

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = world.get(f"{REPO}/actions/runs/{run_id}").json()
        seen.add(body["status"])
        return body if body["status"] == "completed" else None

    assert wait_for(finished)["conclusion"] == "success"
    assert "in_progress" in seen
    for _ in range(3):
        world.get(f"{REPO}/actions/runs/{run_id}")
    world.gh.effects()
    assert world.deploys == [("deploy-production.yml", sha, {"correlation_id": "hf-123"})]

    listed = world.get(
        REPO + "/actions/workflows/deploy-production.yml/runs",
        params={"event": "workflow_dispatch", "branch": "hotfix/ISSUE-1", "per_page": "5"},
    ).json()
    assert [r["id"] for r in listed["workflow_runs"]] == [run_id]
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    assert (
        world.get(REPO + "/actions/runs", params={"created": f">={since}"}).json()["total_count"]
        == 1
    )
    effects = world.gh.effects()
    assert effects["dispatches"][0]["inputs"] == {"correlation_id": "hf-123"}
    assert effects["deploys"][0]["sha"] == sha


def test_dispatch_without_run_details_and_validation(world: World, tmp_path: Path) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    path = REPO + "/actions/workflows/deploy-production.yml/dispatches"
    plain = world.post(path, {"ref": "hotfix/ISSUE-1", "inputs": {}})
    assert plain.status_code == 204
    assert plain.content == b""
    bad_ref = world.post(path, {"ref": "no-such-branch"})
    assert bad_ref.status_code == 422
    assert bad_ref.json()["message"] == "No ref found for: no-such-branch"
    not_string = world.post(path, {"ref": "main", "inputs": {"n": 1}})
    assert not_string.status_code == 422
    tag = world.post(path, {"ref": "v1.0.0"})
    assert tag.status_code == 204
    assert len(world.gh.effects()["dispatches"]) == 2

    old = RehearsalGitHub(tmp_path / "old-state", world.bare, supports_run_details=False, **FAST)
    with old, requests.Session() as http:
        resp = http.post(
            old.base_url + path,
            json={"ref": "main", "return_run_details": True},
            headers=AUTH,
        )
        assert resp.status_code == 204


def test_workflow_failure_and_rollback_target(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    target = git(world.bare, "rev-parse", "v1.0.0^{commit}")
    world.gh.set_workflow_conclusion("deploy-production.yml", "failure")
    failed = world.post(
        REPO + "/actions/workflows/deploy-production.yml/dispatches",
        {"ref": "hotfix/ISSUE-1", "return_run_details": True},
    ).json()["workflow_run_id"]
    rollback = world.post(
        REPO + "/actions/workflows/rollback.yml/dispatches",
        {"ref": "production", "inputs": {"target_sha": target}, "return_run_details": True},
    ).json()["workflow_run_id"]

    def both_done() -> bool:
        runs = world.get(REPO + "/actions/runs").json()["workflow_runs"]
        return all(r["status"] == "completed" for r in runs)

    wait_for(both_done)
    assert world.get(f"{REPO}/actions/runs/{failed}").json()["conclusion"] == "failure"
    assert world.deploys == [("rollback.yml", target, {"target_sha": target})]
    assert world.gh.effects()["deploys"][0]["run_id"] == rollback


def test_deploy_drives_the_production_app(world: World, tmp_path: Path) -> None:
    fix = push_hotfix(world.work, "hotfix/ISSUE-1")
    good = git(world.bare, "rev-parse", "production")
    prod = ProductionApp(tmp_path / "prod", version=good)
    prod.set_mode("failing", for_version=fix)
    gh = RehearsalGitHub(world.root / "state2", world.bare, on_deploy=prod.on_deploy, **FAST)
    with prod, gh, requests.Session() as http:
        dispatch = gh.base_url + REPO + "/actions/workflows/{}/dispatches"
        http.post(dispatch.format("deploy-production.yml"), json={"ref": fix}, headers=AUTH)
        wait_for(lambda: gh.effects()["deploys"])
        health = http.get(prod.base_url + "/health")
        assert health.status_code == 503
        assert health.json()["version"] == fix
        body = {"ref": "production", "inputs": {"target_sha": good}}
        http.post(dispatch.format("rollback.yml"), json=body, headers=AUTH)
        wait_for(lambda: len(gh.effects()["deploys"]) == 2)
        health = http.get(prod.base_url + "/health")
        assert health.status_code == 200
        assert health.json()["version"] == good


# -- ETags, counters, refs -----------------------------------------------------------------------


def test_etag_not_modified_does_not_consume_rate_limit(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    world.open_pr()
    first = world.get(REPO + "/pulls/1")
    etag = first.headers["ETag"]
    remaining = int(first.headers["x-ratelimit-remaining"])
    cached = world.get(REPO + "/pulls/1", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert int(cached.headers["x-ratelimit-remaining"]) == remaining
    assert world.get(REPO + "/pulls/1", headers={"If-None-Match": '"other"'}).status_code == 200
    counts = world.http.get(world.url + "/_sandbox/requests").json()
    assert counts["GET /repos/{owner}/{repo}/pulls/{number}"] == {
        "count": 3,
        "not_modified": 1,
        "faulted": 0,
    }
    assert counts["POST /repos/{owner}/{repo}/pulls"]["count"] == 1


def test_git_ref_and_branch_endpoints(world: World) -> None:
    sha = push_hotfix(world.work, "hotfix/ISSUE-1")
    head = world.get(REPO + "/git/ref/heads/hotfix/ISSUE-1").json()
    assert head["ref"] == "refs/heads/hotfix/ISSUE-1"
    assert head["object"] == {"sha": sha, "type": "commit", "url": head["object"]["url"]}
    tag = world.get(REPO + "/git/ref/tags/v1.0.0").json()
    assert tag["object"]["type"] == "tag"
    assert world.get(REPO + "/git/ref/heads/main~1").status_code == 404
    assert world.get(REPO + "/git/ref/tags/v9").status_code == 404
    branch = world.get(REPO + "/branches/hotfix%2FISSUE-1").json()
    assert branch["name"] == "hotfix/ISSUE-1"
    assert branch["commit"]["sha"] == sha
    assert world.get(REPO + "/branches/nope").status_code == 404


def test_ref_log_records_push_delete_and_force_push(world: World) -> None:
    first = push_hotfix(world.work, "hotfix/ISSUE-1")
    git(world.work, "commit", "-q", "--amend", "-m", "rewritten")
    rewritten = git(world.work, "rev-parse", "HEAD")
    git(world.work, "push", "-q", "--force", "origin", "HEAD:refs/heads/hotfix/ISSUE-1")
    git(world.work, "push", "-q", "origin", "HEAD:refs/heads/hotfix/other")
    git(world.work, "push", "-q", "origin", ":hotfix/other")
    git(world.bare, "pack-refs", "--all")  # must not show up as updates

    log = [e for e in read_ref_log(world.gh.ref_log_path) if "hotfix/" in e["ref"]]
    zero = "0" * 40
    assert [(e["ref"], e["old"], e["new"], e["forced"]) for e in log] == [
        ("refs/heads/hotfix/ISSUE-1", zero, first, False),
        ("refs/heads/hotfix/ISSUE-1", first, rewritten, True),
        ("refs/heads/hotfix/other", zero, rewritten, False),
        ("refs/heads/hotfix/other", rewritten, zero, False),
    ]
    assert world.gh.effects()["force_updates"] == [log[1]]

    world.open_pr()
    deleted = world.http.delete(world.url + REPO + "/git/refs/heads/hotfix/ISSUE-1", headers=AUTH)
    assert deleted.status_code == 204
    again = world.http.delete(world.url + REPO + "/git/refs/heads/hotfix/ISSUE-1", headers=AUTH)
    assert again.status_code == 422
    assert again.json()["message"] == "Reference does not exist"
    effects = world.gh.effects()
    assert effects["refs_deleted_via_api"][0]["ref"] == "refs/heads/hotfix/ISSUE-1"
    assert effects["refs"][-1]["new"] == zero
    # Deleting a PR's head branch closes the PR, as on GitHub.
    assert world.get(REPO + "/pulls/1").json()["state"] == "closed"


# -- faults --------------------------------------------------------------------------------------


def test_server_error_fault_performs_no_effect(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    world.gh.set_fault("POST /repos/{owner}/{repo}/pulls", error_rate=1.0, status=502)
    resp = world.post(
        REPO + "/pulls", {"title": "t", "head": "hotfix/ISSUE-1", "base": "production"}
    )
    assert resp.status_code == 502
    assert "message" in resp.json()
    assert world.get(REPO + "/pulls", params={"state": "all"}).json() == []
    assert world.gh.effects()["pull_requests"] == []
    world.gh.clear_faults()
    assert world.open_pr()["number"] == 1


def test_dropped_connection_raises_connection_error(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    world.gh.set_fault("*/dispatches", drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        world.post(REPO + "/actions/workflows/deploy-production.yml/dispatches", {"ref": "main"})
    assert world.gh.effects()["dispatches"] == []
    counts = world.gh.request_counts()
    assert (
        counts["POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches"]["faulted"] == 1
    )


def test_rate_limit_faults_and_latency(world: World) -> None:
    world.gh.set_fault("GET /user", primary_rate_limit_rate=1.0)
    primary = world.get("/user")
    assert primary.status_code == 403
    assert primary.json()["message"] == "API rate limit exceeded for user ID 1."
    assert primary.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(primary.headers["x-ratelimit-reset"]) - time.time() <= 2

    world.gh.set_fault("GET /repos/{owner}/{repo}", secondary_rate_limit_rate=1.0)
    secondary = world.get(REPO)
    assert secondary.status_code == 403
    assert secondary.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert secondary.headers["retry-after"] == "1"
    world.gh.set_fault(
        "GET /repos/{owner}/{repo}", secondary_rate_limit_rate=1.0, secondary_status=429
    )
    assert world.get(REPO).status_code == 429

    world.gh.clear_faults()
    world.gh.set_fault("GET /rate_limit", latency=0.2)
    start = time.monotonic()
    assert world.get("/rate_limit").status_code == 200
    assert time.monotonic() - start >= 0.2


def test_seeded_faults_are_reproducible_and_settable_over_http(world: World) -> None:
    def pattern() -> list[int]:
        return [world.get("/user").status_code for _ in range(12)]

    body = {"route": "GET /user", "error_rate": 0.5, "status": 503, "seed": 7}
    assert world.http.post(world.url + "/_sandbox/faults", json=body).status_code == 204
    one = pattern()
    world.http.post(world.url + "/_sandbox/faults", json=body)  # same rule again: resets draws
    assert pattern() == one
    assert set(one) == {200, 503}
    world.http.post(world.url + "/_sandbox/faults", json={"clear": True})
    assert pattern() == [200] * 12


# -- persistence ---------------------------------------------------------------------------------


def test_state_survives_restart(world: World) -> None:
    push_hotfix(world.work, "hotfix/ISSUE-1")
    push_hotfix(world.work, "hotfix/ISSUE-2", content="two\n")
    world.open_pr()
    world.post(REPO + "/issues/1/labels", {"labels": ["hotfix"]})
    run_id = world.post(
        REPO + "/actions/workflows/deploy-production.yml/dispatches",
        {"ref": "hotfix/ISSUE-1", "return_run_details": True},
    ).json()["workflow_run_id"]
    world.gh.set_fault("GET /user", error_rate=1.0)
    before = world.gh.effects()
    world.gh.stop()

    deploys: list[str] = []
    again = RehearsalGitHub(
        world.gh.state_dir, world.bare, on_deploy=lambda wf, sha, i: deploys.append(sha), **FAST
    )
    with again, requests.Session() as http:
        url = again.base_url
        pr = http.get(url + REPO + "/pulls/1", headers=AUTH).json()
        assert [lb["name"] for lb in pr["labels"]] == ["hotfix"]
        assert http.get(url + "/user", headers=AUTH).status_code == 502
        second = http.post(
            url + REPO + "/pulls",
            json={"title": "t2", "head": "hotfix/ISSUE-2", "base": "production"},
            headers=AUTH,
        )
        assert second.json()["number"] == 2
        done = wait_for(
            lambda: (
                http.get(f"{url}{REPO}/actions/runs/{run_id}", headers=AUTH).json()["status"]
                == "completed"
            )
        )
        assert done
        after = again.effects()
    assert after["dispatches"] == before["dispatches"]
    assert len(after["pull_requests"]) == 2
    # The first instance may or may not have seen the run finish; exactly one deploy overall.
    assert len(after["deploys"]) == 1
    assert len(deploys) + len(world.deploys) == 1
    state = json.loads((world.gh.state_dir / "github-state.json").read_text())
    assert TOKEN not in json.dumps(state)
