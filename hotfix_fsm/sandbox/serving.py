"""What the sandbox servers share: a ThreadingHTTPServer run in a background thread that
stops cleanly, the handler base, the start/stop lifecycle and the atomic state-file write.

``stop()`` returns only after every handler thread has finished, so a stopped server can
never write its state file again: a new instance on the same state directory is safe.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self


class BackgroundServer:
    """Serve one handler class on ``host:port`` until ``stop()``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    def start(self, handler: type[BaseHTTPRequestHandler]) -> str:
        """Bind, serve in a thread, return ``http://host:port``."""
        if self._server is not None:
            return self.base_url
        self._closing = False
        server = ThreadingHTTPServer((self.host, self.port), handler)
        # Non-daemon handler threads: server_close() joins them (see stop()).
        server.daemon_threads = False
        self._server = server
        host, port = server.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self.base_url

    def track(self, conn: socket.socket) -> None:
        """Called from a handler's ``setup()``: remember the connection, or refuse it."""
        with self._lock:
            if not self._closing:
                self._connections.add(conn)
                return
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)

    def untrack(self, conn: socket.socket) -> None:
        """Called from a handler's ``finish()``."""
        with self._lock:
            self._connections.discard(conn)

    def stop(self) -> None:
        """Stop accepting, end idle keep-alive connections, wait for handler threads."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            self._closing = True
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class TrackedHandler(BaseHTTPRequestHandler):
    """Base handler: HTTP/1.1 keep-alive, no Nagle, connection tracking, quiet logs."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True  # headers and body are separate writes
    serving: BackgroundServer

    def setup(self) -> None:
        super().setup()
        self.serving.track(self.connection)

    def finish(self) -> None:
        self.serving.untrack(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        return  # keep test and CLI output clean

    def read_body(self) -> bytes:
        """The request body (``Content-Length`` bytes; empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class ServedApp:
    """``start()``/``stop()`` and ``with`` for an app served by a ``BackgroundServer``.

    Subclasses set ``self._serving`` and implement ``handler_class()``.
    """

    _serving: BackgroundServer
    base_url: str = ""

    def handler_class(self) -> type[BaseHTTPRequestHandler]:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self) -> str:
        """Serve in a background thread; return the base URL."""
        self.base_url = self._serving.start(self.handler_class())
        return self.base_url

    def stop(self) -> None:
        """Stop serving; returns once no handler thread can touch the state any more."""
        self._serving.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def write_json_atomically(path: Path, data: Any, *, prefix: str) -> None:
    """Write ``data`` to a temp file (``prefix``) beside ``path``, then ``os.replace`` it in."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
