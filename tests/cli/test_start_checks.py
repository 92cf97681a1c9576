"""``hotfix start`` checks every argument before the first change, and finds the configuration
at the git top level, through the command against real git repositories (a bare origin, a
clone on ``main``; ``production`` only on the remote, as on a laptop)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.errors import ExitCode
from hotfix_fsm.store import open_store
from tests.cli.conftest import Cli, Result, assert_clean_error
from tests.helpers_git import GitWorld, build_git_world, git


def _config(work: Path) -> Path:
    """An untracked hotfix.toml, as `hotfix init` leaves it, with quick passing gates."""
    ok = json.dumps([sys.executable, "-c", "print('ok')"])
    text = "\n".join(f"[gates.{name}]\ncommand = {ok}\n" for name in ("tests", "build", "audit"))
    path = work / "hotfix.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def world(tmp_path: Path) -> GitWorld:
    world = build_git_world(tmp_path / "world")
    _config(world.work)
    return world


def _snapshot(world: GitWorld) -> dict[str, str]:
    """What must not change when a start is refused."""
    return {
        "head": git(world.work, "rev-parse", "HEAD"),
        "branch": git(world.work, "symbolic-ref", "--short", "HEAD"),
        "status": git(world.work, "status", "--porcelain", "--untracked-files=all"),
        "local refs": git(
            world.work, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"
        ),
        "remote refs": git(world.origin, "for-each-ref", "--format=%(refname) %(objectname)"),
    }


def _refused(cli: Cli, world: GitWorld, result: Result, *words: str) -> None:
    assert result.code == ExitCode.USAGE, result
    assert_clean_error(result)
    for word in words:
        assert word in result.err, result.err
    listed = cli("list", "--all", "--json")
    assert listed.code == 0, listed
    assert json.loads(listed.out)["hotfixes"] == []


@pytest.mark.parametrize("dry_run", [False, True], ids=["start", "dry-run"])
def test_an_unknown_cherry_pick_is_refused_with_nothing_recorded_or_changed(
    cli: Cli, world: GitWorld, dry_run: bool
) -> None:
    before = _snapshot(world)
    unknown = "deadbeef" * 5
    args = ["start", "INC-1", "Fix", "--cherry-pick", unknown, *(["--dry-run"] if dry_run else [])]
    result = cli(*args, cwd=world.work)
    _refused(cli, world, result, f"--cherry-pick '{unknown}' is not a commit", "What to do")
    assert _snapshot(world) == before


@pytest.mark.parametrize("dry_run", [False, True], ids=["start", "dry-run"])
@pytest.mark.parametrize(
    ("pattern", "said"),
    [
        ("hotfix/{issue}..{timestamp}", "contains '..'"),
        ("hotfix/{issue}-{user}", "unknown placeholder"),
        ("hotfix/{issue} {timestamp}", "not a valid git ref"),
    ],
)
def test_a_bad_branch_pattern_is_refused_before_anything_is_recorded(
    cli: Cli, world: GitWorld, dry_run: bool, pattern: str, said: str
) -> None:
    config = world.work / "hotfix.toml"
    config.write_text(
        f"branch_pattern = {json.dumps(pattern)}\n" + config.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    before = _snapshot(world)
    args = ["start", "INC-1", "Fix", *(["--dry-run"] if dry_run else [])]
    result = cli(*args, cwd=world.work)
    _refused(cli, world, result, said, "branch_pattern", "hotfix.toml", "What to do")
    assert _snapshot(world) == before


@pytest.mark.parametrize("dry_run", [False, True], ids=["start", "dry-run"])
def test_a_cherry_pick_that_conflicts_with_production_is_refused(
    cli: Cli, world: GitWorld, dry_run: bool
) -> None:
    before = _snapshot(world)
    picks = [world.shas["fix_on_main"], world.shas["config_on_main"]]
    args = ["start", "INC-1", "Fix", *(a for sha in picks for a in ("--cherry-pick", sha))]
    result = cli(*args, *(["--dry-run"] if dry_run else []), cwd=world.work)
    _refused(cli, world, result, "conflicts in config.txt", "start without --cherry-pick")
    assert _snapshot(world) == before


@pytest.mark.parametrize("dry_run", [False, True], ids=["start", "dry-run"])
def test_a_patch_that_does_not_apply_is_refused(
    cli: Cli, world: GitWorld, tmp_path: Path, dry_run: bool
) -> None:
    patch = tmp_path / "fix.patch"
    patch.write_text(
        git(world.seed, "format-patch", "--stdout", "-1", world.shas["config_on_main"]) + "\n"
    )
    before = _snapshot(world)
    args = ["start", "INC-1", "Fix", "--patch", str(patch), *(["--dry-run"] if dry_run else [])]
    result = cli(*args, cwd=world.work)
    _refused(cli, world, result, "does not apply to", "config.txt")
    assert _snapshot(world) == before


def test_the_dry_run_checks_a_good_cherry_pick_against_production(
    cli: Cli, world: GitWorld
) -> None:
    before = _snapshot(world)
    fix = world.shas["fix_on_main"]
    result = cli("start", "INC-1", "Fix", "--cherry-pick", fix, "--dry-run", cwd=world.work)
    assert result.code == 0, result
    assert f"fix: applies cleanly onto the production head {world.base_sha[:12]}" in result.out
    assert (
        f"configuration: {world.work / 'hotfix.toml'} (found at the git top level; untracked)"
        in result.out
    )
    assert _snapshot(world) == before


def test_start_from_a_subdirectory_records_the_top_level_and_pins_its_config(
    cli: Cli, world: GitWorld, cli_env: dict[str, str]
) -> None:
    subdir = world.work / "deep" / "er"
    subdir.mkdir(parents=True)
    (subdir / ".keep").write_text("", encoding="utf-8")
    git(world.work, "add", "deep")
    git(world.work, "commit", "--quiet", "-m", "a subdirectory")
    started = cli("start", "INC-1", "Fix by hand", cwd=subdir)
    # The untracked hotfix.toml did not make the work tree "not clean".
    assert started.code == ExitCode.PAUSED, started
    status = json.loads(cli("status", "INC-1", "--json").out)
    assert status["repo"] == str(world.work.resolve())
    assert status["state"] == "awaiting_fix"
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    try:
        pin = store.find("INC-1").options["config"]
    finally:
        store.engine.dispose()
    assert pin["source"] == str(world.work / "hotfix.toml")
    assert pin["values"]["gates"]["tests"]["command"] == [sys.executable, "-c", "print('ok')"]
    assert len(pin["hash"]) == 64


def test_a_dirty_work_tree_is_still_refused_and_the_config_is_not_the_reason(
    cli: Cli, world: GitWorld
) -> None:
    world.write("notes.txt", "an untracked file of the engineer's\n")
    result = cli("start", "INC-1", "Fix", cwd=world.work)
    assert result.code == ExitCode.USAGE, result
    assert "is not clean (notes.txt)" in result.err


def test_a_hotfix_without_a_pinned_config_is_read_as_before_and_says_so(
    cli: Cli, world: GitWorld, cli_env: dict[str, str]
) -> None:
    assert cli("start", "INC-1", "Fix by hand", cwd=world.work).code == ExitCode.PAUSED
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    try:  # as a hotfix recorded before configurations were pinned
        hotfix = store.find("INC-1")
        options = {k: v for k, v in hotfix.options.items() if k != "config"}
        JournalWriter(store).write(hotfix, [], options=options)
    finally:
        store.engine.dispose()
    resumed = cli("resume", "INC-1", cwd=world.work)
    assert resumed.code == ExitCode.PAUSED, resumed
    assert "was started before configurations were pinned" in resumed.err
    assert str(world.work / "hotfix.toml") in resumed.err


def test_check_and_init_from_a_subdirectory_say_where_the_config_lives(
    cli: Cli, world: GitWorld
) -> None:
    (world.work / "hotfix.toml").unlink()
    subdir = world.work / "ignored"
    subdir.mkdir()
    checked = cli("check", cwd=subdir)
    line = next(x for x in checked.out.splitlines() if "configuration:" in x)
    assert "valid (defaults)" not in line
    assert (
        f"no hotfix.toml or [tool.hotfix] in pyproject.toml at the git top level {world.work}"
        in line
    )

    written = cli("init", cwd=subdir)
    assert written.code == 0, written
    assert (world.work / "hotfix.toml").is_file()
    assert not (subdir / "hotfix.toml").exists()
    assert f"wrote {world.work / 'hotfix.toml'}" in written.out
    assert "at the git top level" in written.out
    assert "untracked" in written.out
    again = cli("check", cwd=subdir)
    line = next(x for x in again.out.splitlines() if "configuration:" in x)
    assert f"{world.work / 'hotfix.toml'} (found at the git top level; untracked): valid" in line
