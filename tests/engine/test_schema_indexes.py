"""The indexes the migrations create are the ones the models declare, on both backends, and a
checkpoint's UPDATE touches as few of them as the queries allow."""

from __future__ import annotations

from sqlalchemy import inspect

from hotfix_fsm.store import open_store
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


def test_no_index_but_the_recency_ones_holds_what_a_checkpoint_changes() -> None:
    """Every checkpoint sets ``state`` and ``updated_at``; each index holding one costs each
    commit another WAL page (migration 0003 dropped two)."""
    changed = {"state", "updated_at", "last_seq", "lease_expires_at"}
    hotfixes = with_indexes().tables["hotfixes"]
    touching = sorted(
        i.name
        for i in hotfixes.indexes
        if changed & {c.name for c in i.columns} or "state" in str(i.dialect_options)
    )
    assert touching == ["ix_hotfixes_unfinished_updated", "ix_hotfixes_updated"]
