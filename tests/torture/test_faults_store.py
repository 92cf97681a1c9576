"""Store faults through the command: locked, read-only, disk full (mid-drive), corrupted,
schema newer than the code. Clear errors (exit 2 or 1), never a traceback, nothing committed
half-way, nothing overwritten.

A paused hotfix (waiting for the deploy approval) is made once per test; each scenario works
on its own consistent copy of that store (``sqlite3`` backup API).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import (
    FIGURES,
    ForkPool,
    Result,
    assert_no_traceback,
    copy_store,
    parallel,
    wait_for,
)
from tests.torture.invariants import check_trial, duplicates
from tests.torture.sandbox import ISSUE, Sandbox, monitor_rounds

LOCKER = (
    "import sqlite3, sys, time\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "c.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2])) if len(sys.argv) > 2 else sys.stdin.read()\n"
    "c.execute('COMMIT')\n"
)
# A driver-like locker: it takes the hotfix's lease in its own name, then holds the lock.
DRIVER_LOCKER = (
    "import os, socket, sqlite3, sys, time\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "owner = f'{socket.gethostname()}:{os.getpid()}:locker'\n"
    "c.execute('UPDATE hotfixes SET lease_owner = ?, lease_acquired_at = ?, "
    "lease_expires_at = ?', (owner, time.time(), time.time() + 600))\n"
    "c.execute('BEGIN IMMEDIATE')\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
    "c.execute('COMMIT')\n"
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(db: Path) -> tuple[int, int]:
    """(hotfixes, journal rows), read without the store code."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return (
            conn.execute("SELECT count(*) FROM hotfixes").fetchone()[0],
            conn.execute("SELECT count(*) FROM journal").fetchone()[0],
        )


def clear_store_error(result: Result, *words: str) -> None:
    assert_no_traceback(result)
    assert result.code in (ExitCode.USAGE, ExitCode.FAILED), str(result)
    text = (result.out + result.err).lower()
    for word in words:
        assert word in text, f"{word!r} not in:\n{result}"
    assert "what to do" in text, str(result)


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A sandbox with a hotfix paused at the deploy approval (exit 3), shared by the module:
    the tests work on copies of its store; the disk-full test (last) drives it to the end."""
    with Sandbox(tmp_path_factory.mktemp("paused")) as sb:
        result = sb.cli(*sb.start_args()[:-1])  # without --yes
        assert result.code == ExitCode.PAUSED, str(result)
        yield sb


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs (root only); skips the test precisely when it cannot be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root/CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_view(source: Path, path: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``path`` (a read-only bind mount; root only)."""
    path.mkdir(parents=True, exist_ok=True)

    def mount(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)

    bound = mount("--bind", str(source), str(path))
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount (needs root/CAP_SYS_ADMIN): {bound.stderr.strip()}")
    try:
        ro = mount("-o", "remount,bind,ro", str(path))
        if ro.returncode != 0:
            pytest.skip(f"cannot make the bind mount read-only: {ro.stderr.strip()}")
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def test_locked_by_another_process(paused: Sandbox, tmp_path: Path) -> None:
    """A writer holding the lock past the busy timeout: a clear 'locked' error and no write;
    a lock held briefly is waited for and the command succeeds."""
    sb = paused
    locked: list[float | None] = []

    def scenario(hold: float | None) -> None:
        db = copy_store(sb.db, tmp_path / f"locked-{hold}" / "hotfix.db")
        before = rows(db)
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db), *([str(hold)] if hold else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert locker.stdout is not None
            assert locker.stdout.readline().strip() == "locked"
            locked.append(hold)
            result = sb.cli("--db", str(db), "approve", ISSUE, "deploy", timeout=60)
        finally:
            if locker.stdin is not None:
                locker.stdin.close()
            locker.wait(timeout=30)
            if locker.stdout is not None:
                locker.stdout.close()
        if hold is None:
            clear_store_error(result, "locked")
            assert rows(db) == before
        else:
            assert result.code == ExitCode.OK, str(result)
            assert rows(db)[1] == before[1] + 1

    parallel(scenario, [None, 1.0], workers=2)
    FIGURES.add("fault", scenario="store:locked", injected=len(locked), duplicated=duplicates(sb))


def test_read_only_store(paused: Sandbox, tmp_path: Path) -> None:
    """The store on a read-only file system: reads work or fail clearly, writes fail clearly,
    the file is untouched."""
    sb = paused
    source = copy_store(sb.db, tmp_path / "rw" / "hotfix.db")
    with read_only_view(source.parent, tmp_path / "ro") as view:
        db = view / "hotfix.db"
        before = digest(db)
        status = sb.cli("--db", str(db), "status", ISSUE, "--json")
        assert_no_traceback(status)
        if status.code != ExitCode.OK:
            clear_store_error(status)
        approve = sb.cli("--db", str(db), "approve", ISSUE, "deploy")
        clear_store_error(approve)
        assert "read" in (approve.out + approve.err).lower(), str(approve)
        assert digest(db) == before
    # The commands the read-only store refused (reads may work).
    refused = sum(1 for r in (status, approve) if r.code != ExitCode.OK)
    FIGURES.add("fault", scenario="store:read-only", injected=refused, duplicated=duplicates(sb))


def _corrupt_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:16] = b"NOT A SQLITE DB!"
    db.write_bytes(bytes(data))


def _corrupt_pages(db: Path) -> None:
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(page, len(data), page * 2):
        data[start : start + 64] = os.urandom(64)
    db.write_bytes(bytes(data))


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


def _future_schema(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        conn.commit()


DAMAGE: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "garbage-header": (_corrupt_header, ("store", "damaged")),
    "garbage-pages": (_corrupt_pages, ("store", "damaged")),
    "truncated": (_truncate, ("store", "damaged")),
    "schema-newer": (_future_schema, ("newer",)),
}


def test_read_only_store_error_names_the_cause(paused: Sandbox, tmp_path: Path) -> None:
    source = copy_store(paused.db, tmp_path / "rw" / "hotfix.db")
    with read_only_view(source.parent, tmp_path / "ro") as view:
        result = paused.cli("--db", str(view / "hotfix.db"), "approve", ISSUE, "deploy")
    clear_store_error(result)
    assert "read-only" in (result.out + result.err).lower(), str(result)
    assert str(view / "hotfix.db") in result.err, str(result)
    assert "writable" in result.err, str(result)


def test_locked_store_names_the_driver_holding_it(paused: Sandbox, tmp_path: Path) -> None:
    """A process that drives the hotfix (its lease) and holds the write lock past the busy
    timeout: the error names that process and the hotfix, and how to stop it."""
    hotfix = paused.hotfix()
    assert hotfix is not None
    db = copy_store(paused.db, tmp_path / "driven" / "hotfix.db")
    locker = subprocess.Popen(
        [sys.executable, "-c", DRIVER_LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline().strip() == "locked"
        before = rows(db)
        result = paused.cli("--db", str(db), "approve", ISSUE, "deploy", timeout=60)
    finally:
        if locker.stdin is not None:
            locker.stdin.close()
        locker.wait(timeout=30)
        if locker.stdout is not None:
            locker.stdout.close()
    clear_store_error(result, "locked", str(locker.pid), hotfix.id.lower(), str(db).lower())
    assert rows(db) == before
    FIGURES.add("fault", scenario="store:locked-by-driver", injected=1, duplicated=0)


def test_full_disk_error_names_the_cause(paused: Sandbox, tmp_path: Path) -> None:
    """The file system holding the store is full (SQLite only says "disk I/O error"): the
    error says the disk is full, where, and to free space; nothing is written."""
    size = paused.db.stat().st_size
    with tmpfs(tmp_path / "small", f"{size // 1024 + 1024}k") as mount:
        db = copy_store(paused.db, mount / "hotfix.db")
        before = rows(db)
        filler = mount / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        result = paused.cli("--db", str(db), "approve", ISSUE, "deploy")
        filler.unlink()
        clear_store_error(result, "disk", "full", "free space", str(mount).lower())
        assert rows(db) == before
    FIGURES.add("fault", scenario="store:disk-full-at-open", injected=1, duplicated=0)


def test_damaged_store_is_refused_and_untouched(
    paused: Sandbox, tmp_path: Path, forks: ForkPool
) -> None:
    """Corrupted (header, pages, truncated) or newer-schema stores: every command gives a
    clear error, and the file's bytes are exactly as they were."""
    sb = paused
    lock = threading.Lock()
    seen: list[str] = []

    def scenario(name: str) -> None:
        damage, words = DAMAGE[name]
        db = copy_store(sb.db, tmp_path / name / "hotfix.db")
        damage(db)
        before = digest(db)
        for args in (
            ("status", ISSUE),
            ("list", "--all"),
            ("resume", ISSUE),
            ("approve", ISSUE, "deploy"),
        ):
            result = sb.quick(forks, "--db", str(db), *args)
            clear_store_error(result, *words)
            assert digest(db) == before, f"{name}: `{args[0]}` changed the file"
            with lock:
                seen.append(f"{name}:{args[0]}")

    parallel(scenario, list(DAMAGE), workers=4)
    FIGURES.add("fault", scenario="store:damaged", injected=len(seen), duplicated=duplicates(sb))


def test_store_path_is_not_a_database(tmp_path: Path, paused: Sandbox, forks: ForkPool) -> None:
    """``--db`` naming a directory, a text file or an unwritable place: a clear error."""
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes, not a database\n" * 50)
    before = digest(text)
    refused = 0
    for target, words in (
        (str(tmp_path), ("is a directory",)),
        (str(text), ("not a hotfix store",)),
        ("/proc/hotfix.db", ("cannot be created",)),
    ):
        result = paused.quick(forks, "--db", target, "list")
        clear_store_error(result, target.lower(), *words)
        refused += 1
    assert digest(text) == before
    FIGURES.add(
        "fault", scenario="store:not-a-database", injected=refused, duplicated=duplicates(paused)
    )


def test_two_threads_open_new_stores_at_once(tmp_path: Path) -> None:
    from hotfix_fsm.store import open_store

    errors: list[str] = []

    def open_one(i: int) -> None:
        try:
            open_store(tmp_path / f"s{i}.db").engine.dispose()
        except Exception as exc:
            errors.append(repr(exc))

    for _ in range(3):
        threads = [threading.Thread(target=open_one, args=(i + 4 * _,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


def test_disk_full_mid_drive(paused: Sandbox, tmp_path: Path) -> None:
    """The store's disk fills while the hotfix is being driven (in the monitoring window):
    the driver stops with a clear error, the journal stays gapless; once space is freed,
    resume finishes the hotfix with nothing done twice."""
    sb = paused
    with tmpfs(tmp_path / "full", "3m") as mount:
        db = copy_store(sb.db, mount / "hotfix.db")
        sb.env["HOTFIX_FSM_DB"] = str(db)
        sb.db = db
        sb.configure({"monitor": {"duration": 3.0, "interval": 0.2}})
        approved = sb.cli("approve", ISSUE, "deploy")
        assert approved.code == ExitCode.OK, str(approved)
        proc = sb.spawn("resume", ISSUE, "--reload-config")  # the longer window, explicitly
        wait_for(lambda: monitor_rounds(sb) >= 1 or not proc.running(), "the monitoring window")
        filler = mount / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                os.fsync(fh.fileno())
        stopped = proc.finish()
        clear_store_error(stopped, "full")
        full = int("full" in (stopped.out + stopped.err).lower())
        hotfix = sb.hotfix()
        assert hotfix is not None
        assert hotfix.state not in ("done", "merged")
        filler.unlink()
        resumed = sb.cli(*sb.resume_args())
        FIGURES.add("fault", scenario="store:disk-full", injected=full, duplicated=duplicates(sb))
        assert resumed.code == ExitCode.OK, str(resumed)
        assert check_trial(sb, None)["state"] == "done"
