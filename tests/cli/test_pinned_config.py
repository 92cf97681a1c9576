"""The configuration pinned when a hotfix starts, through the ``hotfix`` command against a
served sandbox whose repository is set up the way teams set them up: ``hotfix.toml``
committed on ``main`` only (it vanishes when the hotfix branch is cut from production), or
kept untracked (not excluded from git as the sandbox does by default)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.sandbox.world import APP_FIXED, TOKEN_ENV
from hotfix_fsm.store import open_store
from tests.cli.conftest import Cli, assert_clean_error
from tests.helpers_git import git


def _hotfix(cli_env: dict[str, str], ref: str) -> Any:
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    try:
        return store.find(ref)
    finally:
        store.engine.dispose()


def _journal(cli: Cli, ref: str) -> list[dict[str, Any]]:
    result = cli("log", ref, "--json")
    assert result.code == 0, result
    entries = json.loads(result.out)["entries"]
    assert isinstance(entries, list)
    return entries


def _gate_command(cli: Cli, ref: str, gate: str) -> list[str]:
    done = [e for e in _journal(cli, ref) if e["kind"] == "done" and e["phase"] == f"gate:{gate}"]
    assert len(done) == 1, done
    command = done[0]["payload"]["facts"]["command"]
    assert isinstance(command, list)
    return command


def _untrack_config(work: Path) -> None:
    """Stop excluding hotfix.toml from git, as a repository set up by hand would."""
    (work / ".git" / "info" / "exclude").write_text("*.tmp\n", encoding="utf-8")
    assert git(work, "status", "--porcelain", "--", "hotfix.toml") == "?? hotfix.toml"


def _set(text: str, section: str, line: str, value: str) -> str:
    """``text`` with ``line = ...`` of ``[section]`` set to ``value`` (the line must exist)."""
    head, marker, tail = text.partition(f"[{section}]\n")
    assert marker, section
    body, sep, rest = tail.partition("\n[")
    lines = body.splitlines()
    hits = [i for i, existing in enumerate(lines) if existing.startswith(f"{line} =")]
    assert len(hits) == 1, (section, line)
    lines[hits[0]] = f"{line} = {value}"
    return head + marker + "\n".join(lines) + "\n" + sep + rest


def test_config_committed_on_main_only_is_pinned_and_used_after_the_branch_and_in_another_clone(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str], tmp_path: Path
) -> None:
    info = served.info
    work = Path(info.work)
    # A committed configuration never holds a token: it names the variable.
    text = (work / "hotfix.toml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("token ="))
    (work / "hotfix.toml").write_text(text + "\n", encoding="utf-8")
    _untrack_config(work)
    git(work, "add", "hotfix.toml")
    git(work, "commit", "--quiet", "-m", "Configure hotfix")
    git(work, "push", "--quiet", "origin", "main")
    env = {TOKEN_ENV: info.token}
    pinned_tests = json.loads(text.split("[gates.tests]\ncommand = ")[1].splitlines()[0])

    started = cli("start", "INC-21", "Fix token expiry check", cwd=work, env=env)
    assert started.code == ExitCode.PAUSED, started
    pin = _hotfix(cli_env, "INC-21").options["config"]
    assert pin["source"] == str(work / "hotfix.toml")
    assert pin["values"]["gates"]["tests"]["command"] == pinned_tests
    # The branch was cut from production, which has no hotfix.toml: the file is gone here.
    assert not (work / "hotfix.toml").exists()

    (work / "app.py").write_text(APP_FIXED, encoding="utf-8")
    resumed = cli("resume", "INC-21", cwd=work, env=env)
    assert resumed.code == ExitCode.PAUSED, resumed  # at the deploy approval
    assert "has no command" not in resumed.out + resumed.err
    assert "differs from the configuration pinned" not in resumed.err
    assert _gate_command(cli, "INC-21", "tests") == pinned_tests

    # Approve from another directory; then resume in another clone, on a machine whose own
    # configuration file names another deploy workflow: reported, and the pinned one used.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    approved = cli("approve", "INC-21", "deploy", cwd=elsewhere, env=env)
    assert approved.code == 0, approved
    other = tmp_path / "other-clone"
    git(tmp_path, "clone", "--quiet", info.origin, str(other))
    assert (other / "hotfix.toml").is_file()  # main, checked out there, has it
    theirs = elsewhere / "hotfix.toml"
    theirs.write_text(_set(text, "deploy", "workflow", '"deploy-canary.yml"'), encoding="utf-8")
    handed = cli(
        "--config", str(theirs), "resume", "INC-21", "--repo", str(other), cwd=elsewhere, env=env
    )
    assert handed.code == ExitCode.OK, handed
    assert (
        "deploy.workflow: pinned 'deploy-production.yml', file now 'deploy-canary.yml'"
        in handed.err
    )
    assert "--reload-config" in handed.err
    status = json.loads(cli("status", "INC-21", "--json").out)
    assert status["state"] == "done"
    assert status["repo"] == str(other.resolve())
    effects = served.effects()
    assert [d["workflow"] for d in effects["dispatches"]] == ["deploy-production.yml"]
    assert served.production.version == status["facts"]["deployed_sha"]


def test_untracked_config_from_a_subdirectory_changed_file_reported_then_reloaded(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str]
) -> None:
    info = served.info
    work = Path(info.work)
    _untrack_config(work)
    subdir = work / "tests"
    checked = cli("check", cwd=subdir)
    line = next(x for x in checked.out.splitlines() if "configuration:" in x)
    assert f"{work / 'hotfix.toml'} (found at the git top level; untracked)" in line, line
    assert "defaults" not in line

    started = cli("start", "INC-22", "Fix token expiry check", cwd=subdir)
    assert started.code == ExitCode.PAUSED, started  # the untracked file is not a change
    hotfix = _hotfix(cli_env, "INC-22")
    assert hotfix.repo == str(work.resolve())  # the top level, not the subdirectory
    pin = hotfix.options["config"]
    assert pin["source"] == str(work / "hotfix.toml")
    assert pin["relative"] == "hotfix.toml"
    assert pin["values"]["github"]["token"] == ""  # the literal token is never stored
    assert pin["values"]["github"]["token_env"] == TOKEN_ENV
    # The sandbox writes its token and its PagerDuty routing key literally: neither is pinned.
    assert pin["literal_secrets"] == ["github.token", "alerts.pagerduty_routing_key"]
    pinned_tests = pin["values"]["gates"]["tests"]["command"]

    # The engineer fixes the app; someone edits the configuration meanwhile.
    (work / "app.py").write_text(APP_FIXED, encoding="utf-8")
    marker = [sys.executable, "-c", "print('tests from the edited file')"]
    text = (work / "hotfix.toml").read_text(encoding="utf-8")
    text = _set(text, "gates.tests", "command", json.dumps(marker))
    text += '\n[tag]\nscheme = "hotfix-{issue}"\n'
    (work / "hotfix.toml").write_text(text, encoding="utf-8")

    resumed = cli("resume", "INC-22", cwd=subdir)
    assert resumed.code == ExitCode.PAUSED, resumed  # at the deploy approval
    shown = [x.strip() for x in resumed.err.splitlines()]
    assert f"gates.tests.command: pinned {pinned_tests!r:.80}, file now {marker!r:.80}" in shown
    assert "tag.scheme: pinned 'patch', file now 'hotfix-{issue}'" in shown
    assert "to take the file's values: `hotfix resume " in resumed.err
    assert _gate_command(cli, "INC-22", "tests") == pinned_tests  # the pinned value was used
    assert _hotfix(cli_env, "INC-22").options["config"]["hash"] == pin["hash"]
    fix_sha = _hotfix(cli_env, "INC-22").context["fix_sha"]
    assert git(work, "show", "--name-only", "--format=", fix_sha) == "app.py"
    assert git(work, "status", "--porcelain") == "?? hotfix.toml"

    assert cli("approve", "INC-22", "deploy", cwd=subdir).code == 0
    reloaded = cli("resume", "INC-22", "--reload-config", cwd=subdir)
    assert reloaded.code == ExitCode.OK, reloaded
    assert "now uses the configuration of" in reloaded.err
    assert "tag.scheme: pinned 'patch', file now 'hotfix-{issue}'" in reloaded.err
    final = _hotfix(cli_env, "INC-22")
    assert final.context["release_tag"] == "hotfix-INC-22"  # the file's value, after reload
    assert final.options["config"]["hash"] != pin["hash"]
    notes = [e for e in _journal(cli, "INC-22") if "config_reload" in e["payload"]]
    assert len(notes) == 1
    changed = notes[0]["payload"]["config_reload"]["changed"]
    assert "tag.scheme: pinned 'patch', file now 'hotfix-{issue}'" in changed
    assert any(c.startswith("gates.tests.command: pinned") for c in changed)
    # The literal token came from the file at use time; it never reached the store.
    db = Path(cli_env["HOTFIX_FSM_DB"])
    for blob in db.parent.glob(db.name + "*"):
        assert info.token.encode() not in blob.read_bytes()


def test_reload_without_a_file_is_refused_clearly(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str]
) -> None:
    work = Path(served.info.work)
    started = cli("start", "INC-23", "Fix it by hand", cwd=work)
    assert started.code == ExitCode.PAUSED, started
    (work / "hotfix.toml").unlink()
    refused = cli("resume", "INC-23", "--reload-config", cwd=work)
    assert refused.code == ExitCode.USAGE, refused
    assert_clean_error(refused)
    assert "no configuration file to reload" in refused.err
    assert _hotfix(cli_env, "INC-23").state == "awaiting_fix"  # nothing was driven
