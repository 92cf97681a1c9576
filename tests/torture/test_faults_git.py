"""Git faults: the remote unreachable mid-push, a non-fast-forward, a branch deleted under us.

Never a force push (the origin's ref log records every update); each fault either is ridden
out or fails the hotfix with a clear message, and the hotfix resumes once a person fixed it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, Result, assert_no_traceback, parallel, wait_for
from tests.torture.invariants import check_trial, duplicates, failures
from tests.torture.sandbox import ISSUE, Sandbox

Factory = Callable[..., Sandbox]


def _stop_after(sb: Sandbox, failpoint: str) -> None:
    killed = sb.cli(*sb.start_args(), env={"HOTFIX_FSM_FAILPOINTS": failpoint})
    assert killed.killed, str(killed)


def _clear_failure(result: Result, *words: str) -> None:
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILED, str(result)
    text = result.out + result.err
    for word in words:
        assert word in text, f"{word!r} not in:\n{result}"
    assert "What to do" in text, str(result)
    assert "hotfix resume" in text, str(result)


def _journal_has(sb: Sandbox, kind: str, phase: str) -> bool:
    hotfix = sb.hotfix()
    return hotfix is not None and any(
        e.kind == kind and e.phase == phase for e in sb.journal(hotfix.id)
    )


def remote_unreachable(sandboxes: Factory) -> None:
    """The origin disappears right before the push and comes back after the first failure:
    the push is retried (or the hotfix fails clearly and resumes); one branch, no force."""
    sb = sandboxes("unreachable")
    origin = Path(sb.info.origin)
    away = origin.with_name("origin-away.git")
    _stop_after(sb, "gate:tests:after_done")  # the next driver starts at the gates
    os.rename(origin, away)
    try:
        proc = sb.spawn(*sb.resume_args())
        wait_for(
            lambda: _journal_has(sb, "failed", "push") or not proc.running(),
            "the push to fail",
        )
    finally:
        os.rename(away, origin)
    result = proc.finish()
    if result.code != ExitCode.OK:
        _clear_failure(result, "push")
        result = sb.cli("resume", ISSUE)
    assert result.code == ExitCode.OK, str(result)
    hotfix = sb.hotfix()
    assert hotfix is not None
    failures = [
        e.payload for e in sb.journal(hotfix.id) if e.kind == "failed" and e.phase == "push"
    ]
    FIGURES.add(
        "fault",
        scenario="git:remote-unreachable",
        injected=len(failures),
        duplicated=duplicates(sb),
    )
    assert failures, "the push never saw the remote missing"
    assert all("Traceback" not in str(f) for f in failures)
    assert check_trial(sb, None)["state"] == "done"


def non_fast_forward(sandboxes: Factory) -> None:
    """Someone pushes another commit to the hotfix branch before our push: the push is
    refused (never forced), the hotfix fails saying so; once the intruding branch is removed
    by a person, resume pushes and finishes."""
    sb = sandboxes("non-ff")
    _stop_after(sb, "commit_fix:after_done")
    hotfix = sb.hotfix()
    assert hotfix is not None
    branch = hotfix.context["branch"]
    sb.git("push", "-q", "origin", f"{sb.info.broken_fix_sha}:refs/heads/{branch}")
    failed = sb.cli(*sb.resume_args())
    _clear_failure(failed, branch)
    effects = sb.effects()
    assert effects["force_updates"] == []
    assert [r["new"] for r in effects["refs"] if r["ref"] == f"refs/heads/{branch}"] == [
        sb.info.broken_fix_sha
    ]
    sb.git("push", "-q", "origin", "--delete", branch)
    resumed = sb.cli("resume", ISSUE)
    refused = failures(sb, phase="push")
    FIGURES.add(
        "fault", scenario="git:non-fast-forward", injected=refused, duplicated=duplicates(sb)
    )
    assert refused >= 1, "no push was refused"
    assert resumed.code == ExitCode.OK, str(resumed)
    assert check_trial(sb, None)["state"] == "done"


def branch_deleted(sandboxes: Factory) -> None:
    """The hotfix branch is deleted after the PR was opened: the deploy refuses to dispatch
    a branch that is not at the approved fix; restoring the branch lets it finish."""
    sb = sandboxes("deleted")
    _stop_after(sb, "wait_ci:after_done")
    hotfix = sb.hotfix()
    assert hotfix is not None
    branch, sha = hotfix.context["branch"], hotfix.context["pushed_sha"]
    sb.git("push", "-q", "origin", "--delete", branch)
    failed = sb.cli(*sb.resume_args())
    _clear_failure(failed, branch)
    assert sb.effects()["dispatches"] == [], "a deploy was dispatched for a deleted branch"
    sb.git("push", "-q", "origin", f"{sha}:refs/heads/{branch}")
    resumed = sb.cli("resume", ISSUE)
    refused = failures(sb, containing=branch)
    FIGURES.add("fault", scenario="git:branch-deleted", injected=refused, duplicated=duplicates(sb))
    assert refused >= 1, f"no failed row names the deleted {branch}"
    assert resumed.code == ExitCode.OK, str(resumed)
    assert check_trial(sb, None)["state"] == "done"


def test_git_faults(sandboxes: Factory) -> None:
    parallel(lambda f: f(sandboxes), [remote_unreachable, non_fast_forward, branch_deleted], 3)
