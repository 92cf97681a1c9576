"""A drill against a protected production branch with the ``hotfix`` command: the merge
waits for a review, a reviewer approves with ``hotfix sandbox approve-pr``, resume merges."""

from __future__ import annotations

import json
from pathlib import Path

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from tests.cli.conftest import Cli, assert_clean_error

ISSUE = "INC-14"


def test_review_gate_then_sandbox_approval_then_done(cli: Cli, served: RunningSandbox) -> None:
    info = served.info
    work = Path(info.work)
    root = str(info.root)
    protected = cli("sandbox", "protect", root, "--reviews", "1", "--method", "squash")
    assert protected.code == 0, protected
    assert "production: protected" in protected.out

    started = cli(
        "start", ISSUE, "Fix token expiry check", "--cherry-pick", info.fix_sha, "--yes", cwd=work
    )
    assert started.code == ExitCode.PAUSED, started
    assert_clean_error(started)
    text = started.out + started.err
    assert "awaiting an approving review of PR #1 (1 required, 0 given)" in text, text
    assert served.github.effects()["merges"] == []

    unknown = cli("sandbox", "approve-pr", root, "9", "--reviewer", "alice")
    assert unknown.code == ExitCode.USAGE, unknown
    assert "the sandbox refused reviews" in unknown.err
    assert_clean_error(unknown)

    approved = cli("sandbox", "approve-pr", root, "1", "--reviewer", "alice")
    assert approved.code == 0, approved
    assert "alice reviewed PR #1: APPROVED" in approved.out

    resumed = cli("resume", ISSUE)
    assert resumed.code == ExitCode.OK, resumed
    assert ": done" in resumed.out
    assert [m["method"] for m in served.github.effects()["merges"]] == ["squash"]

    report = cli("report", ISSUE)
    assert report.code == 0, report
    assert "- [x] Fix implemented and code reviewed — fix " in report.out
    assert "approved by alice (GitHub reviews)" in report.out


def test_approve_deploy_says_who_can_when_the_token_user_is_no_reviewer(
    cli: Cli, served: RunningSandbox
) -> None:
    info = served.info
    work = Path(info.work)
    config = Path(info.config)
    text = config.read_text(encoding="utf-8")
    deploy = 'workflow = "deploy-production.yml"\napproval = "manual"\npoll_interval = 0.2\n'
    assert deploy + "timeout = 60\n" in text
    config.write_text(text.replace(deploy + "timeout = 60\n", deploy + "timeout = 1\n"))
    served.github.set_environment("production", reviewers=["alice", "bob"])

    started = cli(
        "start", ISSUE, "Fix token expiry check", "--cherry-pick", info.fix_sha, "--yes", cwd=work
    )
    assert started.code == ExitCode.PAUSED, started
    assert "waits for a reviewer of environment production (alice, bob)" in (
        started.out + started.err
    )

    refused = cli("approve", ISSUE, "deploy", "--comment", "looks right")
    assert refused.code == ExitCode.USAGE, refused
    assert_clean_error(refused)
    assert "may not approve deploy run" in refused.err
    assert "environment production (alice, bob)" in refused.err
    assert served.github.effects()["deployment_reviews"] == []


def test_check_validates_merge_auto_and_asks_whether_the_repository_allows_it(
    cli: Cli, served: RunningSandbox
) -> None:
    work = Path(served.info.work)
    config = Path(served.info.config)
    base = config.read_text(encoding="utf-8")

    config.write_text(base + '\n[merge]\nauto = "yes"\n', encoding="utf-8")
    wrong = cli("check", cwd=work)
    assert wrong.code != 0, wrong
    assert_clean_error(wrong)
    assert "merge.auto" in wrong.out + wrong.err

    config.write_text(base + "\n[merge]\nauto = true\n", encoding="utf-8")
    allowed = cli("check", "--json", cwd=work)
    assert allowed.code == 0, allowed
    findings = {f["check"]: f for f in json.loads(allowed.out)["findings"]}
    assert findings["auto-merge"]["status"] == "ok"

    served.github.set_repository(allow_auto_merge=False)
    refused = cli("check", "--json", cwd=work)
    assert refused.code != 0, refused
    finding = {f["check"]: f for f in json.loads(refused.out)["findings"]}["auto-merge"]
    assert finding["status"] == "fail"
    assert "does not allow auto-merge" in finding["detail"]
    assert "Allow auto-merge" in finding["hint"]


def test_sandbox_protect_with_a_ruleset(cli: Cli, served: RunningSandbox) -> None:
    import requests

    root = str(served.info.root)
    made = cli("sandbox", "protect", root, "--ruleset", "--reviews", "2", "--check", "ci/test")
    assert made.code == 0, made
    assert "production: protected (ruleset)" in made.out
    rules = requests.get(
        f"{served.urls['github']}/repos/{served.info.repository}/rules/branches/production",
        headers={"Authorization": f"token {served.info.token}"},
        timeout=10,
    ).json()
    assert {r["type"] for r in rules} == {"pull_request", "required_status_checks"}
    pull_request = next(r for r in rules if r["type"] == "pull_request")
    assert pull_request["parameters"]["required_approving_review_count"] == 2
    assert (
        "protection" not in served.github.world.data or not served.github.world.data["protection"]
    )
