"""The dashboard's change signal: one thread following the store, waking every event stream.

On PostgreSQL, ``LISTEN`` on the channel every writing transaction of the store notifies
(``store.notify``; ``dashboard.listen``); otherwise, or when that fails, a fingerprint of the
hotfix rows is polled. On SQLite, ``PRAGMA data_version`` on a read-only connection of its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.dashboard.listen import PgListener, listener_for
from hotfix_fsm.log import get_logger

log = get_logger("hotfix_fsm.dashboard")

MIN_INTERVAL = 0.2
RELISTEN = 30.0  # seconds between attempts to LISTEN again after it failed
SQLITE_SIGNAL = "sqlite data_version"
LISTEN_SIGNAL = "postgresql listen/notify"
POLL_SIGNAL = "row fingerprint"


def _sqlite_connection(store: Any) -> sqlite3.Connection | None:
    """A read-only connection of our own to the store's SQLite file (None for others)."""
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return sqlite3.connect(
        f"file:{Path(url.database).resolve()}?mode=ro", uri=True, check_same_thread=False
    )


def _sqlite_probe(conn: sqlite3.Connection) -> Callable[[], Hashable]:
    """``PRAGMA data_version``: it changes whenever another connection commits."""

    def probe() -> Hashable:
        row = conn.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    return probe


def _fingerprint_probe(store: Any) -> Callable[[], Hashable]:
    """What a page shows changes only with these columns (any store)."""

    def probe() -> Hashable:
        return tuple(
            (h.id, h.last_seq, h.updated_at, h.lease_owner, h.lease_expires_at)
            for h in store.list_hotfixes(include_finished=True, limit=100)
        )

    return probe


class Watcher:
    """One thread following the store's change signal; clients wait on its version.

    PostgreSQL: ``LISTEN`` on the channel the store notifies in every writing transaction
    (``dashboard.listen``); a burst of commits is one change, and changes are announced at
    most once per ``interval``. If ``LISTEN`` is unavailable (another driver, a pooler
    that drops notifications, a lost connection) the watcher polls the row fingerprint at
    the same bounded rate and tries to listen again every ``RELISTEN`` seconds. SQLite:
    ``PRAGMA data_version``, polled once per ``interval``.
    """

    def __init__(self, store: Any, *, interval: float = 1.0) -> None:
        self.interval = max(MIN_INTERVAL, interval)
        self.version = 0
        self.polls = 0  # looks at a polled signal
        self.notifications = 0  # notifications heard on PostgreSQL
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._store = store
        self._listener: PgListener | None = None
        self.relisten = RELISTEN
        self._deaf_since = 0.0  # when LISTEN last failed (monotonic)
        self._listens = store.engine.dialect.name == "postgresql"
        self._conn = _sqlite_connection(store)
        if self._conn is not None:
            self._probe, self.signal = _sqlite_probe(self._conn), SQLITE_SIGNAL
        else:
            self._probe, self.signal = _fingerprint_probe(store), POLL_SIGNAL
        self._thread = threading.Thread(target=self._run, name="dashboard-watch", daemon=True)
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` (from the watcher's thread) on every change and on stop."""
        self._subscribers.append(wake)

    def _wake(self) -> None:
        for wake in list(self._subscribers):
            with contextlib.suppress(Exception):  # a loop already closed: nobody to wake
                wake()

    def start(self) -> None:
        if self._listens:
            self._listen()  # before the first page is served: no change is missed after it
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._wake()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        if self._thread.is_alive():
            return
        if self._conn is not None:
            self._conn.close()
        if self._listener is not None:
            self._listener.close()

    @property
    def listener_pid(self) -> int | None:
        """The PostgreSQL backend this watcher listens through (None while it polls)."""
        listener = self._listener
        return listener.backend_pid if listener is not None else None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _listen(self) -> bool:
        """Start listening; False (and the fingerprint is polled) when that cannot be done."""
        try:
            self._listener = listener_for(self._store.engine)
        except Exception as exc:
            log.warning(
                "dashboard_listen_unavailable",
                error=redact(str(exc))[:200],
                fallback=f"polling the row fingerprint every {self.interval:g}s",
            )
            self._listener = None
        self.signal = LISTEN_SIGNAL if self._listener is not None else POLL_SIGNAL
        return self._listener is not None

    def _changed(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()
        self._wake()

    def _run(self) -> None:
        last: Hashable = None
        if self._listener is None:
            with contextlib.suppress(Exception):
                last = self._probe()
        self._deaf_since = time.monotonic()
        while not self._stop.is_set():
            if self._listener is not None:
                self._hear()
                continue
            if self._listens and time.monotonic() >= self._deaf_since + self.relisten:
                self._deaf_since = time.monotonic()
                if self._listen():
                    self._changed()  # what changed while deaf is shown now
                    continue
            if self._stop.wait(self.interval):
                return
            try:
                now = self._probe()
            except Exception as exc:  # a busy or restarting store: try again next time
                log.warning("dashboard_probe_failed", error=redact(str(exc))[:200])
                continue
            self.polls += 1
            if now != last:
                last = now
                self._changed()

    def _hear(self) -> None:
        """Wait for notifications (a second at most, so a stop is noticed), then announce
        them as one change and hold still for ``interval``: a burst of commits is one
        change, and clients never re-read the store faster than that."""
        listener = self._listener
        if listener is None:
            return
        try:
            heard = listener.wait(timeout=1.0)
        except Exception as exc:  # the connection dropped: poll until it can listen again
            log.warning(
                "dashboard_listen_lost",
                error=redact(str(exc))[:200],
                fallback=f"polling the row fingerprint every {self.interval:g}s",
            )
            listener.close()
            self._listener = None
            self.signal = POLL_SIGNAL
            self._deaf_since = time.monotonic()
            self._changed()  # a change may have been lost with the connection
            return
        if heard:
            self.notifications += heard
            self._changed()
            self._stop.wait(self.interval)

    def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` (or a stop)."""
        with self._cond:
            self._cond.wait_for(lambda: self.version != seen or self.stopped, timeout)
            return self.version


__all__ = ["LISTEN_SIGNAL", "MIN_INTERVAL", "POLL_SIGNAL", "RELISTEN", "SQLITE_SIGNAL", "Watcher"]
