"""``hotfix dashboard``: a read-only web page over the store, live through server-sent events.

Why the standard library: the page is a handful of GET routes and one event stream, read-only,
for a few watchers of an incident; ``http.server.ThreadingHTTPServer`` serves that with no new
dependency to install on an on-call laptop (a framework would bring an ASGI server and its
upgrades for no feature used here).

The change signal: on PostgreSQL, ``LISTEN`` on the channel every writing transaction of the
store notifies (``store.notify``; ``dashboard.listen``), so a commit from any process or
machine wakes the stream without a query; a burst is announced as one change, at most once
per ``interval`` (default 1s, never under 0.2s). Without LISTEN (another driver, a
connection lost) a fingerprint of the hotfix rows (id, last journal sequence, last change,
lease) is polled at that rate instead. On SQLite, ``PRAGMA data_version`` on a read-only
connection of its own — it changes whenever another connection commits — polled once per
``interval``. One watcher thread serves every client: the store sees the same load for one
watcher or fifty.

Safe by default: bound to 127.0.0.1 unless a host is given; on any other address a bearer token
is required (``Authorization: Bearer``, or once as ``/login?token=`` which sets an HttpOnly,
SameSite=Strict cookie). Every response carries a strict Content-Security-Policy (script and
styles only from the page's own origin, as files: no inline script), ``nosniff``,
``frame-ancestors 'none'`` and ``no-store``. Nothing here writes to the store.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.dashboard import page
from hotfix_fsm.dashboard.listen import PgListener, listener_for
from hotfix_fsm.errors import NotFound
from hotfix_fsm.log import get_logger

log = get_logger("hotfix_fsm.dashboard")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
COOKIE = "hotfix_dashboard_token"
MIN_INTERVAL = 0.2
KEEPALIVE = 15.0
MAX_STREAMS = 64
RELISTEN = 30.0  # seconds between attempts to LISTEN again after it failed
SQLITE_SIGNAL = "sqlite data_version"
LISTEN_SIGNAL = "postgresql listen/notify"
POLL_SIGNAL = "row fingerprint"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine ("" and 0.0.0.0 answer every network)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the change signal ----------------------------------------------------------------------


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

    def start(self) -> None:
        if self._listens:
            self._listen()  # before the first page is served: no change is missed after it
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
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


# -- the server ------------------------------------------------------------------------------


class Dashboard:
    """The served dashboard: ``start()`` returns its URL, ``stop()`` ends it."""

    def __init__(
        self,
        store: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        interval: float = 1.0,
    ) -> None:
        if not is_loopback(host) and not token:
            raise ValueError("a dashboard on a non-loopback address needs a token")
        if token:
            # Request lines carry it (/login?token=): masked in every log, whoever built us.
            register_secret(token)
        self.store = store
        self.host = host
        self.token = token
        self.watcher = Watcher(store, interval=interval)
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dashboard-http", daemon=True
        )
        self.url = ""

    def start(self) -> str:
        self.watcher.start()
        self._thread.start()
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        self.url = f"http://{shown}:{port}"
        return self.url

    def serve_forever(self) -> None:
        """Block until interrupted (the command's way)."""
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=1.0)
        finally:
            self.stop()

    def stop(self) -> None:
        self.watcher.stop()
        self._server.shutdown()
        self._server.server_close()

    def authorized(self, headers: Any, cookie_token: str | None) -> bool:
        if not self.token:
            return True
        given = ""
        auth = str(headers.get("Authorization") or "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif cookie_token:
            given = cookie_token
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())


def _cookie(headers: Any) -> str | None:
    raw = str(headers.get("Cookie") or "")
    for part in raw.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _handler(app: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hotfix-dashboard"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines may carry a token (/login?token=): never logged as they are.
            log.debug("dashboard_request", request=redact(format % args)[:200])

        def _headers(self, status: int, ctype: str, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("Cache-Control", "no-store")
            if length is not None:
                self.send_header("Content-Length", str(length))

        def _send(self, status: int, body: str, ctype: str = "text/html; charset=utf-8") -> None:
            data = body.encode("utf-8")
            self._headers(status, ctype, len(data))
            self.end_headers()
            if self.command != "HEAD":
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        def _text_page(self, status: int, title: str, text: str) -> None:
            body = f"<h1>{page._e(title)}</h1><p>{page._e(text)}</p>"
            self._send(status, page.document(title, body, live=False))

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_POST(self) -> None:
            self._text_page(405, "read-only", "this dashboard only reads the store")

        do_PUT = do_DELETE = do_PATCH = do_POST

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/login" and app.token:
                given = (parse_qs(parts.query).get("token") or [""])[0]
                if given and hmac.compare_digest(given.encode(), app.token.encode()):
                    self._headers(303, "text/plain", 0)
                    self.send_header(
                        "Set-Cookie", f"{COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/"
                    )
                    self.send_header("Location", "/")
                    self.end_headers()
                    return
            if not app.authorized(self.headers, _cookie(self.headers)):
                data = b"a bearer token is required (Authorization: Bearer <token>)\n"
                self._headers(401, "text/plain; charset=utf-8", len(data))
                self.send_header("WWW-Authenticate", 'Bearer realm="hotfix dashboard"')
                self.end_headers()
                self.wfile.write(data)
                return
            try:
                self._route(path)
            except NotFound as exc:
                self._text_page(404, "not found", exc.message)
            except (BrokenPipeError, ConnectionResetError):
                return
            except Exception as exc:  # the page must never show a traceback
                log.warning(
                    "dashboard_error", path=redact(path)[:200], error=redact(str(exc))[:300]
                )
                self._text_page(
                    500, "the store could not be read", "try again; the server log has details"
                )

        def _route(self, path: str) -> None:
            if path == "/":
                self._send(200, page.overview(app.store))
            elif path.startswith("/hotfix/"):
                self._send(200, page.detail(app.store, unquote(path[len("/hotfix/") :])))
            elif path == page.STYLE_PATH:
                self._send(200, page.CSS, "text/css; charset=utf-8")
            elif path == page.SCRIPT_PATH:
                self._send(200, page.SCRIPT, "text/javascript; charset=utf-8")
            elif path == "/events":
                self._events()
            elif path == "/healthz":
                self._send(200, "ok\n", "text/plain; charset=utf-8")
            else:
                raise NotFound(f"no page {path[:100]}")

        def _events(self) -> None:
            if not app.streams.acquire(blocking=False):
                self._text_page(503, "too many watchers", "close a tab and reload")
                return
            try:
                self._headers(200, "text/event-stream; charset=utf-8")
                self.end_headers()
                seen = app.watcher.version
                self.wfile.write(b"retry: 3000\n\n")
                self.wfile.flush()
                while not app.watcher.stopped:
                    version = app.watcher.wait(seen, KEEPALIVE)
                    if version != seen:
                        seen = version
                        self.wfile.write(f"event: change\ndata: {version}\n\n".encode())
                    else:
                        self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return
            finally:
                app.streams.release()

    return Handler


__all__ = ["CSP", "Dashboard", "Watcher", "is_loopback"]
