"""``hotfix demo``: each scenario ends as it should, fast, against its own sandbox."""

from __future__ import annotations

import io
import time

from hotfix_fsm.cli.demo import run_demo
from tests.cli.conftest import Cli


def test_demo_command_failing_tests_scenario(cli: Cli) -> None:
    result = cli("demo", "--scenario", "failing-tests")
    assert result.code == 0, result.err
    assert "the hotfix ended failed — as expected" in result.err
    assert "- [ ] Critical tests passing — the tests gate failed" in result.out
    assert "- pull_requests: 0" in result.out


def test_demo_rejects_unknown_scenario(cli: Cli) -> None:
    result = cli("demo", "--scenario", "meteor")
    assert result.code == 2
    assert "unknown scenario 'meteor'" in result.err


def test_unhealthy_deploy_rolls_back_automatically() -> None:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    assert run_demo("unhealthy-deploy", out=out, err=err) == 0, err.getvalue()
    # Minutes would mean a production-sized poll or window leaked into the demo; anything
    # shorter is the machine's load, not a failure.
    assert time.monotonic() - started < 300
    report = out.getvalue()
    assert "- Outcome: **rolled_back**" in report
    assert "- What the rollback did:" in report
    assert "rollback_redeploy: done" in report
    assert "- [ ] Health checks passing — verify failed" in report
    assert "- force_updates: 0" in report


def test_crash_after_deploy_dispatch_resumes_without_second_deploy() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_demo("crash-and-resume", out=out, err=err) == 0, err.getvalue()
    progress = err.getvalue()
    assert "the process died with signal SIGKILL" in progress
    assert "adopted after a probe" in progress
    report = out.getvalue()
    assert "- Outcome: **done**" in report
    assert "| deploy | done | 1 |" in report or "adopted after a crash" in report
    assert "- deploys: 1" in report


def test_protected_branch_demo_shows_the_review_gate_then_ends_done() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert run_demo("protected-branch", out=out, err=err) == 0, err.getvalue()
    progress = err.getvalue()
    assert "the review gate: awaiting an approving review of PR #1 (1 required, 0 given)" in (
        progress
    )
    assert "alice approves PR #1 in the sandbox" in progress
    assert "the hotfix ended done — as expected" in progress
    report = out.getvalue()
    assert "- Outcome: **done**" in report
    assert "- reviews: 1" in report
    assert "- merges: 1" in report
