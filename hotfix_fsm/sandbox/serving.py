"""A ThreadingHTTPServer run in a background thread that stops cleanly.

``stop()`` returns only after every handler thread has finished, so a stopped server can
never write its state file again: a new instance on the same state directory is safe.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
