"""The indexes the migrations create are the ones the models declare, on both backends, and a
checkpoint writes no index page."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from hotfix_fsm.store import Entry, open_store
from hotfix_fsm.store.models import with_indexes


def test_migrated_indexes_are_the_declared_ones(store_url: str) -> None:
    store = open_store(store_url)
    try:
        found = inspect(store.engine)
        for table in with_indexes().sorted_tables:
            declared = {i.name: [c.name for c in i.columns] for i in table.indexes}
            made = {
                i["name"]: list(i["column_names"])
                for i in found.get_indexes(table.name)
                if not i.get("duplicates_constraint")  # PostgreSQL's index of a UNIQUE
            }
            assert made == declared, table.name
    finally:
        store.engine.dispose()


def test_a_checkpoint_writes_two_pages_its_hotfix_row_and_its_journal_row(
    tmp_path: Path,
) -> None:
    """No index holds a column a checkpoint sets, nor reads one in its WHERE, so SQLite
    writes the hotfix row's page and the journal row's page to the WAL, nothing else
    (migration 0004; 6 pages before it, 8 before 0003)."""
    db = tmp_path / "s.db"
    store = open_store(db)
    store.create(
        hotfix_id="INC-1-1", issue="INC-1", description="d", repo="/r", graph_hash="g", options={}
    )
    lease = store.acquire_lease("INC-1-1", "me", ttl=60)
    wal = Path(f"{db}-wal")
    frame = 24 + 4096  # the frame header and the page (SQLite's default page size)
    states = ["branched", "branched", "awaiting_fix", "awaiting_fix"]
    written = []
    for n, state in enumerate(states):
        before = wal.stat().st_size
        store.checkpoint(lease, [Entry("note", "branch", payload={"n": n})], state=state)
        written.append((wal.stat().st_size - before) / frame)
    store.engine.dispose()
    assert written == [2, 2, 2, 2]
