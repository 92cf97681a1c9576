"""``hotfix adopt`` as a real process: output, exit codes and errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hotfix_fsm.durable import failpoints

from .conftest import Stop, Team, stop_after

REPO_ROOT = Path(__file__).resolve().parents[2]
# The console script with the team commands attached (cli.py wires `register` itself).
MAIN = """
import sys
from hotfix_fsm import cli
from hotfix_fsm.cli import team as cli_team
if not any(c.name == "adopt" for c in cli.app.registered_commands):
    cli_team.register(cli.app)
cli.main(sys.argv[1:])
"""


def hotfix(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HOTFIX_FSM_DB": str(db),
        "COLUMNS": "200",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [sys.executable, "-c", MAIN, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_hotfix_adopt_command(team: Team, tmp_path: Path) -> None:
    engine = team.engine(tmp_path / "lost.db")
    hotfix_id = team.start(engine)
    stop_after("after_done", "deploy")
    with pytest.raises(Stop):
        engine.drive(hotfix_id)
    failpoints.set_hook(None)
    branch = engine.get(hotfix_id).context["branch"]
    fresh = tmp_path / "fresh.db"  # the laptop's database is gone; this store is empty

    done = hotfix(fresh, "adopt", "--issue", "INC-8", "--repo", str(team.work))
    assert done.returncode == 0, done.stderr
    assert f"adopted hotfix {hotfix_id} (INC-8) at state deployed" in done.stdout
    assert f"branch: {branch}" in done.stdout
    assert "seen: deploy run" in done.stdout
    assert f"next: `hotfix resume {hotfix_id}`" in done.stdout

    again = hotfix(fresh, "adopt", "--branch", branch, "--repo", str(team.work))
    assert again.returncode == 2
    assert "already in this store" in again.stderr
    assert f"What to do: adopt is for a lost database; next: `hotfix resume {hotfix_id}`" in (
        again.stderr
    )

    for args, said in (
        (["adopt", "--repo", str(team.work)], "exactly one of --branch and --issue"),
        (["adopt", "--branch", "hotfix/INC-9-20200101-000000", "--repo", str(team.work)], ""),
        (["adopt", "--issue", "bad issue", "--repo", str(team.work)], "issue"),
    ):
        refused = hotfix(tmp_path / "other.db", *args)
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr
        assert said in refused.stderr
        assert "hotfix: error:" in refused.stderr
