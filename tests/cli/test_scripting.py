"""The command as scripts use it: a run's summary with links the rehearsal GitHub has,
``--json`` on every reading command (each with its schema), ``--limit``, ``approve
--comment``, ``-C DIR``, conventional help, and the library's status API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import ExitCode
from hotfix_fsm.reporting.report import HotfixStatus
from hotfix_fsm.sandbox.serve import RunningSandbox
from tests.cli.conftest import Cli

ISSUE = "INC-7"
# What every --json document must hold, by schema (keys are only ever added).
REQUIRED: dict[str, set[str]] = {
    "hotfix-fsm/status@1": {
        "id",
        "issue",
        "state",
        "phase",
        "paused",
        "next_action",
        "next_command",
        "links",
        "lease",
        "facts",
        "phases",
        "created_at",
        "updated_at",
    },
    "hotfix-fsm/list@1": {"hotfixes", "include_finished"},
    "hotfix-fsm/log@1": {"hotfix", "state", "entries"},
    "hotfix-fsm/report@1": {"hotfix", "state", "checklist", "approvals", "timeline"},
    "hotfix-fsm/plan@1": {"issue", "steps", "workflows", "rollback_target"},
    "hotfix-fsm/check@1": {"ok", "findings"},
}


def _doc(cli: Cli, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    result = cli(*args, "--json", cwd=cwd)
    assert result.code in (0, 1), result
    doc = json.loads(result.out)
    assert isinstance(doc, dict)
    missing = REQUIRED[doc["schema"]] - doc.keys()
    assert not missing, (args, missing)
    return doc


def _api(served: RunningSandbox, path: str) -> dict[str, Any]:
    info = served.info
    answer = requests.get(
        f"{info.github_url}/repos/{info.repository}/{path}",
        headers={"Authorization": f"Bearer {info.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, (path, answer.text)
    doc = answer.json()
    assert isinstance(doc, dict)
    return doc


def test_a_run_ends_with_its_summary_and_every_document(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str]
) -> None:
    info = served.info
    work = Path(info.work)
    plan = _doc(
        cli,
        "start",
        ISSUE,
        "Fix token expiry",
        "-C",
        str(work),
        "--cherry-pick",
        info.fix_sha,
        "--dry-run",
    )
    assert plan["schema"] == "hotfix-fsm/plan@1"
    assert _doc(cli, "check", "-C", str(work))["schema"] == "hotfix-fsm/check@1"

    paused = cli("start", ISSUE, "Fix token expiry", "-C", str(work), "--cherry-pick", info.fix_sha)
    assert paused.code == ExitCode.PAUSED, paused
    status = _doc(cli, "status", ISSUE)
    assert status["next_command"] == ["hotfix", "approve", status["id"], "deploy"]
    hid = str(status["id"])
    approved = cli("approve", hid, "deploy", "--comment", "checked the diff with Ana")
    assert approved.code == 0, approved
    assert "comment: checked the diff with Ana" in approved.out

    done = cli("resume", hid)
    assert done.code == ExitCode.OK, done
    # Off a terminal the monitoring rounds are log lines: values against their thresholds.
    rounds = [line for line in done.err.splitlines() if ": monitor: round " in line]
    assert rounds, done.err
    assert "error_rate " in rounds[0], rounds
    assert "(ok " in rounds[0], rounds
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip()
        for line in done.out.splitlines()
        if line.startswith("  ") and ":" in line
    }
    # Each link is the page of an object the rehearsal GitHub has.
    pr_url, number = lines["PR"].split(" ")
    assert _api(served, f"pulls/{number.strip('(#)')}")["html_url"] == pr_url, done.out
    run_id = lines["deploy run"].rsplit("/", 1)[1]
    assert _api(served, f"actions/runs/{run_id}")["html_url"] == lines["deploy run"]
    back = lines["back-merge PR"]
    assert _api(served, f"pulls/{back.rsplit('/', 1)[1]}")["html_url"] == back
    tags = subprocess.run(
        ["git", "ls-remote", "--tags", info.origin], capture_output=True, text=True, check=True
    ).stdout
    assert f"refs/tags/{lines['release tag']}" in tags
    assert " s" in lines["time to production"]
    assert "target" in lines["time to production"]
    assert "next" in lines

    final = _doc(cli, "status", hid)
    assert final["links"]["pr"] == lines["PR"].split(" ")[0]
    assert final["next_command"] is None
    with HotfixEngine(cli_env["HOTFIX_FSM_DB"]) as engine:
        st = engine.status(hid)
        assert isinstance(st, HotfixStatus)
        assert st.state == "done"
        assert st.as_json() == final  # the library and the command: one document
        assert st.release_tag == lines["release tag"]
        assert st.time_to_production_s is not None
        assert st.time_target_s is not None

    report = _doc(cli, "report", hid)
    assert report["approvals"][0]["comment"] == "checked the diff with Ana"
    markdown = cli("report", hid).out
    assert "checked the diff with Ana" in markdown
    log = _doc(cli, "log", hid)
    last_two = _doc(cli, "log", hid, "--limit", "2")
    assert [e["seq"] for e in last_two["entries"]] == [e["seq"] for e in log["entries"][-2:]]
    piped = cli("log", hid, "--limit", "3").out.splitlines()
    assert [line.split("\t")[0] for line in piped] == [str(e["seq"]) for e in log["entries"][-3:]]
    listed = _doc(cli, "list", "--all", "--limit", "1")
    assert [h["id"] for h in listed["hotfixes"]] == [hid]


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and sub-command of ``hotfix``, as the words that name it."""
    import typer

    from hotfix_fsm.cli.command import app

    paths: list[tuple[str, ...]] = [()]
    stack: list[tuple[tuple[str, ...], Any]] = [((), typer.main.get_command(app))]
    while stack:
        path, group = stack.pop()
        for name, sub in getattr(group, "commands", {}).items():
            paths.append((*path, name))
            stack.append(((*path, name), sub))
    return sorted(paths)


def test_help_is_conventional(cli: Cli) -> None:
    paths = _command_paths()
    assert ("sandbox", "protect") in paths
    assert ("dashboard",) in paths
    for path in paths:
        shown = cli(*path, "--help")
        assert shown.code == 0, shown
        for odd in ("<bool>", "<list[str]>", "<str>", "<path>", "<int>", "<float>", "{issue}"):
            assert odd not in shown.out, (path, odd, shown.out)
        arguments = (
            shown.out.split("Arguments:")[1].split("Options:")[0]
            if "Arguments:" in shown.out
            else ""
        )
        for line in arguments.splitlines():
            name = line.split()[0] if line[2:3].strip() else ""  # not a wrapped line
            assert name == name.upper(), (path, line)  # DIRECTORY, not directory
    start = cli("start", "--help").out
    assert "-C, --repo DIR" in start
    assert "--cherry-pick SHA" in start
    assert "ISSUE DESCRIPTION" in start
    assert "--comment TEXT" in cli("approve", "--help").out
    assert "--install-completion" in cli("--help").out


def test_json_without_dry_run_is_a_usage_error(cli: Cli) -> None:
    result = cli("start", ISSUE, "Fix", "--json")
    assert result.code == ExitCode.USAGE, result
    assert "--dry-run" in result.err


def _summary(out: str) -> dict[str, str]:
    """The summary's ``  name: value`` lines."""
    pairs = (line.strip().split(": ", 1) for line in out.splitlines() if ": " in line)
    return {name: value.strip() for name, value in pairs}


def test_a_hotfix_rolled_back_exits_1_from_resume_with_its_summary(
    cli: Cli, served: RunningSandbox
) -> None:
    """`resume` answers "is the hotfix done?": a hotfix that ended rolled back is not."""
    info = served.info
    work = Path(info.work)
    paused = cli("start", ISSUE, "Fix token expiry", "-C", str(work), "--cherry-pick", info.fix_sha)
    assert paused.code == ExitCode.PAUSED, paused
    status = _doc(cli, "status", ISSUE)
    served.production.set_mode("failing", for_version=str(status["facts"]["fix_sha"]))
    assert cli("approve", ISSUE, "deploy").code == ExitCode.OK
    ended = cli("resume", ISSUE)
    assert ended.code == ExitCode.FAILED, ended
    assert f"{status['id']}: rolled_back" in ended.out
    assert "  deploy run:" in ended.out
    assert "  time to production: not reached" in ended.out
    assert "  next:" in ended.out
    # The run that redeployed the rollback target is linked, and the rehearsal GitHub has it.
    lines = _summary(ended.out)
    run_id = lines["rollback run"].rsplit("/", 1)[1]
    assert _api(served, f"actions/runs/{run_id}")["html_url"] == lines["rollback run"]
    links = _doc(cli, "status", ISSUE)["links"]
    assert links["rollback_run"] == lines["rollback run"]
    assert links["revert_pr"] is None  # never merged: nothing to revert
    assert "revert PR" not in lines


def test_a_rollback_after_done_exits_0_and_links_its_revert_pr_and_run(
    cli: Cli, served: RunningSandbox
) -> None:
    info = served.info
    work = Path(info.work)
    done = cli("start", ISSUE, "Fix", "-C", str(work), "--cherry-pick", info.fix_sha, "--yes")
    assert done.code == ExitCode.OK, done
    rolled = cli("rollback", ISSUE, "--reason", "drill")
    assert rolled.code == ExitCode.OK, rolled  # the rollback command's question: yes
    lines = _summary(rolled.out)
    number = lines["revert PR"].rsplit("/", 1)[1]
    revert = _api(served, f"pulls/{number}")
    assert revert["html_url"] == lines["revert PR"]
    assert revert["base"]["ref"] == "production"
    run_id = lines["rollback run"].rsplit("/", 1)[1]
    assert _api(served, f"actions/runs/{run_id}")["html_url"] == lines["rollback run"]
    links = _doc(cli, "status", ISSUE)["links"]
    assert (links["revert_pr"], links["rollback_run"]) == (
        lines["revert PR"],
        lines["rollback run"],
    )
    shown = cli("status", ISSUE).out  # the status view names them beside the rollback
    assert f"revert PR {lines['revert PR']}, run {lines['rollback run']}" in shown, shown


def test_status_watch_follows_another_driver_and_open_prints_urls(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str], tmp_path: Path
) -> None:
    info = served.info
    work = Path(info.work)
    paused = cli("start", ISSUE, "Fix token expiry", "-C", str(work), "--cherry-pick", info.fix_sha)
    assert paused.code == ExitCode.PAUSED, paused
    missing = cli("open", ISSUE, "tag")
    assert missing.code == ExitCode.USAGE, missing
    # Watching a hotfix that waits at a gate answers at once, with the pause's code.
    waiting = cli("status", ISSUE, "--watch", "--interval", "0.1")
    assert waiting.code == ExitCode.PAUSED, waiting
    assert "state: awaiting_deploy_approval" in waiting.out
    assert "no release tag is recorded" in missing.err
    assert cli("approve", ISSUE, "deploy").code == ExitCode.OK
    # Watch from one process while another drives the hotfix to its end.
    watcher = subprocess.Popen(
        [sys.executable, "-m", "hotfix_fsm.cli", "status", ISSUE, "--watch", "--interval", "0.1"],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Drive only once the watcher has read where the hotfix stands ("watching ..."):
        # it follows from there, so a drive that began first would leave rows unseen.
        assert watcher.stderr is not None
        first = watcher.stderr.readline()
        assert "watching" in first, first
        driven = cli("resume", ISSUE)
        assert driven.code == ExitCode.OK, driven
        out, err = watcher.communicate(timeout=120)
        err = first + err
    finally:
        if watcher.poll() is None:
            watcher.kill()
    assert watcher.returncode == ExitCode.OK, (out, err)
    assert "watching" in err
    assert "awaiting_deploy_approval → deploying" in out
    assert "state: done" in out
    # In a pipe, rows as `hotfix log` pipes them: tab-separated, ISO times, values whole.
    rows = [line.split("\t") for line in out.splitlines() if line.count("\t") == 3]
    assert rows, out
    assert all(row[0].isdigit() and row[1].endswith("Z") for row in rows), rows
    deployed = next(r for r in rows if r[2] == "done" and "deployed_sha=" in r[3])
    sha = deployed[3].split("deployed_sha=")[1].split(",")[0].split()[0]
    assert len(sha) == 40, deployed
    status = _doc(cli, "status", ISSUE)
    assert cli("open", ISSUE, "pr").out.strip() == status["links"]["pr"]
    assert cli("open", ISSUE, "run").out.strip() == status["links"]["deploy_run"]
    tag_url = cli("open", ISSUE, "tag").out.strip()
    assert tag_url.endswith(f"/releases/tag/{status['links']['release_tag']}")
    assert cli("open", ISSUE, "nonsense").code == ExitCode.USAGE
