"""The jobs of the rehearsal GitHub's workflow runs: GitHub's shape, each job queued, in
progress and completed in turn over the run's life, conditional answers, a failing run
failing in its last job."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hotfix_fsm.sandbox.github_server import RehearsalGitHub
from tests.sandbox.test_github_server import AUTH, REPO, make_origin

# GitHub's "List jobs for a workflow run": the fields its job schema requires.
JOB_FIELDS = {
    "id", "run_id", "run_url", "node_id", "head_sha", "url", "html_url", "status",
    "conclusion", "created_at", "started_at", "completed_at", "name", "steps",
    "check_run_url", "labels", "runner_id", "runner_name", "runner_group_id",
    "runner_group_name", "workflow_name", "head_branch",
}  # fmt: skip


@pytest.fixture
def github(tmp_path: Path) -> Iterator[RehearsalGitHub]:
    origin, _ = make_origin(tmp_path)
    app = RehearsalGitHub(
        tmp_path / "state", origin, run_queued_seconds=1.0, run_seconds=4.0, ci_seconds=0.1
    )
    app.start()
    try:
        yield app
    finally:
        app.stop()


def _dispatch(app: RehearsalGitHub, workflow: str = "deploy-production.yml") -> int:
    answer = requests.post(
        f"{app.base_url}{REPO}/actions/workflows/{workflow}/dispatches",
        json={"ref": "main", "return_run_details": True},
        headers=AUTH,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["workflow_run_id"])


def _follow(app: RehearsalGitHub, run_id: int) -> list[tuple[tuple[str, Any], ...]]:
    """Every distinct jobs answer until the run completed (304s for unchanged ones)."""
    seen: list[tuple[tuple[str, Any], ...]] = []
    etag = None
    not_modified = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        headers = {**AUTH, **({"If-None-Match": etag} if etag else {})}
        answer = requests.get(
            f"{app.base_url}{REPO}/actions/runs/{run_id}/jobs", headers=headers, timeout=30
        )
        if answer.status_code == 304:
            not_modified += 1
            time.sleep(0.05)
            continue
        assert answer.status_code == 200, answer.text
        etag = answer.headers["ETag"]
        doc = answer.json()
        assert doc["total_count"] == len(doc["jobs"])
        for job in doc["jobs"]:
            assert job.keys() >= JOB_FIELDS, JOB_FIELDS - job.keys()
            assert job["run_id"] == run_id
        state = tuple((j["name"], j["status"], j["conclusion"]) for j in doc["jobs"])
        if not seen or seen[-1] != state:
            seen.append(state)
        if all(j["status"] == "completed" for j in doc["jobs"]):
            assert not_modified > 0  # an unchanged list was answered 304
            return seen
        time.sleep(0.05)
    raise AssertionError(f"the run did not complete: {seen}")


def test_jobs_run_in_turn_over_the_runs_life(github: RehearsalGitHub) -> None:
    seen = _follow(github, _dispatch(github))
    assert seen[0] == (("build", "queued", None), ("deploy-production", "queued", None))
    assert (("build", "in_progress", None), ("deploy-production", "queued", None)) in seen
    assert (("build", "completed", "success"), ("deploy-production", "in_progress", None)) in seen
    assert seen[-1] == (
        ("build", "completed", "success"),
        ("deploy-production", "completed", "success"),
    )


def test_named_jobs_and_a_failing_run_fail_in_the_last_job(github: RehearsalGitHub) -> None:
    github.set_workflow_jobs("rollback.yml", ["check", "roll", "smoke"])
    github.set_workflow_conclusion("rollback.yml", "failure")
    seen = _follow(github, _dispatch(github, "rollback.yml"))
    assert [name for name, _, _ in seen[-1]] == ["check", "roll", "smoke"]
    assert [c for _, _, c in seen[-1]] == ["success", "success", "failure"]


def test_unknown_run_and_bad_filter(github: RehearsalGitHub) -> None:
    url = f"{github.base_url}{REPO}/actions/runs"
    assert requests.get(f"{url}/424242/jobs", headers=AUTH, timeout=30).status_code == 404
    run_id = _dispatch(github)
    bad = requests.get(f"{url}/{run_id}/jobs?filter=oldest", headers=AUTH, timeout=30)
    assert bad.status_code == 422
