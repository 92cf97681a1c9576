"""The dashboard's change signal on real stores: a commit from another engine or another
process wakes the event stream; on PostgreSQL it is heard (LISTEN/NOTIFY), not polled, a
burst is announced at a bounded rate, and a lost listening connection falls back to polling
and listens again."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.store import Entry, open_store
from tests.dashboard.conftest import HOTFIX_ID, Served

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 120.0
# Appends one note to the hotfix through the journal writer, from a process of its own.
WRITE_FROM_ELSEWHERE = """
import sys
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.store import Entry, open_store
store = open_store(sys.argv[1])
JournalWriter(store).write(store.get(sys.argv[2]), [Entry("note", None, 0, None, {"from": "pid"})])
store.engine.dispose()
"""


class Stream:
    """The dashboard's /events, read on a thread: the change events received so far."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        self._conn.request("GET", "/events")
        self._resp = self._conn.getresponse()
        assert self._resp.status == 200
        assert self._resp.readline().startswith(b"retry:")
        self.changes = 0
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while line := self._resp.readline():
                if line.strip() == b"event: change":
                    with self._cond:
                        self.changes += 1
                        self._cond.notify_all()
        except (OSError, http.client.HTTPException):  # the stream cut by close(): a chunk unread
            return

    def wait_for(self, count: int) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.changes >= count, DEADLINE)
        assert ok, f"no change event after {DEADLINE:.0f}s ({self.changes} of {count})"

    def close(self) -> None:
        # The reader sees the end of a chunked stream, then the connection is closed under it
        # no more (closing it while a thread reads a chunk breaks http.client's reader).
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=DEADLINE)
        self._conn.close()


@pytest.fixture
def stream(served: Served) -> Iterator[Stream]:
    s = Stream(served.url)
    try:
        yield s
    finally:
        s.close()


def _is_postgres(served: Served) -> bool:
    return served.store.engine.dialect.name == "postgresql"


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_a_write_through_another_engine_wakes_the_stream(served: Served, stream: Stream) -> None:
    other = open_store(served.store.engine.url.render_as_string(hide_password=False))
    try:
        JournalWriter(other).write(
            other.get(HOTFIX_ID), [Entry("note", None, 0, None, {"from": "engine"})]
        )
    finally:
        other.engine.dispose()
    stream.wait_for(1)
    watcher = served.dashboard.watcher
    if _is_postgres(served):
        assert watcher.signal == "postgresql listen/notify"
        assert watcher.notifications >= 1
        assert watcher.polls == 0


def test_a_write_from_another_process_wakes_the_stream(served: Served, stream: Stream) -> None:
    url = served.store.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run(
        [sys.executable, "-c", WRITE_FROM_ELSEWHERE, url, HOTFIX_ID],
        check=True,
        env=env,
        timeout=DEADLINE,
    )
    stream.wait_for(1)
    if _is_postgres(served):
        assert served.dashboard.watcher.notifications >= 1


def test_a_burst_of_commits_is_announced_at_most_once_per_interval(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite's data_version is polled: its rate is the interval by construction")
    from hotfix_fsm.dashboard.server import Dashboard
    from tests.dashboard.conftest import hostile_hotfix

    store = open_store(store_url)
    writer = JournalWriter(store)
    hostile_hotfix(store, writer)
    dash = Dashboard(store, port=0, interval=1.0)
    dash.start()
    watcher = dash.watcher
    try:
        assert watcher.signal == "postgresql listen/notify"
        before = watcher.version
        started = time.monotonic()
        commits = 30
        for n in range(commits):
            writer.write(store.get(HOTFIX_ID), [Entry("note", None, 0, None, {"n": n})])
        _wait(lambda: watcher.notifications >= commits, f"{commits} notifications heard")
        elapsed = time.monotonic() - started
        announced = watcher.version - before
        # One announcement per interval at most, from the burst's first commit to the
        # moment the last notification was heard (plus the one that opens the burst).
        assert 1 <= announced <= int(elapsed / watcher.interval) + 2, (announced, elapsed)
        assert announced < commits
    finally:
        dash.stop()
        store.engine.dispose()


def test_a_lost_listening_connection_falls_back_to_polling_and_listens_again(
    served: Served, stream: Stream
) -> None:
    if not _is_postgres(served):
        pytest.skip("LISTEN is PostgreSQL's")
    watcher = served.dashboard.watcher
    watcher.relisten = DEADLINE * 10  # deaf (polling) until the test says otherwise
    pid = watcher.listener_pid
    assert pid is not None
    with served.store.engine.begin() as conn:  # the server ends the listener's session
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    stream.wait_for(1)  # losing the ear is announced: a change may have been missed
    assert watcher.signal == "row fingerprint"
    assert watcher.listener_pid is None
    _wait(lambda: watcher.polls >= 1, "the fingerprint polled")
    seen = stream.changes
    served.writer.write(
        served.store.get(HOTFIX_ID), [Entry("note", None, 0, None, {"while": "deaf"})]
    )
    stream.wait_for(seen + 1)  # seen by polling
    watcher.relisten = 0.5
    _wait(lambda: watcher.listener_pid not in (None, pid), "listening again")
    assert watcher.signal == "postgresql listen/notify"
    seen = stream.changes
    heard = watcher.notifications
    served.writer.write(
        served.store.get(HOTFIX_ID), [Entry("note", None, 0, None, {"after": "reconnect"})]
    )
    stream.wait_for(seen + 1)
    _wait(lambda: watcher.notifications > heard, "the write heard on the new connection")
