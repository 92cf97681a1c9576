"""Real processes: SIGKILL at failpoints, and several drivers racing for one hotfix."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from hotfix_fsm.core import machine

ROOT = Path(__file__).resolve().parents[2]


def run_driver(
    db: Path,
    world: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.engine.filedriver", str(db), str(world), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def effects(world: Path) -> Counter[str]:
    log = world / "effects.log"
    return Counter(log.read_text().splitlines()) if log.exists() else Counter()


@pytest.mark.parametrize(
    "failpoint",
    [
        "push:after_effect",
        "deploy:before_effect",
        "merge:after_done",
        "gate:tests:after_effect",
        "open_pr:after_effect@1",
    ],
)
def test_sigkill_at_a_failpoint_then_resume_to_done(tmp_path: Path, failpoint: str) -> None:
    db, world = tmp_path / "store.db", tmp_path
    hid = run_driver(db, world, "start", "INC-7").stdout.strip()
    killed = run_driver(
        db,
        world,
        "drive",
        hid,
        env={
            "HOTFIX_FSM_FAILPOINTS": failpoint,
            "HOTFIX_FSM_FAILPOINT_LOG": str(tmp_path / "kills.log"),
        },
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (
        (tmp_path / "kills.log").read_text().strip().startswith(failpoint.split("@", maxsplit=1)[0])
    )
    # The killed driver ran on this host and its pid is gone: resuming reclaims its lease at
    # once instead of waiting for it to expire.
    resumed = run_driver(db, world, "drive", hid)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("done")
    counts = effects(world)
    gates = {f"gate:{g}" for g in machine.GATES}
    forward = (
        machine.EFFECT_PHASES - gates - {"approve_deploy"} - {p for p, _, _ in machine.ROLLBACK}
    )
    for phase in forward:
        assert counts[f"{hid} {phase}"] == 1, (phase, counts)


def test_racing_drivers_exactly_one_drives(tmp_path: Path) -> None:
    db, world = tmp_path / "store.db", tmp_path
    hid = run_driver(db, world, "start", "INC-8").stdout.strip()
    release = tmp_path / "release"
    env = {**os.environ, "FILEDRIVER_SLOW_PHASE": "branch", "FILEDRIVER_HOLD_UNTIL": str(release)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.engine.filedriver", str(db), str(world), "drive", hid],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]
    # The winner holds the hotfix inside `branch` until released: every loser meets it.
    deadline = time.monotonic() + 120
    while sum(p.poll() is not None for p in procs) < 3:
        assert time.monotonic() < deadline, "the losers did not give up"
        time.sleep(0.05)
    release.touch()
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 4, 4, 4], results
    for code, _out, err in results:
        if code == 4:
            assert "another driver holds this hotfix" in err
            assert ":" in err.split("hotfix:")[1]  # host:pid:id of the holder
    assert effects(world)[f"{hid} branch"] == 1


def _write_lock_free(db: Path) -> bool:
    conn = sqlite3.connect(db, timeout=0.05, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_stopped_driver_loses_its_lease_and_cannot_write(tmp_path: Path) -> None:
    from hotfix_fsm.store import open_store

    db, world = tmp_path / "store.db", tmp_path
    hid = run_driver(db, world, "start", "INC-9").stdout.strip()
    env = {
        **os.environ,
        "FILEDRIVER_SLOW_PHASE": "branch",
        # held inside the phase until it notices it lost its lease (the file never appears)
        "FILEDRIVER_HOLD_UNTIL": str(tmp_path / "never-released"),
        "FILEDRIVER_LEASE_TTL": "1",
    }
    sleeper = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.filedriver", str(db), str(world), "drive", hid],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    store = open_store(db)
    deadline = time.monotonic() + 180
    while not any(e.kind == "intent" for e in store.journal(hid)):  # it is inside the phase
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # Freeze it outside a transaction (a process frozen mid-commit would hold SQLite's
    # write lock until it wakes; that is the busy timeout's job, not this test's).
    while True:
        os.kill(sleeper.pid, signal.SIGSTOP)
        if _write_lock_free(db):
            break
        os.kill(sleeper.pid, signal.SIGCONT)
        time.sleep(0.01)
    try:
        while store.get(hid).lease_live():  # wait until the frozen driver's lease expires
            assert time.monotonic() < deadline
            time.sleep(0.05)
        taken = run_driver(db, world, "drive", hid, env={"FILEDRIVER_LEASE_TTL": "30"})
        assert taken.returncode == 0, taken.stderr
    finally:
        os.kill(sleeper.pid, signal.SIGCONT)
        store.engine.dispose()
    code = sleeper.wait(timeout=180)
    _out, err = sleeper.communicate()
    assert code == 4, err
    assert "lease" in err
    assert effects(world)[f"{hid} branch"] == 1
