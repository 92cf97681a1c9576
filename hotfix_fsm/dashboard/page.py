"""The dashboard's HTML, rendered on the server from the store (it reads fine without script).

Every text that comes from the store — descriptions, branch names, reasons, errors, metric
names — is redacted and HTML-escaped by ``_e`` before it is placed; links are only made of
``http``/``https`` URLs (anything else is shown as text). The pictures are the report's own
charts, drawn by pygal (``reporting.pictures``) on the server and shown as ``<img>`` from
``/charts/<hotfix>/<chart>.svg``, each with its words as ``alt`` and caption: the page
itself holds no inline script or style and lives under a strict Content-Security-Policy.
"""

from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from hotfix_fsm.core import machine
from hotfix_fsm.core.outcome import next_action_for
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import NotFound
from hotfix_fsm.phases.facts import facts_of
from hotfix_fsm.reporting.pictures import Picture, figure, pictures
from hotfix_fsm.reporting.report import (
    environment_approval_text,
    fmt_duration,
    iso,
    phase_rows,
    short,
    summarize,
)
from hotfix_fsm.store import Hotfix, JournalEntry

STYLE_PATH = "/static/dashboard.css"
SCRIPT_PATH = "/static/live.js"
CHARTS_PATH = "/charts"
CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
header { background: #263238; color: #fff; padding: .6rem 1rem; }
header a { color: #fff; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
section.hotfix { background: #fff; border: 1px solid #ddd; border-radius: 6px;
                 padding: .5rem 1rem 1rem; margin: 1rem 0; }
table { border-collapse: collapse; margin: .4rem 0; }
th, td { border: 1px solid #ddd; padding: .15rem .5rem; text-align: left; vertical-align: top; }
.state { font-weight: bold; padding: 0 .4rem; border-radius: 3px; background: #eceff1; }
.state-done { background: #c8e6c9; } .state-failed, .state-rollback_failed { background: #ffcdd2; }
.state-rolled_back, .state-cancelled { background: #ffe0b2; }
.waiting { background: #fff3e0; border-left: 4px solid #ef6c00; padding: .3rem .6rem; }
figure.chart { margin: .4rem 0; }
figure.chart img { display: block; max-width: 100%; height: auto; }
figure.chart figcaption { color: #555; font-size: .85rem; }
.muted { color: #666; } #live { float: right; font-size: .85rem; }
.owed { color: #b71c1c; font-weight: bold; }
"""
# Follows the server-sent events: on a change, fetch this page again, load its charts, then
# swap <main> (a change that comes meanwhile is one more refresh, never lost).
SCRIPT = """
(function () {
  var status = document.getElementById("live");
  if (!window.EventSource || !status) { return; }
  var source = new EventSource("/events");
  var busy = false, again = false;
  // The charts of the fresh page, fetched before it is shown (then from the browser's
  // cache): the page never shows an empty chart while one is drawn. At most 5 s.
  function chartsLoaded(doc, then) {
    var images = Array.prototype.slice.call(doc.querySelectorAll("main img"));
    var left = images.length, done = false;
    function finish() { if (!done) { done = true; then(); } }
    if (!left) { finish(); return; }
    images.forEach(function (img) {
      var early = new Image();
      early.onload = early.onerror = function () { left -= 1; if (left <= 0) { finish(); } };
      early.src = img.getAttribute("src");
    });
    setTimeout(finish, 5000);
  }
  function refresh() {
    if (busy) { again = true; return; }  // one more refresh once this one is shown
    busy = true;
    again = false;
    fetch(window.location.href, {credentials: "same-origin"}).then(function (r) {
      return r.text();
    }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      return new Promise(function (shown) {
        chartsLoaded(doc, function () {
          var fresh = doc.querySelector("main");
          var main = document.querySelector("main");
          if (fresh && main) { main.replaceWith(fresh); }
          status.textContent = "live: updated " + new Date().toLocaleTimeString();
          shown();
        });
      });
    }).catch(function () {
      status.textContent = "live: update failed; retrying";
    }).then(function () {
      busy = false;
      if (again) { refresh(); }
    });
  }
  source.addEventListener("change", refresh);
  source.onopen = function () { status.textContent = "live"; };
  source.onerror = function () { status.textContent = "live: reconnecting"; };
}());
"""
RECENT = 20  # finished hotfixes shown besides the active ones


def _e(value: Any) -> str:
    """Store text as HTML text: redacted, then escaped (quotes too, for attributes)."""
    return html.escape(redact("" if value is None else str(value)), quote=True)


def _link(url: Any, label: Any) -> str:
    """A link when ``url`` is http(s), else the label and URL as plain text."""
    text = redact(str(url or ""))
    if urlsplit(text).scheme in ("http", "https") and not any(c in text for c in "\r\n\t "):
        return f'<a href="{_e(text)}" rel="noopener noreferrer">{_e(label)}</a>'
    return f"{_e(label)} ({_e(text)})" if text else _e(label)


def _ago(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return f"{iso(ts)} ({fmt_duration(max(0.0, now - ts))} ago)"


def _waiting(hotfix: Hotfix, journal: Sequence[JournalEntry], now: float) -> str:
    """What the hotfix waits for and since when (a pause, a failure, or the running phase)."""
    if hotfix.paused_reason:
        since = next((e.at for e in reversed(journal) if e.kind == "pause"), hotfix.updated_at)
        gate = f" (gate {_e(hotfix.paused_gate)})" if hotfix.paused_gate else ""
        return (
            f'<p class="waiting">Waiting for a human{gate} since {_e(_ago(since, now))}: '
            f"{_e(hotfix.paused_reason)}</p>"
        )
    if hotfix.state in machine.STOPPED:
        return (
            f'<p class="waiting">Stopped ({_e(hotfix.state)}) since '
            f"{_e(_ago(hotfix.updated_at, now))}: {_e(hotfix.error)}</p>"
        )
    if hotfix.state in machine.TERMINAL:
        return ""
    phase = machine.PHASE_OF_STATE.get(hotfix.state, hotfix.state)
    started = next(
        (e.at for e in reversed(journal) if e.kind == "intent" and e.phase == phase), None
    )
    last = journal[-1] if journal else None
    detail = f"; last: {_e(summarize(last))}" if last is not None else ""
    return (
        f'<p class="waiting">Running {_e(phase)} since '
        f"{_e(_ago(started or hotfix.updated_at, now))}{detail}</p>"
    )


def _facts_table(hotfix: Hotfix, journal: Sequence[JournalEntry], now: float) -> str:
    facts = facts_of(hotfix)
    rows: list[tuple[str, str]] = [
        ("Issue", _e(hotfix.issue)),
        ("Repository", _e(hotfix.repo)),
        ("Branch", _e(facts.get("branch") or "-")),
        (
            "Started",
            f"{_e(_ago(hotfix.created_at, now))} by {_e(hotfix.options.get('started_by', '?'))}",
        ),
        ("Last change", _e(_ago(hotfix.updated_at, now))),
    ]
    if hotfix.lease_owner:
        live = "live" if hotfix.lease_live(now) else "expired"
        rows.append(
            (
                "Lease",
                f"{_e(hotfix.lease_owner)} ({live}, since {_e(iso(hotfix.lease_acquired_at))}, "
                f"expires {_e(iso(hotfix.lease_expires_at))})",
            )
        )
    else:
        rows.append(("Lease", "nobody drives it now"))
    links = []
    if facts.get("pr_url"):
        number = facts.get("pr_number")
        links.append(_link(facts["pr_url"], f"PR #{number}" if number else "pull request"))
    if facts.get("deploy_run_url"):
        links.append(_link(facts["deploy_run_url"], "deploy run"))
    if facts.get("rollback_run_url"):
        links.append(_link(facts["rollback_run_url"], "rollback run"))
    if facts.get("release_tag"):
        links.append(f"tag {_e(facts['release_tag'])}")
    if facts.get("backport_pr_url"):
        links.append(_link(facts["backport_pr_url"], "back-merge PR"))
    rows.append(("Links", " · ".join(links) or "-"))
    target = facts.get("rollback_target")
    if isinstance(target, dict):
        tag = f" (tag {_e(target['tag'])})" if target.get("tag") else ""
        rows.append(("Rollback target", f"<code>{_e(short(target.get('sha')))}</code>{tag}"))
    else:
        rows.append(("Rollback target", "not recorded yet"))
    approvals = [
        f"{_e(e.payload.get('gate'))} by {_e(e.payload.get('by'))} at {_e(iso(e.at))} "
        f"for <code>{_e(short(e.payload.get('sha')))}</code>"
        for e in journal
        if e.kind == "approval"
    ]
    auto = facts.get("deploy_approval")
    if not approvals and isinstance(auto, dict) and auto.get("auto"):
        approvals.append("deploy approved automatically (--yes or deploy.approval = auto)")
    # A person's approval of a protected environment (``hotfix approve ID deploy``): its
    # row's facts, never the hotfix's (it runs beside the driver).
    for entry in journal:
        row_facts = entry.payload.get("facts") if entry.kind == "done" else None
        record = row_facts.get("environment_approval") if isinstance(row_facts, dict) else None
        if isinstance(record, dict):
            approvals.append(_e(environment_approval_text(record)))
    rows.append(("Approvals", "<br>".join(approvals) or "none"))
    reviews = facts.get("merge_reviews")
    if isinstance(reviews, list) and reviews:
        needed = facts.get("merge_required_reviews")
        lines = [
            f"{_e(r.get('state', '?').lower().replace('_', ' '))} by {_e(r.get('user'))} "
            f"at {_e(r.get('submitted_at'))} on <code>{_e(short(r.get('commit_id')))}</code>"
            for r in reviews
            if isinstance(r, dict)
        ]
        if isinstance(needed, int) and needed:
            lines.append(f"{needed} approving review(s) required by the branch's rules")
        rows.append(("PR reviews", "<br>".join(lines)))
    rows.append(("Alerts", _alerts(journal)))
    rows.append(("Next", _e(next_action_for(hotfix))))
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _alerts(journal: Sequence[JournalEntry]) -> str:
    """The alerts sent, and those owed and not sent yet (a crash came between)."""
    answered = {e.payload.get("owed") for e in journal if e.kind == "alert"}
    lines = []
    for e in journal:
        if e.kind == "alert":
            took = ", ".join(str(t) for t in e.payload.get("delivered") or []) or "no target"
            late = " (late, after an interruption)" if e.payload.get("late") else ""
            lines.append(f"{_e(e.payload.get('event'))} at {_e(iso(e.at))} to {_e(took)}{late}")
        elif e.kind == "alert_owed" and e.seq not in answered:
            lines.append(
                f'<span class="owed">{_e(e.payload.get("event"))} owed since {_e(iso(e.at))}, '
                "not sent yet: the next driver of this hotfix sends it (hotfix resume)</span>"
            )
    return "<br>".join(lines) or "none"


def _phases_table(journal: Sequence[JournalEntry]) -> str:
    rows = phase_rows(journal)
    if not rows:
        return '<p class="muted">no phase ran yet</p>'
    body = "".join(
        f'<tr data-phase="{_e(r.name)}"><td>{_e(r.name)}</td><td>{_e(r.status)}</td>'
        f"<td>{r.attempts}</td><td>{_e(iso(r.started_at))}</td>"
        f"<td>{_e(fmt_duration(r.duration))}</td><td>{_e(r.error or r.skipped or '')}</td></tr>"
        for r in rows
    )
    return (
        '<table class="phases"><tr><th>Phase</th><th>Status</th><th>Attempts</th>'
        f"<th>Started (UTC)</th><th>Duration</th><th>Notes</th></tr>{body}</table>"
    )


def chart_path(hotfix_id: str, picture: Picture) -> str:
    """Where the server draws one chart of a hotfix (``/charts/<id>/<key>.svg``)."""
    return f"{CHARTS_PATH}/{quote(hotfix_id, safe='')}/{picture.key}.svg"


def chart_version(hotfix: Hotfix, key: str, now: float) -> str:
    """What a chart is drawn from: the journal's last row, and for the timeline of an
    unfinished hotfix also the second (its running phase grows). In the chart's URL it
    lets a browser keep an unchanged chart; on the server it keys the drawn charts."""
    version = str(hotfix.last_seq)
    if key == "timeline" and hotfix.state not in machine.TERMINAL:
        version += f".{int(now)}"
    return version


def _figure(hotfix: Hotfix, picture: Picture, now: float) -> str:
    version = chart_version(hotfix, picture.key, now)
    return figure(picture, f"{chart_path(hotfix.id, picture)}?v={version}")


def hotfix_section(hotfix: Hotfix, journal: Sequence[JournalEntry], now: float) -> str:
    """One hotfix: state, what it waits for, facts, timeline, phases and metric charts."""
    timeline, *metrics = pictures(journal, now=now)
    charts = "".join(_figure(hotfix, p, now) for p in metrics)
    charts = charts or '<p class="muted">no monitoring window measured yet</p>'
    anchor = quote(hotfix.id, safe="")
    return (
        f'<section class="hotfix" id="h-{_e(anchor)}" data-hotfix="{_e(hotfix.id)}" '
        f'data-state="{_e(hotfix.state)}">'
        f'<h2><a href="/hotfix/{_e(anchor)}">{_e(hotfix.id)}</a> '
        f'<span class="state state-{_e(hotfix.state)}">{_e(hotfix.state)}</span></h2>'
        f'<p class="description">{_e(hotfix.description)}</p>'
        f"{_waiting(hotfix, journal, now)}"
        f"{_facts_table(hotfix, journal, now)}"
        f"<h3>Timeline</h3>{_figure(hotfix, timeline, now)}"
        f"{_phases_table(journal)}"
        f"<h3>Monitoring</h3>"
        f"{charts}"
        "</section>"
    )


def document(title: str, body: str, *, live: bool = True) -> str:
    """The whole page: CSS and script as separate files (CSP ``'self'``), a no-script refresh."""
    script = f'<script src="{SCRIPT_PATH}" defer></script>' if live else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f'<link rel="stylesheet" href="{STYLE_PATH}">'
        # Without script the page still follows the hotfix, by reloading itself.
        '<noscript><meta http-equiv="refresh" content="10"></noscript>'
        f"{script}</head><body>"
        '<header><a href="/">hotfix dashboard</a> <span class="muted">read-only</span>'
        '<span id="live">live updates need JavaScript; this page reloads every 10s</span>'
        f"</header><main>{body}</main></body></html>\n"
    )


def overview(store: Any, *, now: float | None = None) -> str:
    """Active hotfixes in full, then the recent finished ones."""
    now = time.time() if now is None else now
    active = store.list_hotfixes(include_finished=False, limit=50)
    everything = store.list_hotfixes(include_finished=True, limit=50 + RECENT)
    active_ids = {h.id for h in active}
    recent = [h for h in everything if h.id not in active_ids][:RECENT]
    parts = [f"<h1>Active hotfixes ({len(active)})</h1>"]
    if not active:
        parts.append('<p class="muted">no hotfix is running, paused or failed</p>')
    parts += [hotfix_section(h, store.journal(h.id), now) for h in active]
    parts.append(f"<h1>Recent hotfixes ({len(recent)})</h1>")
    if recent:
        rows = "".join(
            f'<tr data-hotfix="{_e(h.id)}"><td><a href="/hotfix/{_e(quote(h.id, safe=""))}">'
            f"{_e(h.id)}</a></td><td>{_e(h.state)}</td><td>{_e(h.description)}</td>"
            f"<td>{_e(iso(h.updated_at))}</td></tr>"
            for h in recent
        )
        parts.append(
            "<table><tr><th>Hotfix</th><th>Outcome</th><th>Description</th>"
            f"<th>Ended (UTC)</th></tr>{rows}</table>"
        )
    else:
        parts.append('<p class="muted">none</p>')
    return document("hotfix dashboard", "".join(parts))


def detail(store: Any, hotfix_id: str, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    hotfix = store.get(hotfix_id)
    return document(f"hotfix {hotfix.id}", hotfix_section(hotfix, store.journal(hotfix.id), now))


class DrawnCharts:
    """The charts drawn lately, by (hotfix, chart, version): many people watching one
    hotfix cost one drawing per change, not one per viewer (a drawing takes ~0.1 s)."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._drawn: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self.drawings = 0  # how many were drawn (the rest came from here)

    def get(self, key: tuple[str, str, str], draw: Callable[[], str]) -> str:
        with self._lock:
            if key in self._drawn:
                self._drawn.move_to_end(key)
                return self._drawn[key]
        svg = draw()
        with self._lock:
            self.drawings += 1
            self._drawn[key] = svg
            while len(self._drawn) > self.size:
                self._drawn.popitem(last=False)
        return svg


def chart(
    store: Any,
    hotfix_id: str,
    key: str,
    *,
    now: float | None = None,
    drawn: DrawnCharts | None = None,
) -> str:
    """One chart of a hotfix as an SVG document (``NotFound`` when it has no such chart);
    from ``drawn`` when the same version was drawn lately."""
    now = time.time() if now is None else now
    hotfix = store.get(hotfix_id)

    def draw() -> str:
        for picture in pictures(store.journal(hotfix.id), now=now):
            if picture.key == key:
                return picture.svg()
        raise NotFound(f"hotfix {hotfix.id} has no chart {key!r}", hotfix_id=hotfix.id)

    if drawn is None:
        return draw()
    return drawn.get((hotfix.id, key, chart_version(hotfix, key, now)), draw)


__all__ = [
    "CHARTS_PATH",
    "CSS",
    "SCRIPT",
    "DrawnCharts",
    "chart",
    "chart_path",
    "chart_version",
    "detail",
    "document",
    "hotfix_section",
    "overview",
]
