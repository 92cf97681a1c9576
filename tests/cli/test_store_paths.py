"""Where the store is: a path the user gave must be in a directory that exists (a typo is an
error naming it, not a new empty store); the default location is created as needed."""

from __future__ import annotations

from pathlib import Path

from hotfix_fsm.errors import ExitCode
from tests.cli.conftest import Cli, assert_clean_error


def test_a_store_in_a_missing_directory_is_an_error_naming_it(cli: Cli, tmp_path: Path) -> None:
    typo = tmp_path / "stroe" / "hotfix.db"
    for args, env in (
        (("--db", str(typo), "list"), {}),
        (("list",), {"HOTFIX_FSM_DB": str(typo)}),
        (("--db", f"sqlite:///{typo}", "status"), {}),
        (("--db", str(typo), "resume"), {}),
    ):
        result = cli(*args, env=env)
        assert result.code == ExitCode.USAGE, result
        assert_clean_error(result)
        assert f"{typo.parent} does not exist" in result.err, result
        assert str(typo) in result.err, result
        assert f"mkdir -p {typo.parent}" in result.err, result
        assert "no hotfixes in progress" not in result.out
    assert not typo.parent.exists()


def test_a_file_where_the_directory_should_be_is_named(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("not a directory\n")
    result = cli("--db", str(tmp_path / "notes" / "hotfix.db"), "list")
    assert result.code == ExitCode.USAGE, result
    assert f"{tmp_path / 'notes'} is not a directory" in result.err, result


def test_the_default_store_location_is_created(cli: Cli, tmp_path: Path) -> None:
    xdg = tmp_path / "fresh-home" / "state"
    result = cli("list", env={"HOTFIX_FSM_DB": "", "XDG_STATE_HOME": str(xdg)})
    assert result.code == ExitCode.OK, result
    assert (xdg / "hotfix_fsm" / "hotfix.db").is_file()


def test_a_store_in_an_existing_directory_is_created(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "team" / "hotfix.db"
    db.parent.mkdir()
    result = cli("--db", str(db), "list")
    assert result.code == ExitCode.OK, result
    assert db.is_file()
