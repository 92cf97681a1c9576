"""The store's change signal on PostgreSQL: ``pg_notify`` in the writing transaction.

Every write a watcher must see (a hotfix created, journal rows appended, a lease taken or
given back) calls ``announce`` on its own connection, inside its transaction. PostgreSQL
delivers a notification only when that transaction commits, and drops it when it rolls
back, so a listener hears exactly the committed changes, from every process and machine
that writes to the database; notifications with the same payload in one transaction are
folded into one. The payload is the hotfix id. On SQLite nothing is sent: readers watch
``PRAGMA data_version`` instead.

Lease renewals are not announced: a heartbeat every few seconds would wake every watcher
for a change no page shows (the page shows who holds the lease, not its expiry to the
second).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

CHANNEL = "hotfix_fsm_changes"
_NOTIFY = text("SELECT pg_notify(:channel, :hotfix_id)")


def announce(conn: Any, hotfix_id: str) -> None:
    """Notify ``CHANNEL`` with ``hotfix_id`` when ``conn``'s transaction commits (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL, "hotfix_id": hotfix_id})


__all__ = ["CHANNEL", "announce"]
