"""Four eyes through the ``hotfix`` command: the starter cannot approve their own deploy."""

from __future__ import annotations

import json
from pathlib import Path

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from tests.cli.conftest import Cli, assert_clean_error


def _as(user: str) -> dict[str, str]:
    return {"LOGNAME": user, "USER": user}


def _four_eyes(work: Path, approvers: list[str]) -> None:
    config = work / "hotfix.toml"
    text = config.read_text(encoding="utf-8")
    listed = ", ".join(json.dumps(a) for a in approvers)
    text = text.replace(
        "[deploy]\n", f"[deploy]\ndistinct_approver = true\napprovers = [{listed}]\n", 1
    )
    config.write_text(text, encoding="utf-8")


def _approvals(cli: Cli, ref: str) -> list[dict[str, object]]:
    log = json.loads(cli("log", ref, "--json").out)
    return [e["payload"] for e in log["entries"] if e["kind"] == "approval"]


def test_the_starter_and_unlisted_users_are_refused_a_listed_second_person_approves(
    cli: Cli, served: RunningSandbox
) -> None:
    info = served.info
    work = Path(info.work)
    _four_eyes(work, ["alice", "carol"])
    started = cli(
        "start",
        "INC-4",
        "Fix token expiry check",
        "--cherry-pick",
        info.fix_sha,
        "--yes",  # four eyes: --yes does not pass the deploy gate
        cwd=work,
        env=_as("alice"),
    )
    assert started.code == ExitCode.PAUSED, started
    status = json.loads(cli("status", "INC-4", "--json").out)
    assert status["state"] == "awaiting_deploy_approval"
    reason = status["paused"]["reason"]
    assert "carol" in reason, reason
    assert "--yes does not pass it" in reason, reason
    hotfix_id = str(status["id"])

    own = cli("approve", hotfix_id, "deploy", cwd=work, env=_as("alice"))
    assert own.code == ExitCode.USAGE, own
    assert_clean_error(own)
    assert "alice started this hotfix and cannot approve its own deploy" in own.err
    assert "carol" in own.err  # who may approve instead
    unlisted = cli("approve", hotfix_id, "deploy", cwd=work, env=_as("bob"))
    assert unlisted.code == ExitCode.USAGE, unlisted
    assert "bob is not in deploy.approvers" in unlisted.err
    assert "carol" in unlisted.err
    assert _approvals(cli, hotfix_id) == []  # refusals record nothing

    approved = cli("approve", hotfix_id, "deploy", cwd=work, env=_as("carol"))
    assert approved.code == 0, approved
    assert "approved by carol" in approved.out
    assert [a["by"] for a in _approvals(cli, hotfix_id)] == ["carol"]
    resumed = cli("resume", hotfix_id, cwd=work, env=_as("alice"))
    assert resumed.code == ExitCode.OK, resumed

    report = cli("report", hotfix_id).out
    assert "- [ ] Fix implemented and code reviewed" in report
    assert "approved by carol (not a review" in report


def test_without_four_eyes_the_starter_may_approve(cli: Cli, served: RunningSandbox) -> None:
    info = served.info
    work = Path(info.work)
    started = cli(
        "start", "INC-5", "Fix it", "--cherry-pick", info.fix_sha, cwd=work, env=_as("dave")
    )
    assert started.code == ExitCode.PAUSED, started
    approved = cli("approve", "INC-5", "deploy", cwd=work, env=_as("dave"))
    assert approved.code == 0, approved
    assert "approved by dave" in approved.out
