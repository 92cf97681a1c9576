"""Figure 4: ``status``, ``list`` and ``resume`` with 100,000 hotfixes / 3,000,000 journal rows
against the same operations on an empty store (only the live hotfixes; see ``scale_store``).

Engine-level operations, through the real ``Store`` and ``Runner``:

* status: ``store.find(id)`` and ``store.journal(id)`` (what ``hotfix status ID`` reads);
* status (no id): ``store.latest_unfinished()`` then the same reads (``hotfix status``);
* list: ``store.list_hotfixes()`` (``hotfix list``: unfinished, newest first, 50);
* resume: ``store.get``, lease acquire, ``store.get``, the first phase decision (the runner's
  in-doubt query for the phase of the state), lease release.

Each sample is the mean of a batch; the big and empty stores alternate round by round. Every
SQL statement is captured and its ``EXPLAIN QUERY PLAN`` on the big store reported; when an
operation misses, candidate fixes are timed inside a rolled-back transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Options, Row, interleave, median, spread
from benchmarks.scale_store import build


def _ops(store: Any, runner: Any, target: str) -> dict[str, Callable[[], object]]:
    from hotfix_fsm.core import machine
    from hotfix_fsm.durable.step import in_doubt

    def status() -> object:
        found = store.find(target)
        return store.journal(found.id)

    def status_latest() -> object:
        latest = store.latest_unfinished()
        found = store.find(latest.id)
        return store.journal(found.id)

    def list_() -> object:
        return store.list_hotfixes()

    def resume() -> object:
        hotfix = store.get(target)
        if not machine.is_known_graph(hotfix.graph_hash):
            raise RuntimeError("unknown graph")
        lease = store.acquire_lease(target, runner.owner, ttl=30)
        try:
            hotfix = store.get(target)
            phase = machine.PHASE_OF_STATE[hotfix.state]
            return in_doubt(store, hotfix.id, phase)
        finally:
            store.release_lease(lease)

    return {
        "status": status,
        "status (no id)": status_latest,
        "list": list_,
        "resume": resume,
    }


def _batch_size(op: Callable[[], object], budget: float) -> int:
    """How many calls make one sample of about ``budget`` seconds (5 to 500)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        op()
        times.append(time.perf_counter() - started)
    return max(5, min(500, int(budget / max(median(times), 1e-6))))


def _open(path: Path) -> tuple[Any, Any, list[tuple[str, Any]]]:
    from sqlalchemy import event

    from hotfix_fsm.config import Config
    from hotfix_fsm.durable.runner import Runner
    from hotfix_fsm.store import open_store

    store = open_store(path)
    captured: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        captured.append((statement, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    runner = Runner(
        store,
        {},
        services_for=lambda h: None,  # type: ignore[arg-type,return-value]
        config_for=lambda h: Config(),
    )
    return store, runner, captured


def _plans(path: Path, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """``EXPLAIN QUERY PLAN`` of each distinct read statement, on the big store."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for statement, params in statements:
            head = statement.lstrip().split(None, 1)[0].upper()
            if statement in seen or head not in ("SELECT", "UPDATE"):
                continue
            seen.add(statement)
            rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
            plan = [str(r[-1]) for r in rows]
            worry = [
                p for p in plan if (p.startswith("SCAN") and "USING" not in p) or "TEMP B-TREE" in p
            ]
            out.append({"sql": " ".join(statement.split()), "plan": plan, "concern": worry})
    finally:
        conn.close()
    return out


def _what_if(path: Path) -> list[dict[str, Any]]:
    """Candidate fixes for the unfinished-hotfix scan, timed and rolled back."""
    from hotfix_fsm.core import machine

    unfinished = [s for s in machine.ALL_STATES if s not in machine.TERMINAL]
    marks = ", ".join("?" * len(unfinished))
    base = "SELECT id, updated_at FROM hotfixes WHERE {where} ORDER BY updated_at DESC LIMIT 50"
    candidates = [
        (
            "as today: state NOT IN (done, cancelled, rolled_back)",
            None,
            base.format(where="state NOT IN (?, ?, ?)"),
            list(machine.TERMINAL),
        ),
        (
            "query change only: state IN (<the unfinished states>), sorts only the matches",
            None,
            base.format(where=f"state IN ({marks})"),
            unfinished,
        ),
        (
            "partial index ON hotfixes (updated_at) WHERE state NOT IN ('done', 'cancelled', "
            "'rolled_back') with the literal NOT IN in the query",
            "CREATE INDEX ix_bench_unfinished ON hotfixes (updated_at) "
            "WHERE state NOT IN ('done', 'cancelled', 'rolled_back')",
            base.format(where="state NOT IN ('done', 'cancelled', 'rolled_back')"),
            [],
        ),
    ]
    out: list[dict[str, Any]] = []
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for label, ddl, sql, params in candidates:
            conn.execute("BEGIN")
            try:
                if ddl:
                    conn.execute(ddl)
                conn.execute(sql, params).fetchall()
                started = time.perf_counter()
                for _ in range(10):
                    found = conn.execute(sql, params).fetchall()
                elapsed = (time.perf_counter() - started) / 10
                plan = [str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
            finally:
                conn.execute("ROLLBACK")
            out.append(
                {"candidate": label, "seconds": round(elapsed, 6), "rows": len(found), "plan": plan}
            )
    finally:
        conn.close()
    return out


def run(opts: Options) -> list[Row]:
    import sys

    meta = build(log=sys.stderr)
    target = str(meta["target"])
    big_store, big_runner, big_sql = _open(meta["big"])
    small_store, small_runner, _ = _open(meta["small"])
    budget = 0.03 if opts.quick else 0.1  # seconds per sample on the slower store
    try:
        big_ops = _ops(big_store, big_runner, target)
        small_ops = _ops(small_store, small_runner, target)
        # Both stores must give the same answers, or the comparison means nothing.
        for name in ("status", "list"):
            a, b = big_ops[name](), small_ops[name]()
            if len(a) != len(b):  # type: ignore[arg-type]
                raise RuntimeError(f"{name}: the big and empty stores disagree")
        big_sql.clear()
        for op in big_ops.values():
            op()
        plans = _plans(meta["big"], list(big_sql))

        def timed(op: Callable[[], object], batch: int) -> Callable[[], float]:
            def sample() -> float:
                started = time.perf_counter()
                for _ in range(batch):
                    op()
                return (time.perf_counter() - started) / batch

            return sample

        rows: list[Row] = []
        for name in big_ops:
            batch = min(_batch_size(small_ops[name], budget), _batch_size(big_ops[name], budget))
            samples = interleave(
                {"big": timed(big_ops[name], batch), "empty": timed(small_ops[name], batch)},
                opts.rounds(7, 25),
                warmup=1,
            )
            rows.append(
                Row(
                    figure="4",
                    name=f"scale: {name}",
                    measured=median(samples["big"]),
                    baseline=median(samples["empty"]),
                    goal="<= 1.2x on an empty store",
                    goal_ratio=1.2,
                    details={
                        "ops_per_sample": batch,
                        "big": spread(samples["big"]),
                        "empty": spread(samples["empty"]),
                    },
                ).judge()
            )
    finally:
        big_store.engine.dispose()
        small_store.engine.dispose()
    built = "reused the cached store" if meta["reused"] else f"built in {meta['built_s']}s"
    rows[0].notes.append(
        f"{meta['hotfixes']:,} hotfixes, {meta['journal_rows']:,} journal rows, "
        f"{meta['live']} unfinished ({built}: {Path(meta['big']).name})"
    )
    rows[0].details["query_plans"] = plans
    for plan in plans:
        if plan["concern"]:
            rows[0].notes.append(f"plan concern: {plan['concern']} for {plan['sql'][:160]}")
    if any(r.verdict == "MISS" and ("list" in r.name or "no id" in r.name) for r in rows):
        fixes = _what_if(meta["big"])
        rows[0].details["what_if"] = fixes
        for fix in fixes:
            rows[0].notes.append(
                f"what-if {fix['candidate']}: {fix['seconds'] * 1e3:.2f} ms on the big store "
                f"({fix['rows']} rows; plan: {'; '.join(fix['plan'])})"
            )
    return rows
