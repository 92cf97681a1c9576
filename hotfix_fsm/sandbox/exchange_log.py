"""A record of the rehearsal GitHub's real answers, for checking them against GitHub's own.

With ``HOTFIX_FSM_SANDBOX_RECORD=DIR`` in its environment, every rehearsal GitHub server
(in this process or in a ``hotfix sandbox serve`` / ``hotfix demo`` child) appends each real
exchange — an answer of a REST route, errors included — as one JSON line to
``DIR/github-exchanges-<pid>.jsonl``. Control endpoints (``/_sandbox/...``) and injected
faults are not real answers and are not recorded. Request headers are left out, so no token
is ever written. The test suite validates these records against GitHub's OpenAPI description.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

RECORD_ENV = "HOTFIX_FSM_SANDBOX_RECORD"
_lock = threading.Lock()


class Answer(Protocol):
    """What was answered (the server's reply)."""

    status: int
    body: bytes | None
    headers: dict[str, str] | None


def _decoded(raw: bytes | None) -> Any:
    if not raw or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"$unparsed": raw.decode("utf-8", "replace")[:2000]}


def record_exchange(
    method: str,
    target: str,
    route: str,
    headers: Mapping[str, str],
    request_body: bytes,
    reply: Answer,
) -> None:
    """Append one exchange when ``HOTFIX_FSM_SANDBOX_RECORD`` names a directory."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    line = json.dumps(
        {
            "method": method,
            "path": urlsplit(target).path,
            "route": route,
            "user_agent": headers.get("user-agent", ""),
            "request": _decoded(request_body),
            "status": reply.status,
            "response": _decoded(reply.body),
            "headers": {k.lower(): v for k, v in (reply.headers or {}).items()},
        },
        sort_keys=True,
    )
    log = Path(folder) / f"github-exchanges-{os.getpid()}.jsonl"
    with _lock:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
