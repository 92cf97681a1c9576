"""The store: pragmas, migrations, fencing, and clear errors when the file misbehaves."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from hotfix_fsm.errors import LeaseHeld, LeaseLost, NotFound, SchemaTooNew, StoreError
from hotfix_fsm.store import Entry, open_store
from hotfix_fsm.store.engine import KNOWN_REVISIONS, migrations_dir, open_engine


def new_hotfix(store, hid: str = "INC-1-1", issue: str = "INC-1"):  # type: ignore[no-untyped-def]
    return store.create(
        hotfix_id=hid, issue=issue, description="d", repo="/r", graph_hash="g", options={}
    )


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "s.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()


def test_known_revisions_match_the_migration_scripts() -> None:
    scripts = sorted(p.stem for p in (migrations_dir() / "versions").glob("[0-9]*.py"))
    assert sorted(KNOWN_REVISIONS) == scripts


def test_upgrade_from_the_first_revision_keeps_data(store_url: str) -> None:
    from hotfix_fsm.store.engine import make_engine, upgrade

    engine = make_engine(store_url)
    upgrade(engine, KNOWN_REVISIONS[-1])  # the first revision
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hotfixes (id, issue, description, repo, state, context, options, "
                "graph_hash, created_at, updated_at, last_seq, fencing_token) VALUES "
                "('OLD-1', 'OLD', 'd', '/r', 'created', '{}', '{}', 'g', 0, 0, 0, 0)"
            )
        )
    engine.dispose()
    store = open_store(store_url)  # upgrades to head on open
    assert store.get("OLD-1").state == "created"
    store.engine.dispose()


def test_schema_newer_than_the_code_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    open_store(db).engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    before = db.read_bytes()
    with pytest.raises(SchemaTooNew, match="newer than this hotfix_fsm knows") as info:
        open_store(db)
    assert "upgrade hotfix_fsm" in str(info.value)
    assert db.read_bytes() == before


def test_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    db.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="could not read the hotfix store") as info:
        open_store(db)
    assert "hotfix adopt" in str(info.value)
    assert db.read_bytes() == b"this is not a database at all" * 100


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_store_gives_a_clear_error(tmp_path: Path) -> None:  # pragma: no cover
    db = tmp_path / "s.db"
    store = open_store(db)
    new_hotfix(store)
    store.engine.dispose()
    db.chmod(0o444)
    with pytest.raises(StoreError, match="read-only"):
        new_hotfix(open_store(db), "INC-2-1", "INC-2")


def test_locked_store_gives_a_clear_error(tmp_path: Path) -> None:
    from hotfix_fsm.store import engine as store_engine

    db = tmp_path / "s.db"
    store = open_store(db)
    new_hotfix(store)
    locker = sqlite3.connect(db, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    old = store_engine.BUSY_TIMEOUT_MS
    store_engine.BUSY_TIMEOUT_MS = 100
    try:
        impatient = open_store(db)
        with pytest.raises(StoreError, match="locked") as info:
            impatient.append("INC-1-1", [Entry("note")])
        assert "another process holds the database lock" in str(info.value)
        impatient.engine.dispose()
    finally:
        store_engine.BUSY_TIMEOUT_MS = old
        locker.execute("ROLLBACK")
        locker.close()
    assert [e.seq for e in store.journal("INC-1-1")] == [1]  # nothing half-written
    store.engine.dispose()


def test_disk_full_leaves_nothing_half_written(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(db)
    new_hotfix(store)
    lease = store.acquire_lease("INC-1-1", "me", ttl=60)
    store.checkpoint(lease, [Entry("note")])  # the store now keeps a connection for these
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    # A page limit stands in for a full disk: the big write cannot fit.
    from sqlalchemy import event

    def limit(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
        dbapi_conn.execute(f"PRAGMA max_page_count = {int(pages) + 2}")

    store.engine.dispose()  # closes the kept connection too: the next one gets the limit
    event.listen(store.engine, "connect", limit)
    with pytest.raises(StoreError, match="full"):
        store.checkpoint(lease, [Entry("note", payload={"blob": "x" * 200_000})], state="x")
    hotfix = store.get("INC-1-1")
    assert hotfix.state == "created"
    assert hotfix.last_seq == 2
    assert [e.seq for e in store.journal("INC-1-1")] == [1, 2]
    assert store.checkpoint(lease, [Entry("note")]) == 3  # a failed checkpoint is no lasting harm
    store.engine.dispose()


def test_fencing_and_gapless_sequence(store_url: str) -> None:
    store = open_store(store_url)
    new_hotfix(store)
    a = store.acquire_lease("INC-1-1", "a", ttl=60)
    with pytest.raises(LeaseHeld, match="another driver holds this hotfix: a"):
        store.acquire_lease("INC-1-1", "b", ttl=60)
    store.checkpoint(a, [Entry("intent", "branch"), Entry("done", "branch")], state="branched")
    b = store.acquire_lease("INC-1-1", "b", ttl=60, take_over=True)
    assert b.token == a.token + 1
    with pytest.raises(LeaseLost):
        store.checkpoint(a, [Entry("note")], state="pushed")
    store.append("INC-1-1", [Entry("approval", payload={"gate": "deploy"})])
    store.checkpoint(b, [Entry("note")])
    assert [e.seq for e in store.journal("INC-1-1")] == [1, 2, 3, 4, 5]
    assert store.get("INC-1-1").state == "branched"
    with pytest.raises(NotFound):
        store.get("nope")
    store.engine.dispose()


def test_find_by_id_prefix_and_issue(store_url: str) -> None:
    store = open_store(store_url)
    new_hotfix(store, "INC-1-20260101-000000", "INC-1")
    new_hotfix(store, "INC-10-20260101-000000", "INC-10")
    assert store.find("INC-10").id == "INC-10-20260101-000000"  # issue id wins
    assert store.find("INC-1-2026").id == "INC-1-20260101-000000"
    with pytest.raises(NotFound, match="more than one"):
        store.find("INC-")
    with pytest.raises(NotFound):
        store.find("%")
    store.engine.dispose()


def test_lease_of_a_dead_local_process_is_reclaimed(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    store = open_store(tmp_path / "s.db")
    new_hotfix(store)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    store.acquire_lease("INC-1-1", f"{socket.gethostname()}:{gone.stdout.strip()}:dead", ttl=60)
    lease = store.acquire_lease("INC-1-1", "me", ttl=60)  # no take-over needed
    assert lease.token == 2
    # A live holder elsewhere is still refused.
    store.acquire_lease("INC-1-1", f"{socket.gethostname()}:1:init", ttl=60, take_over=True)
    with pytest.raises(LeaseHeld, match=":1:init"):
        store.acquire_lease("INC-1-1", "me", ttl=60)
    store.engine.dispose()


FROZEN_HOLDER = """
import os, signal, sys
from sqlalchemy import text
from hotfix_fsm.store.engine import open_engine
engine = open_engine(sys.argv[1])
conn = engine.connect()
conn.begin()
conn.execute(text("UPDATE hotfixes SET lease_owner = 'frozen' WHERE id = 'INC-1-1'"))
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)  # frozen inside the transaction, holding the row
"""


@pytest.mark.postgres
def test_a_driver_frozen_inside_a_transaction_does_not_hold_the_hotfix_forever(
    store_url: str,
) -> None:
    """PostgreSQL ends a store session left idle inside a transaction (a process frozen by
    SIGSTOP while it held the hotfix row), so the driver that takes over is not blocked."""
    import subprocess
    import sys
    import time

    from hotfix_fsm.store.engine import IDLE_IN_TRANSACTION

    if not store_url.startswith("postgresql"):
        pytest.skip("a frozen SQLite writer holds the file's lock: the store says who holds it")
    store = open_store(store_url)
    new_hotfix(store)
    engine = open_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == (
            IDLE_IN_TRANSACTION
        )
    holder = subprocess.Popen(
        [sys.executable, "-c", FROZEN_HOLDER, store_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with engine.begin() as conn:  # blocks on the frozen holder's row lock until freed
            conn.execute(text("UPDATE hotfixes SET lease_owner = 'taker' WHERE id = 'INC-1-1'"))
        waited = time.monotonic() - started
        with engine.connect() as conn:
            owner = conn.execute(text("SELECT lease_owner FROM hotfixes")).scalar()
        assert owner == "taker"  # the frozen transaction was rolled back, not committed
        assert waited > 1, "the row was not really locked by the frozen process"
    finally:
        holder.kill()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()
        engine.dispose()
        store.engine.dispose()


def test_a_forked_child_checkpoints_on_a_connection_of_its_own(tmp_path: Path) -> None:
    """SQLite connections must not cross fork(): the child opens its own, and the parent's
    keeps working after the child wrote and exited."""
    from hotfix_fsm.store import new_owner

    store = open_store(tmp_path / "s.db")
    new_hotfix(store)
    lease = store.acquire_lease("INC-1-1", new_owner(), ttl=600)
    store.checkpoint(lease, [Entry("note", payload={"by": "parent"})])
    parent_conn = store._kept_connection()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe and exits
        code = 1
        try:
            store.checkpoint(lease, [Entry("note", payload={"by": "child"})])
            same = store._kept_connection() is parent_conn
            os.write(write_end, b"same" if same else b"own")
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    told = os.read(read_end, 16)
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert told == b"own"
    store.checkpoint(lease, [Entry("note", payload={"by": "parent again"})])
    assert store._kept_connection() is parent_conn
    kinds = [e.payload.get("by") for e in store.journal("INC-1-1") if e.kind == "note"]
    assert kinds == ["parent", "child", "parent again"]
    store.engine.dispose()
