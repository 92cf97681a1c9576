"""Fixtures of the release tests: the production app and a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from hotfix_fsm.sandbox.production_app import ProductionApp


class Receiver:
    """A tiny webhook receiver recording every POST (path and JSON body)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        # Answers given before ``status``, one per POST: (status, headers, seconds to wait
        # before answering).
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.posts: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.posts.append((self.path, json.loads(raw or b"null")))
                    status, headers, delay = (
                        receiver.script.pop(0) if receiver.script else (receiver.status, {}, 0.0)
                    )
                if delay:
                    time.sleep(delay)  # a slow receiver: the client's timeout passes first
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [body for p, body in self.posts if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def prod(tmp_path: Path) -> Iterator[ProductionApp]:
    app = ProductionApp(tmp_path / "prod", version="a" * 40)
    app.start()
    yield app
    app.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    yield s
    s.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def world(tmp_path: Path) -> Iterator[Any]:
    from .world import build_world

    w = build_world(tmp_path)
    yield w
    w.close()
    w.gh.stop()
    w.prod.stop()
