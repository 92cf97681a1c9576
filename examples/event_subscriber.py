"""Subscribe to a hotfix's events and POST them to a receiver (a chat bridge, a timeline...).

``engine.subscribe(callback)`` calls ``callback(event)`` for every journal row as it commits
(kinds such as intent, done, failed, transition, approval, measurement) and for progress
messages of long waits. Callbacks run on the driver's threads, so this one only queues the
event; a sender thread POSTs it, and a slow or broken receiver never slows the hotfix (the
runner also ignores exceptions raised by subscribers).

Here the receiver is a tiny HTTP server on 127.0.0.1 started by the example itself.

    python examples/event_subscriber.py
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from hotfix_fsm import Event, HotfixEngine
from hotfix_fsm.core.redact import redact_obj
from hotfix_fsm.sandbox import temporary_sandbox

RECEIVED: list[dict[str, Any]] = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        RECEIVED.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class Poster:
    """Queue events from the driver; POST them from one background thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._send_all, daemon=True)
        self.thread.start()

    def __call__(self, event: Event) -> None:
        if event.kind == "progress":
            return  # only durable journal rows, not "still waiting" messages
        self.events.put(
            redact_obj(
                {
                    "hotfix": event.hotfix_id,
                    "seq": event.seq,
                    "kind": event.kind,
                    "phase": event.phase,
                    "state": event.state,
                    "payload": dict(event.payload),
                }
            )
        )

    def _send_all(self) -> None:
        with requests.Session() as http:
            while (item := self.events.get()) is not None:
                try:
                    http.post(
                        self.url,
                        data=json.dumps(item, default=str),
                        timeout=5,
                        headers={"Content-Type": "application/json"},
                    )
                except requests.RequestException as exc:  # a lost notification, not hotfix
                    print(f"could not post event {item['seq']}: {exc}", file=sys.stderr)

    def close(self) -> None:
        """Send what is queued, then stop. Each POST has its own timeout, so this ends; a busy
        machine may take a while to deliver every row, and a row dropped here would be lost."""
        self.events.put(None)
        self.thread.join()


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hotfix-events"
    try:
        with temporary_sandbox(prefix="hotfix-events-example-") as sandbox:
            info = sandbox.info
            poster = Poster(url)
            with HotfixEngine(Path(info.root) / "hotfix.db", config_path=info.config) as engine:
                engine.subscribe(poster)
                hotfix = engine.start(
                    "OPS-9",
                    "Fix token expiry check",
                    repo=info.work,
                    cherry_pick=[info.fix_sha],
                    yes=True,
                )
                outcome = engine.drive(hotfix.id)
            poster.close()
    finally:
        server.shutdown()
        server.server_close()
    kinds = sorted({e["kind"] for e in RECEIVED})
    last = RECEIVED[-1] if RECEIVED else {}
    print(f"{hotfix.id}: {outcome.state}; the receiver got {len(RECEIVED)} events ({kinds})")
    print(f"last event: seq {last.get('seq')} {last.get('kind')} → state {last.get('state')}")
    seqs = [e["seq"] for e in RECEIVED]
    ok = outcome.state == "done" and seqs == sorted(seqs) and last.get("state") == "done"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
