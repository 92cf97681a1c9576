"""The dashboard's ear on PostgreSQL: ``LISTEN`` on the channel the store notifies.

The store calls ``pg_notify`` inside every transaction that writes what a page shows
(``store.notify``), so a commit on any machine reaches this connection at once, without
a query. What the listener needs, and what silently yields nothing without it:

* a connection of its own, in **autocommit**: a ``LISTEN`` issued inside a transaction
  only takes effect when that transaction commits, and a listener left "idle in
  transaction" never hears anything;
* to **wait on the socket** (``Connection.notifies`` with a timeout): psycopg reads a
  notification only while the connection is used, so a listener that sleeps between
  queries sees nothing until its next round trip;
* the **same database** as the writers: the connection is the store engine's own (same
  URL, credentials and connect arguments), detached from its pool.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Engine

from hotfix_fsm.store.notify import CHANNEL


class PgListener:
    """A detached psycopg connection listening on ``CHANNEL``; one per watcher thread."""

    def __init__(self, engine: Engine) -> None:
        fairy = engine.raw_connection()
        conn: Any = fairy.driver_connection
        try:
            fairy.detach()  # ours until close(): never handed back to the pool mid-LISTEN
            conn.rollback()  # the pool's ping may have opened a transaction
            conn.autocommit = True
            conn.execute(f'LISTEN "{CHANNEL}"')
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise
        self._fairy = fairy  # held: once detached, closing it closes the connection
        self._conn = conn

    @property
    def backend_pid(self) -> int:
        """The server process serving this connection (``pg_stat_activity.pid``)."""
        return int(self._conn.info.backend_pid)

    def wait(self, timeout: float) -> int:
        """Notifications received within ``timeout`` seconds (returns at the first batch)."""
        return sum(1 for _ in self._conn.notifies(timeout=timeout, stop_after=1))

    def drain(self) -> int:
        """Notifications already received or waiting on the socket, without blocking."""
        return sum(1 for _ in self._conn.notifies(timeout=0))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._fairy.close()
        with contextlib.suppress(Exception):
            self._conn.close()


def listener_for(engine: Engine) -> PgListener | None:
    """A listener when the store is PostgreSQL through psycopg, else None."""
    if engine.dialect.name != "postgresql" or engine.dialect.driver != "psycopg":
        return None
    return PgListener(engine)


__all__ = ["PgListener", "listener_for"]
