"""GitHub API faults: storms the hotfix rides out without a duplicate effect, and permanent
errors that fail it clearly and resume once the configuration is fixed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, assert_no_traceback, parallel
from tests.torture.invariants import check_trial, duplicates, failures
from tests.torture.sandbox import ISSUE, Sandbox, drive

Factory = Callable[..., Sandbox]

# Each storm hits every API route at a high rate (seeded, so a failure replays).
STORMS: dict[str, dict[str, Any]] = {
    "502-storm": {"error_rate": 0.4, "status": 502},
    "dropped-connections": {"drop_rate": 0.3},
    "primary-rate-limit": {"primary_rate_limit_rate": 0.25},
    "secondary-rate-limit-403": {"secondary_rate_limit_rate": 0.25},
    "secondary-rate-limit-429": {"secondary_rate_limit_rate": 0.25, "secondary_status": 429},
}
# Routes answered only after the client's timeout (1 s): the write still takes effect, so
# the client must find it instead of repeating it. Each rule is lifted after its first hit.
SLOW_ROUTES = (
    "POST /repos/{owner}/{repo}/pulls",
    "POST /repos/{owner}/{repo}/issues/{number}/labels",
    "POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches",
    "PUT /repos/{owner}/{repo}/pulls/{number}/merge",
    "DELETE /repos/{owner}/{repo}/git/refs/{ref}",
    "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
)


def faulted(sb: Sandbox) -> int:
    return sum(c["faulted"] for c in sb.running.github.request_counts().values())


def _storm(sandboxes: Factory, name: str) -> None:
    sb = sandboxes(name, tuning={"retry_limit": 8})
    sb.running.github.set_fault("*", seed=7, **STORMS[name])
    run = drive(sb)
    injected = faulted(sb)
    FIGURES.add("fault", scenario=f"github:{name}", injected=injected, duplicated=duplicates(sb))
    assert injected >= 5, f"{name}: only {injected} faults were injected"
    sig = check_trial(sb, None)
    assert sig["state"] == "done", sig
    assert run.last.code == 0


def test_api_storms_complete_without_duplicates(sandboxes: Factory) -> None:
    parallel(lambda name: _storm(sandboxes, name), list(STORMS), workers=4)


def test_timeouts_on_writes_that_took_effect(sandboxes: Factory) -> None:
    """The server applies the write after the client gave up: PR, labels, dispatch, merge
    and branch deletion each time out once and are found, not repeated."""
    sb = sandboxes("timeouts", tuning={"github": {"request_timeout": 1}, "retry_limit": 8})
    github = sb.running.github
    pending = set(SLOW_ROUTES)

    def arm() -> None:
        github.clear_faults()
        for route in sorted(pending):
            github.set_fault(route, latency=1.4)

    arm()
    stop = threading.Event()
    timed_out: dict[str, int] = {}

    def lift() -> None:  # lift each rule once a request of its route is being slowed
        while not stop.wait(0.02):
            counts = github.request_counts()
            done = {r for r in pending if counts.get(r, {}).get("count", 0) >= 1}
            if done:
                for route in done:
                    timed_out[route] = counts[route]["count"]
                pending.difference_update(done)
                arm()

    watcher = threading.Thread(target=lift, daemon=True)
    watcher.start()
    try:
        drive(sb)
    finally:
        stop.set()
        watcher.join()
    FIGURES.add(
        "fault", scenario="github:timeouts", injected=len(timed_out), duplicated=duplicates(sb)
    )
    sig = check_trial(sb, None)
    assert sig["state"] == "done"
    assert len(timed_out) >= 5, f"too few routes were slowed: {timed_out} (pending {pending})"


PERMANENT: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # a bad token: 401 Bad credentials
    "401-bad-token": ({"github": {"token": "ghp_" + "x" * 36, "token_env": ""}}, ("401",)),
    # a repository that does not exist: 404
    "404-wrong-repo": ({"github": {"repository": "acme/no-such-repo"}}, ("404",)),
    # a workflow that does not exist: 404
    "404-wrong-workflow": ({"deploy": {"workflow": "no-such-workflow.yml"}}, ("404",)),
}


def _permanent(sandboxes: Factory, name: str) -> None:
    sb = sandboxes(name)
    good = sb.read_config()
    change, words = PERMANENT[name]
    sb.configure(change)
    failed = sb.cli(*sb.start_args())
    assert_no_traceback(failed)
    assert failed.code == ExitCode.FAILED, str(failed)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "failed", hotfix.state
    message = failed.err + failed.out
    for word in words:
        assert word in message, f"{name}: {word!r} not in the message:\n{failed}"
    assert "What to do" in message or "hint" in message.lower(), str(failed)
    assert "hotfix resume" in message, str(failed)
    effects_before = sb.effects()
    sb.write_config(good)
    # The hotfix pinned the broken configuration: the fix is taken explicitly.
    resumed = sb.cli("resume", ISSUE, "--reload-config")
    # Each refused request the hotfix failed on is a failed row naming the status.
    injected = failures(sb, containing=words[0])
    FIGURES.add("fault", scenario=f"github:{name}", injected=injected, duplicated=duplicates(sb))
    assert injected >= 1, f"{name}: no failed row mentions {words[0]}"
    assert resumed.code == ExitCode.OK, str(resumed)
    sig = check_trial(sb, None)
    assert sig["state"] == "done"
    assert len(effects_before.get("merges", [])) <= 1


@pytest.mark.parametrize(
    "name",
    ["401-bad-token", "404-wrong-repo", "404-wrong-workflow"],
)
def test_permanent_error_fails_clearly_then_resumes_once_fixed(
    sandboxes: Factory, name: str
) -> None:
    _permanent(sandboxes, name)


def test_422_head_branch_deleted_before_the_pr(sandbox: Sandbox) -> None:
    """GitHub refuses the PR (422 Validation Failed: head invalid) because the pushed branch
    was deleted under us: ``failed`` with the 422; restore the branch, resume, done."""
    sb = sandbox
    killed = sb.cli(*sb.start_args(), env={"HOTFIX_FSM_FAILPOINTS": "push:after_done"})
    assert killed.killed, str(killed)
    hotfix = sb.hotfix()
    assert hotfix is not None
    branch, sha = hotfix.context["branch"], hotfix.context["pushed_sha"]
    sb.git("push", "-q", "origin", "--delete", branch)
    failed = sb.cli(*sb.resume_args())
    assert_no_traceback(failed)
    assert failed.code == ExitCode.FAILED, str(failed)
    assert "422" in failed.out + failed.err, str(failed)
    assert "hotfix resume" in failed.out + failed.err, str(failed)
    sb.git("push", "-q", "origin", f"{sha}:refs/heads/{branch}")
    resumed = sb.cli("resume", ISSUE)
    injected = failures(sb, containing="422")
    FIGURES.add(
        "fault", scenario="github:422-head-deleted", injected=injected, duplicated=duplicates(sb)
    )
    assert injected >= 1, "no failed row mentions the 422"
    assert resumed.code == ExitCode.OK, str(resumed)
    assert check_trial(sb, None)["state"] == "done"


def test_422_on_the_back_merge_is_recorded_not_fatal(sandbox: Sandbox) -> None:
    """The back-merge PR's base does not exist (422): the hotfix is done and says so."""
    sb = sandbox
    sb.configure({"backport": {"base": "no-such-branch"}})
    result = sb.cli(*sb.start_args())
    assert result.code == ExitCode.OK, str(result)
    hotfix = sb.hotfix()
    assert hotfix is not None
    refused = int(hotfix.context.get("backport_status") == "error")
    FIGURES.add(
        "fault", scenario="github:422-backport-base", injected=refused, duplicated=duplicates(sb)
    )
    assert hotfix.context["backport_status"] == "error"
    assert (
        "422" in hotfix.context["backport_message"]
        or "Validation" in hotfix.context["backport_message"]
    )
    check_trial(sb, None)
