"""``hotfix --lease-ttl SECONDS`` (or ``HOTFIX_FSM_LEASE_TTL``) sets how long a driver's lease
lives: validated before anything runs, and the lease the real command holds while it drives
has that lifetime."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotfix_fsm.cli.options import Globals
from hotfix_fsm.errors import ExitCode, InvalidInput
from hotfix_fsm.sandbox.serve import RunningSandbox
from tests.cli.conftest import Cli


@pytest.mark.parametrize("value", ["2", "3601", "soon", "nan"])
def test_a_lease_lifetime_out_of_range_is_a_usage_error(
    cli: Cli, value: str, cli_env: dict[str, str]
) -> None:
    for given, env in ((("--lease-ttl", value), {}), ((), {"HOTFIX_FSM_LEASE_TTL": value})):
        result = cli(*given, "list", env=env)
        assert result.code == ExitCode.USAGE, result
        assert "--lease-ttl" in result.err, result.err
        assert "Traceback" not in result.err
    assert not Path(cli_env["HOTFIX_FSM_DB"]).exists()  # nothing was opened


def test_the_engine_refuses_a_lease_lifetime_that_is_not_positive(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="lease_ttl"):
        Globals(db=str(tmp_path / "s.db"), config=None, verbose=0, lease_ttl=0).engine()


def _longest_lease(db: Path, proc: subprocess.Popen[str]) -> float:
    """The longest lease lifetime seen (expiry minus now) while ``proc`` drives."""
    longest = 0.0
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if db.exists():
            with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
                try:
                    rows = conn.execute("SELECT lease_expires_at FROM hotfixes").fetchall()
                except sqlite3.OperationalError:  # the store is still being created
                    rows = []
            for (expires,) in rows:
                if expires:
                    longest = max(longest, float(expires) - time.time())
        time.sleep(0.05)
    return longest


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_driver_holds_its_lease_for_the_lifetime_given(
    served: RunningSandbox, cli_env: dict[str, str], how: str
) -> None:
    db = Path(cli_env["HOTFIX_FSM_DB"])
    env = {**cli_env, **({"HOTFIX_FSM_LEASE_TTL": "900"} if how == "env" else {})}
    given = ["--lease-ttl", "900"] if how == "option" else []
    info = served.info
    argv = [*given, "start", "INC-7", "Fix expiry", "--cherry-pick", info.fix_sha, "--yes"]
    log = db.parent / f"start-{how}.log"
    with log.open("w+") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hotfix_fsm.cli", *argv],
            cwd=info.work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            longest = _longest_lease(db, proc)
        finally:
            proc.wait(timeout=300)
    assert proc.returncode == 0, log.read_text()
    # The default lease lives 30 s; this one was renewed to 900 s from now.
    assert longest > 300, longest
