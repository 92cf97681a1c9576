"""A real SQLite store holding a hostile hotfix (written through the journal writer), and the
dashboard served over it on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hotfix_fsm.core import machine
from hotfix_fsm.dashboard.server import Dashboard
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.store import Entry, Store, open_store

# Each would run script or add an element if it reached the page unescaped.
XSS = {
    "description": 'Fix <script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">',
    "branch": 'hotfix/"><svg/onload=window.__pwned=3>-INC-1',
    "reason": "</p><iframe src=javascript:window.__pwned=4></iframe>",
    "metric": '<b onmouseover="window.__pwned=5">latency</b>',
    "started_by": "<style>body{display:none}</style>",
}
PR_URL = "javascript:window.__pwned=6"  # not http(s): must never become a link
RUN_URL = 'http://127.0.0.1/runs/1"><script>window.__pwned=7</script>'
HOTFIX_ID = "INC-1-20260101-000000"
SUCCESS, FAILURE = "< 5", ">= 10"
VALUES = [1.0, 3.0, 6.0]


@dataclass
class Served:
    url: str
    store: Store
    writer: JournalWriter
    dashboard: Dashboard

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8")
        finally:
            conn.close()


def hostile_hotfix(store: Store, writer: JournalWriter) -> None:
    """A paused hotfix whose every user field is an XSS attempt, with a monitoring window."""
    hotfix = writer.create(
        hotfix_id=HOTFIX_ID,
        issue="INC-1",
        description=XSS["description"],
        repo="/tmp/<repo>",
        graph_hash=machine.DEFAULT.hash,
        options={"started_by": XSS["started_by"]},
        context={
            "branch": XSS["branch"],
            "pr_url": PR_URL,
            "pr_number": 1,
            "deploy_run_url": RUN_URL,
        },
    )
    start = hotfix.created_at
    rows = [
        Entry("intent", "monitor", 1, "k", {}),
        Entry(
            "note",
            "monitor",
            1,
            None,
            {
                "facts": {
                    "monitor_window": {
                        "id": "w1",
                        "started_at": start,
                        "rules": {XSS["metric"]: {"success": SUCCESS, "failure": FAILURE}},
                    }
                }
            },
        ),
    ]
    rows += [
        Entry(
            "measurement",
            "monitor",
            1,
            None,
            {
                "window": "w1",
                "round": k,
                "at": start + k,
                "values": {XSS["metric"]: v},
                "verdicts": {XSS["metric"]: "success"},
            },
        )
        for k, v in enumerate(VALUES)
    ]
    rows.append(Entry("pause", "monitor", 1, None, {"reason": XSS["reason"], "gate": "monitor"}))
    writer.write(hotfix, rows, paused_reason=XSS["reason"], paused_gate="monitor")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store on each backend (SQLite file; PostgreSQL when the tests have one)."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.engine.dispose()


@pytest.fixture
def served(store: Store) -> Iterator[Served]:
    writer = JournalWriter(store)
    hostile_hotfix(store, writer)
    dash = Dashboard(store, port=0, interval=0.2)
    url = dash.start()
    try:
        yield Served(url, store, writer, dash)
    finally:
        dash.stop()


ARTEFACTS_ENV = "HOTFIX_FSM_TEST_ARTEFACTS"


@pytest.fixture
def shot(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where this test keeps its screenshot: ``$HOTFIX_FSM_TEST_ARTEFACTS`` (CI keeps that
    folder), else the test's tmp dir; named after the test. Only a PNG is kept there."""
    folder = Path(os.environ.get(ARTEFACTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")
    return folder / f"{name}.png"


def json_of(text: str) -> object:
    return json.loads(text)
