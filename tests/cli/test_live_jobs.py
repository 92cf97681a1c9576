"""The live line during the deploy run names the run's jobs still running (as it names the
pending CI checks), through the real command on a pseudo-terminal and in a pipe; the names
come from GitHub and are shown escaped; one jobs request per poll at most."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.phases.run_jobs import RunJobs, running_text
from hotfix_fsm.sandbox.serve import RunningSandbox, serve_sandbox
from hotfix_fsm.sandbox.world import SandboxInfo
from tests.cli.conftest import Cli
from tests.cli.test_output import _bad, run_pty

WORKFLOW = "deploy-production.yml"
HOSTILE = "build\x1b]2;PWNED\x07"
SHOWN = "build\\x1b]2;PWNED\\x07"
JOBS_ROUTE = "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs"
RUN_ROUTE = "GET /repos/{owner}/{repo}/actions/runs/{run_id}"


@pytest.fixture
def slow_runs(world: SandboxInfo) -> Iterator[RunningSandbox]:
    """The sandbox with deploy runs of 6 s (two jobs of 3 s each), starting at once."""
    with serve_sandbox(world.root, timings={"run_seconds": 6.0, "run_queued_seconds": 0.0}) as s:
        s.github.set_workflow_jobs(WORKFLOW, [HOSTILE, "ship"])
        yield s


def _counts(served: RunningSandbox) -> dict[str, int]:
    return {key: int(v["count"]) for key, v in served.github.request_counts().items()}


def test_a_pipe_names_the_running_job_escaped(cli: Cli, slow_runs: RunningSandbox) -> None:
    work = Path(slow_runs.info.work)
    result = cli(
        "start", "INC-7", "Fix expiry", "--cherry-pick", slow_runs.info.fix_sha, "--yes", cwd=work
    )
    assert result.code == 0, result
    # The first poll of the run (off a terminal, one line per 10 s): the first job runs and
    # the second waits its turn — or, on a machine slow enough, the second job runs.
    assert re.search(
        rf"waiting for deploy run \d+: in_progress, jobs still running: "
        rf"({re.escape(SHOWN)}, ship \(queued\)|ship) \(http",
        result.err,
    ), result.err
    assert not _bad(result.err)
    counts = _counts(slow_runs)
    assert 1 <= counts.get(JOBS_ROUTE, 0) <= counts[RUN_ROUTE], counts


def test_a_terminal_shows_each_job_while_it_runs(
    cli_env: dict[str, str], slow_runs: RunningSandbox, tmp_path: Path
) -> None:
    work = Path(slow_runs.info.work)
    # An 80-column terminal: the wait has a line of its own, so the names are not cut off.
    env = {**cli_env, "COLUMNS": "80"}
    args = ["start", "INC-7", "Fix expiry", "--cherry-pick", slow_runs.info.fix_sha, "--yes"]
    shown = run_pty(args, env, work, timeout=180)
    assert "in_progress, jobs still running: build\\x1b]2;PWNED" in shown, shown[-3000:]
    assert "jobs still running: ship (http" in shown, shown[-3000:]  # the second job's turn
    assert "PWNED\x07" not in shown
    assert "\x1b]2" not in shown


def test_a_refused_jobs_list_is_left_out_and_not_asked_again(
    cli: Cli, slow_runs: RunningSandbox
) -> None:
    slow_runs.github.set_fault("*/jobs", error_rate=1.0, status=403)
    work = Path(slow_runs.info.work)
    result = cli(
        "start", "INC-7", "Fix expiry", "--cherry-pick", slow_runs.info.fix_sha, "--yes", cwd=work
    )
    assert result.code == 0, result  # the jobs describe the wait; they never decide it
    assert "jobs still running" not in result.err
    assert _counts(slow_runs).get(JOBS_ROUTE) == 1, _counts(slow_runs)


def test_a_failing_jobs_list_is_asked_once_per_poll_without_retries(
    cli: Cli, slow_runs: RunningSandbox
) -> None:
    slow_runs.github.set_fault("*/jobs", error_rate=1.0, status=502)
    work = Path(slow_runs.info.work)
    result = cli(
        "start", "INC-7", "Fix expiry", "--cherry-pick", slow_runs.info.fix_sha, "--yes", cwd=work
    )
    assert result.code == 0, result
    assert "jobs still running" not in result.err
    counts = _counts(slow_runs)
    # Every poll asked again (GitHub may recover), but never more than once: no backoff
    # retries holding up the wait the jobs only describe.
    assert 2 <= counts[JOBS_ROUTE] <= counts[RUN_ROUTE], counts


def test_running_text_cuts_a_long_list_and_skips_completed_jobs() -> None:
    jobs = [{"name": f"j{i}", "status": "in_progress"} for i in range(6)]
    jobs.insert(0, {"name": "done", "status": "completed"})
    assert running_text(jobs) == "jobs still running: j0, j1, j2, j3 and 2 more"
    assert running_text([{"name": "x", "status": "completed"}]) == ""


def test_no_jobs_request_for_a_completed_or_waiting_run(served: RunningSandbox) -> None:
    info = served.info
    owner, repo = info.repository.split("/")
    gh = GitHubClient(owner=owner, repo=repo, token=info.token, api_url=info.github_url)
    try:
        watch = RunJobs(gh, 999)
        assert watch.text({"status": "completed"}) == ""
        assert watch.text({"status": "waiting"}) == ""
        assert gh.request_count == 0
        assert watch.text({"status": "in_progress"}) == ""  # run 999 does not exist: 404
        assert watch.refused
    finally:
        gh.close()
