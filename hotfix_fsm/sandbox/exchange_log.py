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
from pathlib import Path
from typing import Any

RECORD_ENV = "HOTFIX_FSM_SANDBOX_RECORD"
_lock = threading.Lock()


def _decoded(raw: bytes | None) -> Any:
    if not raw or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"$unparsed": raw.decode("utf-8", "replace")[:2000]}


def record_exchange(
    *,
    method: str,
    path: str,
    route: str,
    user_agent: str,
    request_body: bytes,
    status: int,
    response_body: bytes | None,
    response_headers: dict[str, str],
) -> None:
    """Append one exchange when ``HOTFIX_FSM_SANDBOX_RECORD`` names a directory."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return
    line = json.dumps(
        {
            "method": method,
            "path": path,
            "route": route,
            "user_agent": user_agent,
            "request": _decoded(request_body),
            "status": status,
            "response": _decoded(response_body),
            "headers": {k.lower(): v for k, v in response_headers.items()},
        },
        sort_keys=True,
    )
    target = Path(folder) / f"github-exchanges-{os.getpid()}.jsonl"
    with _lock:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
