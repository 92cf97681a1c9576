"""The durable store: models, engine setup with migration on open, fenced journal writes."""

from __future__ import annotations

import os

from hotfix_fsm.store.engine import open_engine, resolve_url
from hotfix_fsm.store.records import Entry, Hotfix, JournalEntry, Lease, new_owner, to_json
from hotfix_fsm.store.repository import Store


def open_store(url: str | os.PathLike[str] | None = None) -> Store:
    """Open the store at ``url`` (or ``HOTFIX_FSM_DB``, or the XDG default)."""
    return Store(open_engine(url))


__all__ = [
    "Entry",
    "Hotfix",
    "JournalEntry",
    "Lease",
    "Store",
    "new_owner",
    "open_store",
    "resolve_url",
    "to_json",
]
