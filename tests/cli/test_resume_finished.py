"""`hotfix resume` without an id when nothing is unfinished: how the last hotfix ended."""

from __future__ import annotations

from pathlib import Path

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.store import open_store
from tests.cli.conftest import Cli, assert_clean_error

ISSUE = "INC-7"


def _ended(cli: Cli, cli_env: dict[str, str], ref: str) -> tuple[str, str]:
    """(id, state) of a hotfix, read from the store."""
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    try:
        found = store.find(ref)
        return found.id, found.state
    finally:
        store.engine.dispose()


def test_resume_after_the_end_says_how_the_last_hotfix_ended(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str]
) -> None:
    info = served.info
    work = Path(info.work)
    empty = cli("resume")
    assert empty.code == ExitCode.USAGE, empty
    assert_clean_error(empty)
    assert "no hotfix in this store" in empty.err

    started = cli(
        "start", ISSUE, "Fix token expiry check", "--cherry-pick", info.fix_sha, "--yes", cwd=work
    )
    assert started.code == ExitCode.OK, started
    hotfix_id, state = _ended(cli, cli_env, ISSUE)
    assert state == "done"
    after_done = cli("resume", cwd=work)
    assert after_done.code == ExitCode.OK, after_done
    assert f"the last hotfix, {hotfix_id} ({ISSUE}), is done" in after_done.out
    assert f"`hotfix report {hotfix_id}`" in after_done.out
    assert " UTC" in after_done.out

    rolled = cli("rollback", hotfix_id, "--reason", "drill")
    assert rolled.code == ExitCode.OK, rolled  # production runs the target: yes
    after_rollback = cli("resume")
    assert after_rollback.code == ExitCode.OK, after_rollback
    assert f"{hotfix_id} ({ISSUE}), was rolled back" in after_rollback.out
    assert f"`hotfix report {hotfix_id}`" in after_rollback.out

    paused = cli("start", "INC-8", "Fix it again", "--cherry-pick", info.fix_sha, cwd=work)
    assert paused.code == ExitCode.PAUSED, paused
    second, _ = _ended(cli, cli_env, "INC-8")
    aborted = cli("abort", second, "--reason", "not needed")
    assert aborted.code == ExitCode.OK, aborted
    after_abort = cli("resume")
    assert after_abort.code == ExitCode.OK, after_abort
    assert f"{second} (INC-8), was cancelled" in after_abort.out
    assert f"`hotfix log {second}`" in after_abort.out
