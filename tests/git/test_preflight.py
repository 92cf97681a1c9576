"""Preflight: every refusal is a UsageError with a hint, and nothing is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import ExitCode, UsageError
from hotfix_fsm.phases.git_phases import preflight
from hotfix_fsm.phases.services import Services
from tests.helpers_git import GitWorld, git, make_config


def run_preflight(path: Path, **config: object) -> dict[str, object]:
    cfg = make_config()
    for key, value in config.items():
        setattr(cfg, key, value)
    services = Services(cfg, path)
    try:
        return preflight(services, cfg, "INC-1")
    finally:
        services.close()


def refused(path: Path, match: str, **config: object) -> UsageError:
    with pytest.raises(UsageError, match=match) as err:
        run_preflight(path, **config)
    assert err.value.exit_code == ExitCode.USAGE
    assert err.value.hint
    return err.value


def test_facts_name_the_remote_production_head(world: GitWorld) -> None:
    # The engineer's local main is somewhere else entirely: the base is remote production.
    facts = run_preflight(world.work)
    assert facts["base_sha"] == world.base_sha
    assert facts["remote_url"] == str(world.origin)
    assert facts["production_branch"] == "production"


def test_the_remote_head_is_read_after_a_fetch(world: GitWorld) -> None:
    moved = world.push_as_someone_else("production", {"app.py": "moved\n"}, "newer production")
    assert run_preflight(world.work)["base_sha"] == moved


def test_not_a_git_work_tree(tmp_path: Path, world: GitWorld) -> None:
    (tmp_path / "plain").mkdir()
    refused(tmp_path / "plain", "not inside a git work tree")
    refused(world.origin, "bare repository")


def test_unknown_remote(world: GitWorld) -> None:
    error = refused(world.work, "no remote named 'upstream'", remote="upstream")
    assert "git remote add upstream" in (error.hint or "")


def test_dirty_work_tree(world: GitWorld) -> None:
    world.write("app.py", "edited\n")
    error = refused(world.work, r"not clean \(app.py\)")
    assert "stash" in (error.hint or "")


def test_untracked_files_count_but_ignored_files_do_not(world: GitWorld) -> None:
    world.write("ignored/cache.bin", "x")
    world.write("debug.log", "x")
    run_preflight(world.work)
    world.write("notes.txt", "x")
    refused(world.work, "notes.txt")


def test_missing_production_branch(world: GitWorld) -> None:
    error = refused(world.work, "has no branch 'release'", production_branch="release")
    assert "production_branch" in (error.hint or "")


def test_unreachable_remote(world: GitWorld, tmp_path: Path) -> None:
    git(world.work, "remote", "set-url", "origin", str(tmp_path / "vanished.git"))
    refused(world.work, "cannot fetch from remote 'origin'")


def test_local_production_behind_remote_is_brought_level(world: GitWorld) -> None:
    # Typical after the previous hotfix merged: the local branch is only behind.
    git(world.work, "branch", "production", world.shas["initial"])
    run_preflight(world.work)
    assert git(world.work, "rev-parse", "production").strip() == world.base_sha


def test_checked_out_production_behind_remote_is_fast_forwarded(world: GitWorld) -> None:
    git(world.work, "switch", "--quiet", "-C", "production", world.shas["initial"])
    run_preflight(world.work)
    assert git(world.work, "rev-parse", "HEAD").strip() == world.base_sha


def test_local_production_with_unpushed_commits(world: GitWorld) -> None:
    git(world.work, "switch", "--quiet", "production")
    world.write("local.txt", "unpushed\n")
    git(world.work, "add", "local.txt")
    git(world.work, "commit", "--quiet", "-m", "unpushed")
    refused(world.work, "commits the remote does not")


def test_local_production_equal_to_remote_is_fine(world: GitWorld) -> None:
    git(world.work, "switch", "--quiet", "production")
    assert run_preflight(world.work)["base_sha"] == world.base_sha


def test_unfinished_merge(world: GitWorld) -> None:
    git(world.work, "switch", "--quiet", "-c", "mine", world.shas["initial"])
    world.write("config.txt", "timeout=1\n")
    git(world.work, "commit", "--quiet", "-am", "mine")
    proc = git_fails(world.work, "merge", "origin/production")
    assert proc
    refused(world.work, "merge is in progress")


def git_fails(cwd: Path, *args: str) -> bool:
    try:
        git(cwd, *args)
    except AssertionError:
        return True
    return False


def test_start_records_nothing_when_preflight_refuses(
    world: GitWorld, engine: HotfixEngine
) -> None:
    world.write("app.py", "dirty\n")
    with pytest.raises(UsageError):
        engine.start("INC-1", "Fix it", repo=world.work)
    assert engine.store.count() == 0


def test_second_active_hotfix_for_the_same_issue(world: GitWorld, engine: HotfixEngine) -> None:
    first = engine.start("INC-1", "Fix it", repo=world.work)
    with pytest.raises(UsageError, match=f"hotfix {first.id} for issue INC-1"):
        engine.start("INC-1", "Fix it again", repo=world.work)
