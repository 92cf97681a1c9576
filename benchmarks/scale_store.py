"""Build the stores of figure 4: 100,000 hotfixes with 3,000,000 journal rows, and its empty twin.

The schema comes from ``hotfix_fsm.store.open_store`` (the real migration); rows are then
bulk-loaded through ``sqlite3`` in one transaction (journal off while loading, WAL restored
after). No ``ANALYZE`` is run: a real store never runs one either.

Shape of the history, over three years:

* 99,960 finished hotfixes (94% done, 3% cancelled, 3% rolled back), 30 journal rows each;
* 40 unfinished ones ("live"): 30 scattered through history (failed or paused hotfixes
  nobody aborted) and the 10 most recent, the newest being the target of status and resume.

The "empty" store holds only the 40 live hotfixes and their journals — exactly what
``status``, ``list`` and ``resume`` return or read — so both stores give the same answers
and any difference in time is the cost of history.

Built once into ``benchmarks/.cache/`` (about 1 GB) and reused; the file name carries the
generator version and the schema revision, so a schema change rebuilds it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import CACHE_DIR
from benchmarks.fixtures import happy_journal

GENERATOR_VERSION = 1
HOTFIXES = 100_000
JOURNAL_ROWS = 3_000_000
LIVE_SCATTERED = 30
LIVE_RECENT = 10
ROWS_PER_HOTFIX = JOURNAL_ROWS // HOTFIXES
SPAN = 3 * 365 * 86400.0
FINISHED_STATES = (("done", 0.94), ("cancelled", 0.03), ("rolled_back", 0.03))
LIVE_STATES = ("failed", "awaiting_fix", "awaiting_deploy_approval", "pr_open")

HOTFIX_COLUMNS = (
    "id, issue, description, repo, state, failed_from, paused_reason, paused_gate, error, "
    "context, options, graph_hash, created_at, updated_at, last_seq, lease_owner, "
    "lease_acquired_at, lease_expires_at, fencing_token, finished_at"
)
JOURNAL_COLUMNS = "hotfix_id, seq, at, kind, phase, attempt, key, payload"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def plan(now: float) -> tuple[list[dict[str, Any]], str]:
    """Every hotfix (id, issue, state, times), oldest first; and the target's id."""
    rng = random.Random(20250101)
    start = now - SPAN
    live = set(rng.sample(range(HOTFIXES - LIVE_RECENT), LIVE_SCATTERED))
    live.update(range(HOTFIXES - LIVE_RECENT, HOTFIXES))
    out: list[dict[str, Any]] = []
    for i in range(HOTFIXES):
        updated = start + SPAN * (i + rng.random() * 0.5) / HOTFIXES
        if i >= HOTFIXES - LIVE_RECENT:
            updated = now - 60.0 * (HOTFIXES - i)
        created = updated - rng.uniform(900, 7200)
        issue = f"INC-{i + 1:06d}"
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created))
        if i in live:
            state = "pr_open" if i == HOTFIXES - 1 else rng.choice(LIVE_STATES)
        else:
            r = rng.random()
            state = "done" if r < 0.94 else "cancelled" if r < 0.97 else "rolled_back"
        out.append(
            {
                "id": f"{issue}-{stamp}",
                "issue": issue,
                "state": state,
                "created": created,
                "updated": updated,
                "live": i in live,
            }
        )
    return out, str(out[-1]["id"])


def _journal(h: dict[str, Any], graph: str) -> Iterator[tuple[Any, ...]]:
    rows = list(happy_journal(h["id"], until="done"))[: ROWS_PER_HOTFIX - 1]
    if h["state"] == "pr_open":
        rows = list(happy_journal(h["id"], until="pr_open"))
        rows += [("note", None, 0, None, {"i": i}) for i in range(ROWS_PER_HOTFIX - len(rows))]
        rows = rows[: ROWS_PER_HOTFIX - 1]
    rows.append(("transition", "finish", 0, None, {"to": h["state"], "graph": graph}))
    step = (h["updated"] - h["created"]) / len(rows)
    for n, (kind, phase, attempt, key, payload) in enumerate(rows, start=1):
        yield (
            h["id"],
            n,
            h["created"] + n * step,
            kind,
            phase,
            attempt,
            key,
            _dumps(payload),
        )


def _hotfix_row(h: dict[str, Any], graph: str) -> tuple[Any, ...]:
    failed = h["state"] == "failed"
    paused = h["state"] in ("awaiting_fix", "awaiting_deploy_approval")
    context = {
        "timestamp": h["id"][-15:],
        "branch": f"hotfix/{h['id']}",
        "base_sha": "0" * 40,
        "fix_sha": "1" * 40,
        "pr_number": 17,
    }
    options = {"fix_mode": "cherry-pick", "yes": False, "severity": "critical"}
    return (
        h["id"],
        h["issue"],
        f"Fix incident {h['issue']}",
        "/srv/repos/shop",
        h["state"],
        "gates_passed" if failed else None,
        "waiting for a person" if paused else None,
        "deploy" if h["state"] == "awaiting_deploy_approval" else None,
        "gate tests failed" if failed else None,
        _dumps(context),
        _dumps(options),
        graph,
        h["created"],
        h["updated"],
        ROWS_PER_HOTFIX,
        None,
        None,
        None,
        1,
        # finished_at: the store sets it when a hotfix reaches a finished state
        h["updated"] if h["state"] in dict(FINISHED_STATES) else None,
    )


def _load(path: Path, hotfixes: Sequence[dict[str, Any]], graph: str) -> None:
    from hotfix_fsm.store import open_store

    open_store(path).engine.dispose()  # the real schema, through the real migration
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -400000")
        conn.execute("BEGIN")
        conn.executemany(
            f"INSERT INTO hotfixes ({HOTFIX_COLUMNS}) VALUES ({', '.join('?' * 20)})",
            (_hotfix_row(h, graph) for h in hotfixes),
        )
        conn.executemany(
            f"INSERT INTO journal ({JOURNAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (row for h in hotfixes for row in _journal(h, graph)),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


def build(*, log: Any = sys.stderr) -> dict[str, Any]:
    """The two stores (built if missing) and the target: ``{"big", "small", "target", ...}``."""
    from hotfix_fsm.core import machine
    from hotfix_fsm.store.engine import HEAD_REVISION

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tag = f"v{GENERATOR_VERSION}-{HEAD_REVISION}-{HOTFIXES}-{JOURNAL_ROWS}"
    big = CACHE_DIR / f"scale-{tag}.db"
    small = CACHE_DIR / f"scale-{tag}-empty.db"
    meta_path = CACHE_DIR / f"scale-{tag}.json"
    if big.exists() and small.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
        meta.update(big=big, small=small, built_s=None, reused=True)
        return meta
    now = time.time()
    hotfixes, target = plan(now)
    graph = machine.graph_hash()
    started = time.monotonic()
    for path, chosen in ((big, hotfixes), (small, [h for h in hotfixes if h["live"]])):
        log.write(f"  building {path.name} ({len(chosen):,} hotfixes) ...\n")
        log.flush()
        partial = path.with_suffix(".partial")
        for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            stale.unlink(missing_ok=True)
        _load(partial, chosen, graph)
        partial.replace(path)
    built = round(time.monotonic() - started, 1)
    meta = {
        "target": target,
        "target_issue": target.rsplit("-", 2)[0],
        "hotfixes": HOTFIXES,
        "journal_rows": HOTFIXES * ROWS_PER_HOTFIX,
        "live": LIVE_SCATTERED + LIVE_RECENT,
        "graph_hash": graph,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    meta.update(big=big, small=small, built_s=built, reused=False)
    return meta
