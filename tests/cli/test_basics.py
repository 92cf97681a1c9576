"""The ``hotfix`` command without driving a hotfix: version, graph, input errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hotfix_fsm import __version__
from hotfix_fsm.errors import ExitCode
from tests.cli.conftest import Cli, assert_clean_error


def test_version_prints_and_exits_zero(cli: Cli) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"hotfix {__version__}"


def test_version_and_status_do_not_import_heavy_modules(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['hotfix'] + sys.argv[1:]\n"
        "try:\n"
        "    runpy.run_module('hotfix_fsm.cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('ghapi', 'git', 'alembic', 'requests', 'starlette', 'uvicorn', 'matplotlib',\n"
        "         'hotfix_fsm.sandbox')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
        "m.startswith('hotfix_fsm.sandbox')))\n"
    )
    # The first open of a new store creates it; the benchmark case is a store
    # that already exists.
    subprocess.run(
        [sys.executable, "-m", "hotfix_fsm.cli", "list"],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    for args in (["--version"], ["status", "--json"], ["list"]):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        loaded = proc.stdout.strip().splitlines()[-1]
        assert loaded == "[]", f"{args}: {loaded}"


def test_graph_prints_mermaid(cli: Cli) -> None:
    result = cli("graph")
    assert result.code == 0
    assert result.out.startswith("stateDiagram-v2")
    for state in ("created", "awaiting_deploy_approval", "rolling_back", "done"):
        assert state in result.out


def test_hostile_issue_ids_are_refused_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    for issue in ("$(id)", "-rf"):
        result = cli("start", "--repo", str(tmp_path), "--", issue, "Fix token expiry check")
        assert result.code == ExitCode.USAGE, result
        assert_clean_error(result)
        assert "refused" in result.err, result.err
    listed = cli("list", "--all", "--json")
    assert json.loads(listed.out)["hotfixes"] == []


@pytest.mark.parametrize("issue", ["..", "a b", "x;rm -rf /", "../../etc", "`id`", "A" * 65, ""])
def test_more_hostile_issue_ids_in_process(
    issue: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotfix_fsm.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--db", str(tmp_path / "s.db"), "start", "--repo", str(tmp_path), "--", issue, "d"])
    assert exc.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "hotfix: error: issue id" in err
    assert "Traceback" not in err


def test_option_looking_issue_without_separator_is_a_usage_error(cli: Cli) -> None:
    result = cli("start", "-rf", "desc")
    assert result.code == 2
    assert_clean_error(result)


def test_unknown_command_and_bad_gate_exit_2(cli: Cli) -> None:
    assert cli("frobnicate").code == 2
    result = cli("approve", "nope", "deploy")
    assert result.code == 2
    assert_clean_error(result)
    assert "no hotfix matches 'nope'" in result.err
    assert "What to do" in result.err


def test_status_and_list_on_an_empty_store(cli: Cli) -> None:
    status = cli("status")
    assert status.code == 0
    assert "no unfinished hotfix" in status.out
    doc = json.loads(cli("status", "--json").out)
    assert doc == {"schema": "hotfix-fsm/status@1", "id": None}
    listed = json.loads(cli("list", "--json").out)
    assert listed == {"schema": "hotfix-fsm/list@1", "include_finished": False, "hotfixes": []}


def test_bad_config_file_is_exit_2_naming_the_key(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[deploy]\napproval = "sometimes"\n')
    result = cli("--config", str(bad), "check", "--repo", str(tmp_path))
    assert result.code == 2
    assert "deploy.approval" in result.out
    assert_clean_error(result)


def test_unexpected_error_prints_crash_log_path_not_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from hotfix_fsm import cli
    from hotfix_fsm.cli import check as cli_check

    def boom(*_a: object, **_k: object) -> int:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cli_check, "print_check", boom)
    with pytest.raises(SystemExit) as exc:
        cli.main(["check", "--repo", str(tmp_path)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "unexpected error: RuntimeError: simulated bug" in err
    assert "Traceback" not in err
    crash = Path(err.split("the traceback is in ")[1].split(" — ")[0])
    assert crash.is_file()
    assert "Traceback" in crash.read_text()
