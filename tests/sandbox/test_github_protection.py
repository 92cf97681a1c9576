"""The rehearsal GitHub as real repositories configure it: GitHub's headers, a protected
branch with required reviews and checks, reviews given by a drill, environments with
required reviewers."""

from __future__ import annotations

import re

from tests.sandbox.test_github_server import (
    AUTH,
    REPO,
    World,
    push_hotfix,
    wait_for,
    world,  # noqa: F401  (the fixture)
)

REQUEST_ID = re.compile(r"^[0-9A-F]{4}:[0-9A-F]{6}:[0-9A-F]{8}$")


def test_every_answer_has_a_request_id_and_github_headers(world: World) -> None:  # noqa: F811
    anonymous = world.http.get(world.url + "/user")
    missing = world.get(REPO + "/pulls/42")
    ok = world.get(REPO)
    ids = [r.headers["x-github-request-id"] for r in (anonymous, missing, ok)]
    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == 3
    assert ok.headers["ETag"].startswith('W/"')
    # A weak validator sent back (with or without its W/) is still a match.
    assert world.get(REPO, headers={"If-None-Match": ok.headers["ETag"]}).status_code == 304

    push_hotfix(world.work, "hotfix/ISSUE-1")
    push_hotfix(world.work, "hotfix/ISSUE-2", name="other.txt")
    created = world.post(
        REPO + "/pulls", {"title": "t", "head": "acme:hotfix/ISSUE-1", "base": "production"}
    )
    assert created.status_code == 201
    assert created.headers["Location"] == created.json()["url"]
    world.open_pr("hotfix/ISSUE-2")

    first = world.get(REPO + "/pulls", params={"per_page": "1"})
    assert [p["number"] for p in first.json()] == [2]
    links = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', first.headers["Link"])}
    assert set(links) == {"next", "last", "first"}
    second = world.http.get(links["next"], headers=AUTH)
    assert [p["number"] for p in second.json()] == [1]
    assert 'rel="prev"' in second.headers["Link"]
    assert "next" not in second.headers["Link"]
    assert "Link" not in world.get(REPO + "/pulls").headers


def test_protected_branch_refuses_merges_until_reviewed_and_checked(world: World) -> None:  # noqa: F811
    assert world.get(REPO + "/branches/production/protection").json()["message"] == (
        "Branch not protected"
    )
    world.gh.protect_branch(
        "production",
        required_approving_review_count=1,
        required_status_checks=["ci/test"],
        allowed_merge_methods=["squash"],
    )
    rules = world.get(REPO + "/branches/production/protection").json()
    assert rules["required_pull_request_reviews"]["required_approving_review_count"] == 1
    assert rules["required_status_checks"]["contexts"] == ["ci/test"]
    assert world.get(REPO + "/branches/production").json()["protected"] is True

    sha = push_hotfix(world.work, "hotfix/ISSUE-1")
    world.open_pr()
    merge = REPO + "/pulls/1/merge"

    def put(method: str) -> tuple[int, str]:
        resp = world.http.put(
            world.url + merge, json={"merge_method": method, "sha": sha}, headers=AUTH
        )
        return resp.status_code, str(resp.json().get("message"))

    assert put("merge") == (405, "Merge commits are not allowed on this repository.")
    assert put("squash") == (
        405,
        "At least 1 approving review is required by reviewers with write access.",
    )
    assert world.get(REPO + "/pulls/1/reviews").json() == []

    given = world.http.post(
        world.url + "/_sandbox/reviews", json={"pr": 1, "reviewer": "alice"}
    ).json()
    assert given["state"] == "APPROVED"
    assert given["user"]["login"] == "alice"
    reviews = world.get(REPO + "/pulls/1/reviews").json()
    assert [(r["user"]["login"], r["state"], r["commit_id"]) for r in reviews] == [
        ("alice", "APPROVED", sha)
    ]

    status = world.get(f"{REPO}/commits/{sha}/status").json()["state"]
    if status == "pending":  # CI still running: the required check blocks the merge
        assert put("squash") == (405, 'Required status check "ci/test" is expected.')
    wait_for(lambda: world.get(f"{REPO}/commits/{sha}/status").json()["state"] == "success")
    assert put("squash")[0] == 200
    assert [m["pr"] for m in world.gh.effects()["merges"]] == [1]
    assert [(r["pr"], r["user"]) for r in world.gh.effects()["reviews"]] == [(1, "alice")]


def test_changes_requested_withdraws_an_approval(world: World) -> None:  # noqa: F811
    world.gh.protect_branch("production", required_approving_review_count=1)
    push_hotfix(world.work, "hotfix/ISSUE-1")
    world.open_pr()
    world.gh.review_pull(1, "alice")
    world.gh.review_pull(1, "alice", "CHANGES_REQUESTED")
    world.get(REPO + "/pulls/1")  # the first read computes mergeability
    assert world.get(REPO + "/pulls/1").json()["mergeable_state"] == "blocked"
    resp = world.http.put(
        world.url + REPO + "/pulls/1/merge", json={"merge_method": "squash"}, headers=AUTH
    )
    assert resp.status_code == 405


def test_environment_with_reviewers_holds_the_run_until_approved(world: World) -> None:  # noqa: F811
    world.gh.set_environment("production", reviewers=["alice", "bob"])
    push_hotfix(world.work, "hotfix/ISSUE-1")
    resp = world.post(
        REPO + "/actions/workflows/deploy-production.yml/dispatches",
        {"ref": "hotfix/ISSUE-1", "inputs": {}, "return_run_details": True},
    )
    run_id = resp.json()["workflow_run_id"]
    run_url = f"{REPO}/actions/runs/{run_id}"
    assert world.get(run_url).json()["status"] == "waiting"
    pending = world.get(run_url + "/pending_deployments").json()
    assert [p["environment"]["name"] for p in pending] == ["production"]
    assert [r["reviewer"]["login"] for r in pending[0]["reviewers"]] == ["alice", "bob"]
    assert pending[0]["current_user_can_approve"] is False

    env_id = pending[0]["environment"]["id"]
    refused = world.post(
        run_url + "/pending_deployments", {"environment_ids": [env_id], "state": "approved"}
    )
    assert refused.status_code == 422
    assert world.get(run_url).json()["status"] == "waiting"

    world.gh.approve_deployment(run_id, "bob")
    assert world.get(run_url + "/pending_deployments").json() == []
    wait_for(lambda: world.get(run_url).json()["status"] == "completed")
    assert world.get(run_url).json()["conclusion"] == "success"
    assert world.gh.effects()["deployment_reviews"] == [
        {"run_id": run_id, "environment": "production", "user": "bob", "state": "approved"}
    ]
    wait_for(lambda: len(world.gh.effects()["deploys"]) == 1)
