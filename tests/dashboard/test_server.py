"""The dashboard over a real SQLite store: what it shows, that it escapes and redacts it, its
headers, its change stream and its token (no browser here; see test_browser)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.dashboard.server import Dashboard
from hotfix_fsm.store import Entry, Store
from tests.dashboard.conftest import (
    HOTFIX_ID,
    PR_URL,
    RUN_URL,
    XSS,
    Served,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


class Page(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all_text(self) -> str:
        return "".join(self.text)


def assert_nothing_injected(page: Page, scripts: tuple[str, ...] = ("/static/live.js",)) -> None:
    """Only the dashboard's own elements: one external script, no handler, no foreign tag;
    the only images are its own charts."""
    names = [t for t, _ in page.tags]
    assert [a.get("src") for t, a in page.tags if t == "script"] == list(scripts)
    for tag in ("iframe", "b", "object", "embed", "form"):
        assert tag not in names, tag
    images = [str(a.get("src")) for t, a in page.tags if t == "img"]
    assert all(src.startswith("/charts/") for src in images), images
    assert names.count("style") == 0
    handlers = [(t, k) for t, a in page.tags for k in a if k.lower().startswith("on")]
    assert not handlers, handlers
    hrefs = [str(a.get("href")) for t, a in page.tags if t == "a"]
    assert not [h for h in hrefs if not h.startswith(("/", "http://", "https://"))], hrefs


def test_the_page_shows_the_hotfix_with_every_user_field_as_text(served: Served) -> None:
    status, _, body = served.get("/")
    assert status == 200
    page = Page(body)
    assert_nothing_injected(page)
    text = page.all_text()
    for field, value in XSS.items():
        assert value in text, field
    sections = [a for t, a in page.tags if t == "section"]
    assert [a.get("data-hotfix") for a in sections] == [HOTFIX_ID]
    assert sections[0].get("data-state") == "created"
    assert "Waiting for a human (gate monitor) since" in text
    # javascript: is shown, never linked; the run URL is a link, its quote kept inside href.
    assert PR_URL in text
    links = [a.get("href") for t, a in page.tags if t == "a"]
    assert RUN_URL in links
    # The metric chart with its two thresholds, drawn by the server as an SVG image.
    charts = [a for t, a in page.tags if t == "figure" and a.get("data-metric")]
    assert [a.get("data-metric") for a in charts] == [XSS["metric"]]
    assert "success when below 5" in text  # "< 5", in words in the caption
    assert "failure when at least 10" in text  # ">= 10"
    images = [str(a.get("src")) for t, a in page.tags if t == "img"]
    assert len(images) == 2  # the timeline and the metric
    metric = chart_svg(served, next(src for src in images if "/metric-0.svg" in src))
    ids = {e.get("id") for e in metric.iter()}
    assert {"metric", "threshold-success", "threshold-failure"} <= ids
    assert XSS["metric"] in "".join(metric.itertext())  # a text node, escaped by the writer
    timeline = chart_svg(served, next(src for src in images if "/timeline.svg" in src))
    assert "phase-0" in {e.get("id") for e in timeline.iter()}
    detail_status, _, detail = served.get(f"/hotfix/{HOTFIX_ID}")
    assert detail_status == 200
    assert_nothing_injected(Page(detail))


def chart_svg(served: Served, src: str) -> ET.Element:
    """A chart of the page, fetched as the browser does: an SVG image with its own policy."""
    status, given, body = served.get(src)
    assert status == 200, (src, body[:300])
    headers = {name.lower(): value for name, value in given.items()}
    assert headers["content-type"].startswith("image/svg+xml")
    assert headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
    assert headers["x-content-type-options"] == "nosniff"
    root = ET.fromstring(body)  # noqa: S314 - our own server's answer; well-formed XML
    tags = {e.tag.rpartition("}")[2] for e in root.iter()}
    assert "script" not in tags
    assert "foreignObject" not in tags
    assert not [k for e in root.iter() for k in e.attrib if k.lower().startswith("on")]
    return root


def test_a_chart_is_drawn_once_per_version_however_many_watch(served: Served) -> None:
    def metric_src() -> str:
        body = served.get("/")[2]
        return next(
            str(a.get("src")) for t, a in Page(body).tags if t == "img" and "/metric-0" in str(a)
        )

    first = metric_src()
    bodies = {served.get(first)[2] for _ in range(5)}  # five watchers, one version
    assert len(bodies) == 1
    assert served.dashboard.drawn.drawings == 1
    # A new journal row is a new version: a new URL, drawn again, and then kept.
    hotfix = served.store.get(HOTFIX_ID)
    served.writer.write(hotfix, [Entry("note", "monitor", 1, None, {"text": "later"})])
    second = metric_src()
    assert second != first
    for _ in range(3):
        assert served.get(second)[0] == 200
    assert served.dashboard.drawn.drawings == 2


def test_a_chart_that_does_not_exist_is_a_404_page(served: Served) -> None:
    for path in (
        f"/charts/{HOTFIX_ID}/metric-9.svg",
        f"/charts/{HOTFIX_ID}/nope.svg",
        "/charts/NOPE-1-20260101-000000/timeline.svg",
    ):
        status, headers, body = served.get(path)
        assert status == 404, path
        assert {k.lower(): v for k, v in headers.items()}["content-type"].startswith("text/html")
        assert "not found" in body


def test_strict_headers_and_read_only(served: Served) -> None:
    _, headers, _ = served.get("/")
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/live.js", "/static/dashboard.css", "/nope", "/hotfix/nope"):
        code, h, _ = served.get(path)
        assert code in (200, 404), path
        assert h["Content-Security-Policy"] == csp
    parts = urlsplit(served.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    conn.request("POST", "/", body=b"x")
    assert conn.getresponse().status == 405
    conn.close()


def test_a_secret_known_only_to_the_reader_is_masked_on_the_page(served: Served) -> None:
    secret = "ghp_" + "Z9" * 18  # registered after it was written: the page must mask it
    hotfix = served.store.get(HOTFIX_ID)
    served.writer.write(hotfix, [Entry("note", None, 0, None, {"x": 1})], error=f"boom {secret}")
    register_secret(secret)
    _, _, body = served.get("/")
    assert secret not in body


def test_the_event_stream_announces_a_store_change(served: Served) -> None:
    parts = urlsplit(served.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    conn.request("GET", "/events")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    assert resp.readline().startswith(b"retry:")
    watcher = served.dashboard.watcher
    before = watcher.polls + watcher.notifications
    hotfix = served.store.get(HOTFIX_ID)
    served.writer.write(hotfix, [Entry("note", None, 0, None, {"hello": "watchers"})])
    lines = []
    while not lines or lines[-1] != b"event: change":  # the socket's timeout is the deadline
        lines.append(resp.readline().strip())
    sqlite = served.store.engine.url.get_backend_name() == "sqlite"
    assert watcher.signal == ("sqlite data_version" if sqlite else "postgresql listen/notify")
    assert watcher.polls + watcher.notifications > before
    if not sqlite:  # heard, not polled: LISTEN never looks at the store
        assert watcher.notifications > 0
        assert watcher.polls == 0
    conn.close()


def test_off_loopback_a_bearer_token_is_required(store: Store) -> None:
    with pytest.raises(ValueError, match="token"):
        Dashboard(store, host="0.0.0.0", port=0)  # noqa: S104 - the refusal is the test
    token = "t0k3n-" + "q" * 30
    dash = Dashboard(store, host="0.0.0.0", port=0, token=token)  # noqa: S104
    assert token not in redact(f"GET /login?token={token}")  # never logged, as a library too
    url = dash.start()
    port = urlsplit(url).port
    try:

        def get(path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            return resp

        assert get("/", {}).status == 401
        assert get("/", {"Authorization": "Bearer wrong"}).status == 401
        assert get("/", {"Authorization": f"Bearer {token}"}).status == 200
        login = get(f"/login?token={token}", {})
        assert login.status == 303
        cookie = (login.getheader("Set-Cookie") or "").split(";")[0]
        assert "HttpOnly" in (login.getheader("Set-Cookie") or "")
        assert get("/", {"Cookie": cookie}).status == 200
        assert get("/login?token=wrong", {}).status == 401
    finally:
        dash.stop()


def test_the_command_prints_a_generated_token_once_and_requires_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOTFIX_DASHBOARD_TOKEN"}
    env["HOTFIX_FSM_DB"] = str(tmp_path / "empty.db")
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotfix_fsm.cli", "dashboard", "--host", "0.0.0.0", "--port", "0"],  # noqa: S104
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not any("http://" in line for line in lines):
            line = proc.stderr.readline()
            assert line, f"the command ended: {lines}"
            lines.append(line)
        token = lines[1].strip()
        assert len(token) >= 32, lines
        port = int(lines[-1].split("http://", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])

        def status(headers: dict[str, str]) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/", headers=headers)
            code = conn.getresponse().status
            conn.close()
            return code

        assert status({}) == 401
        assert status({"Authorization": f"Bearer {token}"}) == 200
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.stderr is not None
    rest = proc.stderr.read()
    proc.stderr.close()
    if proc.stdout is not None:
        proc.stdout.close()
    assert token not in rest  # printed once, never again (no log line carries it)
    assert sum(line.count(token) for line in lines) == 1


def test_an_alert_owed_and_not_sent_is_shown_until_it_is(served: Served) -> None:
    hotfix = served.store.get(HOTFIX_ID)
    owed = Entry("alert_owed", None, 0, None, {"event": "paused", "message": XSS["reason"]})
    seq = served.writer.write(hotfix, [owed])
    _, _, body = served.get("/")
    page = Page(body)
    assert_nothing_injected(page)
    assert "paused owed since" in page.all_text()
    assert "not sent yet" in page.all_text()
    answer = {"event": "paused", "owed": seq, "delivered": ["pagerduty"], "late": True}
    served.writer.write(served.store.get(HOTFIX_ID), [Entry("alert", None, 0, None, answer)])
    text = Page(served.get("/")[2]).all_text()
    assert "not sent yet" not in text
    assert "to pagerduty (late, after an interruption)" in text
