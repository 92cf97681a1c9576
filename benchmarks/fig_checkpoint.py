"""Figure 1: the cost of one durable checkpoint against a bare sqlite3 INSERT + COMMIT.

Measured: ``Store.checkpoint(lease, [Entry(...)], state=...)`` — one fenced ``UPDATE`` of the
hotfix row plus one journal ``INSERT`` in one ``BEGIN IMMEDIATE`` transaction, through
SQLAlchemy, WAL, ``synchronous=FULL``.

Baseline: the plain ``sqlite3`` module inserting a journal-shaped row into a file in the same
directory with the same pragmas (WAL, ``synchronous=FULL``, busy timeout, foreign keys) and
``BEGIN IMMEDIATE`` … ``COMMIT``.

Both files live on a real disk (the harness scratch directory under ``benchmarks/.cache``),
never on tmpfs, so each commit pays the fsync a laptop pays. A second pair, both sides with
``synchronous=OFF``, shows the CPU part of the difference (reported, not judged).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Options, Row, disk_of, interleave, median, spread

HOTFIX_ID = "BENCH-1-20250101-000000"
BARE_SCHEMA = """
CREATE TABLE journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hotfix_id VARCHAR(160) NOT NULL,
    seq BIGINT NOT NULL,
    at FLOAT NOT NULL,
    kind VARCHAR(32) NOT NULL,
    phase VARCHAR(64),
    attempt INTEGER NOT NULL,
    key TEXT,
    payload TEXT NOT NULL
)
"""


def _bare(
    path: Path, synchronous: str = "FULL"
) -> tuple[sqlite3.Connection, Callable[[int], None]]:
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(BARE_SCHEMA)
    seq = [0]

    def once(i: int) -> None:
        seq[0] += 1
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO journal (hotfix_id, seq, at, kind, phase, attempt, key, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                HOTFIX_ID,
                seq[0],
                time.time(),
                "note",
                "bench",
                0,
                None,
                json.dumps({"i": i}, sort_keys=True, separators=(",", ":")),
            ),
        )
        conn.execute("COMMIT")

    return conn, once


def _store(path: Path, synchronous: str = "FULL") -> tuple[Any, Any]:
    """A real store with one hotfix and its lease; ``synchronous`` overrides the pragma."""
    from sqlalchemy import event

    from hotfix_fsm.store import new_owner, open_store

    store = open_store(path)
    if synchronous != "FULL":

        def relax(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA synchronous = {synchronous}")

        event.listen(store.engine, "connect", relax)
        store.engine.dispose()
    store.create(
        hotfix_id=HOTFIX_ID,
        issue="BENCH-1",
        description="checkpoint benchmark",
        repo=str(path.parent),
        graph_hash="bench",
        options={},
    )
    return store, store.acquire_lease(HOTFIX_ID, new_owner(), ttl=600)


def _pair(
    folder: Path, synchronous: str, batch: int
) -> tuple[dict[str, Callable[[], float]], Callable[[], None]]:
    """Batch timers for checkpoint and bare insert with the given ``synchronous``."""
    from hotfix_fsm.store import Entry

    store, lease = _store(folder / f"store-{synchronous}.db", synchronous)
    conn, bare_once = _bare(folder / f"bare-{synchronous}.db", synchronous)

    def checkpoint_batch() -> float:
        started = time.perf_counter()
        for i in range(batch):
            store.checkpoint(lease, [Entry("note", "bench", 0, None, {"i": i})], state="created")
        return (time.perf_counter() - started) / batch

    def bare_batch() -> float:
        started = time.perf_counter()
        for i in range(batch):
            bare_once(i)
        return (time.perf_counter() - started) / batch

    def close() -> None:
        conn.close()
        store.engine.dispose()

    return {"checkpoint": checkpoint_batch, "bare": bare_batch}, close


def run(opts: Options) -> list[Row]:
    folder = opts.work / "fig1"
    folder.mkdir()
    batch = opts.rounds(20, 50)
    durable, close_durable = _pair(folder, "FULL", batch)
    cpu, close_cpu = _pair(folder, "OFF", batch)
    try:
        samples = interleave(durable, opts.rounds(8, 30), warmup=1)
        cpu_samples = interleave(cpu, opts.rounds(8, 20), warmup=1)
    finally:
        close_durable()
        close_cpu()
    disk = disk_of(folder)
    row = Row(
        figure="1",
        name="durable checkpoint (per commit)",
        measured=median(samples["checkpoint"]),
        baseline=median(samples["bare"]),
        goal="<= 1.2x bare sqlite3 INSERT+COMMIT",
        goal_ratio=1.2,
        details={
            "disk": disk,
            "directory": str(folder),
            "ops_per_sample": batch,
            "checkpoint": spread(samples["checkpoint"]),
            "bare_sqlite3": spread(samples["bare"]),
            "pragmas": "journal_mode=WAL, synchronous=FULL, busy_timeout=10000, "
            "foreign_keys=ON, BEGIN IMMEDIATE",
        },
        notes=[f"files on {disk}"],
    ).judge()
    cpu_row = Row(
        figure="1",
        name="checkpoint CPU cost (synchronous=OFF both sides)",
        measured=median(cpu_samples["checkpoint"]),
        baseline=median(cpu_samples["bare"]),
        goal="report (explains 1)",
        verdict="INFO",
        details={
            "checkpoint": spread(cpu_samples["checkpoint"]),
            "bare_sqlite3": spread(cpu_samples["bare"]),
        },
    )
    overhead = row.measured - (row.baseline or 0.0) if row.measured is not None else 0.0
    cpu_overhead = (cpu_row.measured or 0.0) - (cpu_row.baseline or 0.0)
    row.notes.append(
        f"a checkpoint costs {overhead * 1e6:.0f} µs more than the bare commit, of which "
        f"{cpu_overhead * 1e6:.0f} µs is CPU (the rest: its fsync, of the bare insert's 2 WAL "
        "pages but 5 when the journal's B-tree splits a page, and scheduling on a busy machine)"
    )
    return [row, cpu_row]
