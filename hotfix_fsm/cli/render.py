"""Terminal output of the ``hotfix`` command: tables, live progress, outcome and error text.

rich renders tables and the live progress line (a spinner with the current phase, what is
being waited for and the elapsed time) when stderr is a terminal; otherwise progress becomes
plain, throttled log lines so CI logs and pipes stay readable. rich is imported inside the
functions that draw, so commands that print JSON or plain text never pay for it.

Output fits where it goes: on a terminal, tables sized to it; in a pipe or a file (stdout not
a terminal), every value whole — lists as tab-separated lines, as ``gh`` prints them — and no
escape sequences; with ``NO_COLOR`` set, no escape sequences on a terminal either. Every text
passes ``redact`` (secrets) and ``sanitize`` (control characters shown escaped, never
interpreted: a check-run name, a URL or a description cannot drive the terminal).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from hotfix_fsm.core.redact import redact, redact_obj
from hotfix_fsm.core.sanitize import sanitize

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from hotfix_fsm.core.outcome import Event, Outcome
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.reporting.report import HotfixStatus
    from hotfix_fsm.store import Hotfix, JournalEntry

# Plain (non-terminal) progress: repeat an unchanged wait message at most this often.
PLAIN_PROGRESS_EVERY = 10.0


def no_color() -> bool:
    """``NO_COLOR`` set to anything but the empty string (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    # No colour system: rich writes no style escapes at all (not even bold).
    return Console(
        stderr=stderr,
        highlight=False,
        soft_wrap=True,
        color_system=None if no_color() else "auto",
    )


def stderr_console() -> Console:
    return _console(stderr=True)


def stdout_console() -> Console:
    return _console(stderr=False)


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def clean(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` fit for a terminal: secrets masked, control characters shown escaped."""
    return sanitize(redact(text), keep_newlines=keep_newlines)


def echo(text: str = "", *, err: bool = False) -> None:
    """Print plain text to stdout (or stderr): redacted, control characters escaped."""
    stream: TextIO = sys.stderr if err else sys.stdout
    stream.write(clean(text) + "\n")
    stream.flush()


def print_tsv(rows: Sequence[Sequence[str]]) -> None:
    """Rows as tab-separated lines, every value whole (a tab or newline inside a value is
    shown escaped so a row stays one line of its columns)."""
    out = sys.stdout
    for row in rows:
        out.write("\t".join(clean(str(v), keep_newlines=False) for v in row) + "\n")
    out.flush()


def print_json(doc: Any) -> None:
    """A stable JSON document on stdout (sorted keys, redacted)."""
    sys.stdout.write(json.dumps(redact_obj(doc), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def error_text(exc: Exception) -> str:
    """The user-facing text of a HotfixError: what happened, where, and what to do."""
    return clean(f"hotfix: error: {exc}")


# -- live progress --------------------------------------------------------------------------


@dataclass
class _LiveState:
    hotfix_id: str
    phase: str = "starting"
    waiting: str = ""
    phase_started: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)
    metrics: str = ""  # the monitor's latest values against their thresholds


class ProgressView:
    """Receives engine events; draws a spinner on a terminal, plain lines otherwise."""

    def __init__(
        self,
        hotfix_id: str,
        *,
        live: bool | None = None,
        stream: TextIO | None = None,
        thresholds: dict[str, str] | None = None,
    ) -> None:
        self.thresholds = dict(thresholds or {})  # metric → "ok < 5, fail >= 10"
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.state = _LiveState(hotfix_id)
        self._lock = threading.Lock()
        self._last_plain: dict[str, float] = {}
        self._console: Console | None = None
        self._status: Any = None
        self._phase_started: dict[str, float] = {}

    # The renderable the spinner shows, recomputed at every refresh (elapsed keeps moving).
    def __rich__(self) -> Text:
        from rich.text import Text

        s = self.state
        elapsed = time.monotonic() - s.phase_started
        # One line each for where the drive is, what it waits for (the pending checks, the
        # run's jobs) and the monitored values: each is cut to the terminal's width on its
        # own, so a narrow terminal still shows the start of every one.
        lines = [f"{s.hotfix_id} · {s.phase} · {elapsed:.1f} s"]
        if s.waiting:
            lines.append(s.waiting)
        if s.metrics and s.phase == "monitor":
            lines.append(s.metrics)
        text = "\n".join(clean(line, keep_newlines=False) for line in lines)
        return Text(text, style="none", no_wrap=True, overflow="ellipsis")

    def _say(self, text: str, style: str = "") -> None:
        text = clean(text)
        if self._console is not None:
            from rich.text import Text

            # The style goes on the text, not the print: the live line re-renders in the same
            # call and must not inherit it.
            self._console.print(Text(text, style=style or ""), highlight=False)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def write_log_line(self, line: str) -> None:
        """The console writer for log lines while the view is active."""
        with self._lock:
            self._say(line)

    def on_event(self, event: Event) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: Event) -> None:
        p = event.payload
        phase = event.phase or ""
        now = time.monotonic()
        if event.kind == "intent":
            self._phase_started.setdefault(phase, now)
            if not phase.startswith("gate:"):
                self.state.phase, self.state.waiting = phase, ""
                self.state.phase_started = now
            else:
                self.state.phase, self.state.waiting = "gates", "tests ∥ build ∥ audit"
                self.state.phase_started = self._phase_started.get("gates", now)
                self._phase_started.setdefault("gates", now)
            if not self.live:
                self._say(f"{event.hotfix_id}: {phase} started")
        elif event.kind == "progress":
            message = str(p.get("message", ""))
            if phase and not phase.startswith("gate:"):
                self.state.phase = phase
            self.state.waiting = message
            if not self.live:
                key = message.split(":", 1)[0]
                last = self._last_plain.get(key)
                if last is None or now - last >= PLAIN_PROGRESS_EVERY:
                    self._last_plain[key] = now
                    elapsed = p.get("elapsed")
                    suffix = f" ({elapsed} s)" if elapsed is not None else ""
                    self._say(f"{event.hotfix_id}: {phase}: {message}{suffix}")
        elif event.kind == "done":
            took = now - self._phase_started.pop(phase, now)
            inferred = (
                " (adopted after a probe: it had already happened)" if p.get("inferred") else ""
            )
            from hotfix_fsm.reporting.report import fmt_duration

            self._say(f"✓ {phase} ({fmt_duration(took)}){inferred}", "green")
        elif event.kind == "failed":
            self._phase_started.pop(phase, None)
            self._say(f"✗ {phase}: {p.get('error', '')}", "red")
        elif event.kind == "pause":
            self._say(f"⏸ paused: {p.get('reason', '')}", "yellow")
        elif event.kind == "probe":
            self._say(
                f"? {phase}: in doubt after an interruption; the world says "
                f"{p.get('status')}" + (f" ({p['reason']})" if p.get("reason") else ""),
                "cyan",
            )
        elif event.kind == "transition":
            to = p.get("to")
            if to == "rolling_back":
                self._say(f"↺ rolling back: {p.get('reason') or ''}".rstrip(": "), "magenta")
            elif to in ("done", "rolled_back", "failed", "rollback_failed", "cancelled"):
                self._say(f"→ {to}", "bold")
        elif event.kind == "measurement":
            if isinstance(p.get("values"), dict):
                self.state.metrics = metric_line(p, self.thresholds)
            if not self.live and self.state.metrics and isinstance(p.get("values"), dict):
                n = int(p.get("round", 0)) + 1
                self._say(f"{event.hotfix_id}: {phase}: round {n}: {self.state.metrics}")
            elif not self.live:
                self._say(f"{event.hotfix_id}: {phase}: measured {_measure(p)}")

    @contextmanager
    def active(self) -> Iterator[ProgressView]:
        """Show the spinner (terminal) and route log lines above it while driving."""
        from hotfix_fsm.log import set_console_writer

        old = set_console_writer(self.write_log_line)
        try:
            if self.live:
                self._console = stderr_console()
                with self._console.status(self, spinner="dots") as status:
                    self._status = status
                    yield self
            else:
                yield self
        finally:
            self._status = None
            self._console = None
            set_console_writer(old)


def metric_line(payload: Any, thresholds: dict[str, str]) -> str:
    """A monitoring round for the live line: each metric's value, its verdict and the
    thresholds it is judged against (``error_rate 0.4 ✓ (ok < 5, fail >= 10)``)."""
    values = payload.get("values") if isinstance(payload, dict) else None
    if not isinstance(values, dict):
        return ""
    verdicts = payload.get("verdicts") if isinstance(payload.get("verdicts"), dict) else {}
    marks = {"success": "✓", "failure": "✗", "error": "?", "inconclusive": "~"}
    parts = []
    for name, value in values.items():
        mark = marks.get(str(verdicts.get(name)), "")
        limits = thresholds.get(name)
        parts.append(
            f"{name} {'-' if value is None else value}"
            + (f" {mark}" if mark else "")
            + (f" ({limits})" if limits else "")
        )
    return ", ".join(parts)


def monitor_thresholds(engine: HotfixEngine, hotfix_id: str) -> dict[str, str]:
    """Each monitored metric's thresholds, from the hotfix's configuration ({} if unknown)."""
    from hotfix_fsm.errors import HotfixError

    try:
        config = engine.config_for(engine.get(hotfix_id))
    except HotfixError:
        return {}
    out = {}
    for metric in config.monitor.metrics:
        limits = [f"ok {metric.success}" if metric.success else ""]
        limits.append(f"fail {metric.failure}" if metric.failure else "")
        out[metric.name] = ", ".join(x for x in limits if x)
    return out


def _measure(p: Any) -> str:
    from hotfix_fsm.reporting.report import measurement_text

    return measurement_text(p)


def drive_with_progress(
    engine: HotfixEngine, hotfix_id: str, action: Callable[[], Outcome]
) -> Outcome:
    """Run ``action`` (a drive, resume or rollback) while showing its progress."""
    from hotfix_fsm.log import get_logger

    log = get_logger("hotfix_fsm.cli")
    view = ProgressView(hotfix_id, thresholds=monitor_thresholds(engine, hotfix_id))

    def on_event(event: Event) -> None:
        if event.kind != "progress":
            log.debug(
                "journal",
                hotfix=event.hotfix_id,
                seq=event.seq,
                kind=event.kind,
                phase=event.phase,
                state=event.state,
                payload=dict(event.payload),
            )
        view.on_event(event)

    unsubscribe = engine.subscribe(on_event)
    try:
        with view.active():
            return action()
    finally:
        unsubscribe()


def outcome_text(outcome: Outcome, status: HotfixStatus | None = None) -> str:
    """Where a drive stopped; with ``status``, the run's summary: PR, deploy run, release
    tag and back-merge PR with their URLs, the time to production against its target."""
    lines = [f"{outcome.hotfix_id}: {outcome.state}"]
    if outcome.paused_reason:
        lines.append(f"  paused: {outcome.paused_reason}")
    if outcome.error and outcome.state in ("failed", "rollback_failed", "rolled_back"):
        lines.append(f"  error: {outcome.error}")
    if status is not None:
        lines += summary_lines(status)
    lines.append(f"  next: {outcome.next_action}")
    return "\n".join(lines)


def summary_lines(status: HotfixStatus) -> list[str]:
    """The end of a run: what it made, with links, and how long production waited."""
    from hotfix_fsm.reporting.report import fmt_duration

    rows: list[tuple[str, str]] = []
    if status.pr_url or status.pr_number:
        number = f" (#{status.pr_number})" if status.pr_number else ""
        rows.append(("PR", f"{status.pr_url or ''}{number}".strip()))
    if status.deploy_run_url or status.deploy_run_id:
        rows.append(("deploy run", str(status.deploy_run_url or status.deploy_run_id)))
    if status.release_tag:
        rows.append(("release tag", status.release_tag))
    if status.backport_pr_url:
        rows.append(("back-merge PR", status.backport_pr_url))
    skipped = next((r.skipped for r in status.phases if r.name == "backport" and r.skipped), None)
    if skipped and not status.backport_pr_url:
        rows.append(("back-merge PR", f"none ({skipped})"))
    if status.revert_pr_url:
        rows.append(("revert PR", status.revert_pr_url))
    if status.rollback_run_url:
        rows.append(("rollback run", status.rollback_run_url))
    if status.time_to_production_s is not None:
        took = fmt_duration(status.time_to_production_s)
        if status.time_target_s:
            verdict = "over" if status.time_to_production_s > status.time_target_s else "within"
            took += f" ({verdict} the {fmt_duration(status.time_target_s)} target)"
        rows.append(("time to production", took))
    elif status.state != "done":
        rows.append(("time to production", "not reached (production never ran the fix verified)"))
    width = max((len(k) for k, _ in rows), default=0)
    return [f"  {k + ':':<{width + 1}} {v}" for k, v in rows]


# -- tables ---------------------------------------------------------------------------------


def _rollback_text(rollback: dict[str, Any], links: dict[str, Any] | None = None) -> str:
    who = f", asked by {rollback['by']}" if rollback.get("by") else ""
    text = f"{rollback.get('reason') or 'no reason given'}{who} ({rollback.get('at')})"
    found = links or {}
    made = [
        f"{what} {found[key]}"
        for key, what in (("revert_pr", "revert PR"), ("rollback_run", "run"))
        if found.get(key)
    ]
    return text + (f"; {', '.join(made)}" if made else "")


def render_status(doc: dict[str, Any]) -> None:
    """The status view: a table sized to the terminal, or whole values in a pipe."""
    from hotfix_fsm.reporting.report import fact_text, fmt_duration

    rows = []
    for row in doc.get("phases", []):
        note = "adopted after probe" if row["inferred"] else (row.get("error") or "")
        if not note and row.get("skipped"):
            note = f"skipped: {row['skipped']}"
        rows.append(
            [
                row["name"],
                row["status"],
                str(row["attempts"]),
                fmt_duration(row["duration_s"]),
                note,
            ]
        )
    head = [f"{doc['id']}  {doc['issue']} — {doc['description']}", f"state: {doc['state']}"]
    paused = doc.get("paused")
    lease = doc.get("lease")
    if not stdout_is_terminal():
        lines = head
        if paused:
            lines.append(f"paused: {paused['reason']}")
        if doc.get("error"):
            lines.append(f"error: {doc['error']}")
        if doc.get("rollback"):
            lines.append(f"rollback: {_rollback_text(doc['rollback'], doc.get('links'))}")
        if lease and lease.get("live"):
            lines.append(_lease_line(lease, str(lease["owner"])))
        lines += [f"  {k}: {fact_text(k, v)}" for k, v in doc.get("facts", {}).items()]
        for line in lines:
            echo(line)
        echo("phases:")
        print_tsv(rows)
        echo(f"next: {doc['next_action']}")
        return
    from rich.table import Table

    console = stdout_console()
    console.print(f"[bold]{_esc(doc['id'])}[/bold]  {_esc(head[0].split('  ', 1)[1])}")
    console.print(f"state: [bold]{_esc(doc['state'])}[/bold]")
    if paused:
        console.print(f"paused: {_esc(paused['reason'])}", style="yellow")
    if doc.get("error"):
        console.print(f"error: {_esc(doc['error'])}", style="red")
    if doc.get("rollback"):
        shown = _rollback_text(doc["rollback"], doc.get("links"))
        console.print(f"rollback: {_esc(shown)}", style="yellow")
    if lease and lease.get("live"):
        console.print(_lease_line(lease, _esc(str(lease["owner"]))))
    for key, value in doc.get("facts", {}).items():
        console.print(f"  {key}: {_esc(fact_text(key, value))}")
    table = Table(title="phases", show_edge=False)
    for col in ("phase", "status", "attempts", "duration", "note"):
        table.add_column(col, overflow="fold" if col == "note" else "ellipsis")
    for row_values in rows:
        table.add_row(*(_esc(v) for v in row_values))
    console.print(table)
    console.print(f"next: {_esc(doc['next_action'])}", style="bold")


def _lease_line(lease: dict[str, Any], owner: str) -> str:
    """Who holds a live lease, and whether that process has ended (on this machine)."""
    if lease.get("holder_gone"):
        return (
            f"held by {owner} since {_when(lease['since'])}; that process on this machine "
            "has ended, so `hotfix resume` takes over at once"
        )
    return f"driven by {owner} since {_when(lease['since'])}"


def _when(iso_text: str | None) -> str:
    return (iso_text or "-").replace("T", " ").replace("Z", " UTC")


def render_list(doc: dict[str, Any]) -> None:
    """Hotfixes as a table on a terminal; tab-separated lines, values whole, in a pipe:
    id, state, updated (ISO 8601 UTC), issue, next action."""
    if not doc["hotfixes"]:
        echo(
            "no hotfixes"
            + (
                ""
                if doc["include_finished"]
                else " in progress (`hotfix list --all` shows finished ones)"
            )
        )
        return
    rows = []
    for item in doc["hotfixes"]:
        state = item["state"] + (
            f" (gate {item['paused_gate']})"
            if item["paused_gate"]
            else " (paused)"
            if item["paused"]
            else ""
        )
        rows.append([item["id"], state, item["updated_at"] or "", item["next_action"]])
    if not stdout_is_terminal():
        print_tsv(rows)
        return
    from rich.table import Table

    console = stdout_console()
    table = Table(show_edge=False)
    for col in ("id", "state", "updated (UTC)", "next"):
        table.add_column(col, no_wrap=col == "id", overflow="fold")
    for row in rows:
        table.add_row(*(_esc(v) for v in row))
    console.print(table)


def render_log(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> None:
    """The journal as a table on a terminal; tab-separated lines (seq, ISO time, kind,
    event), values whole, in a pipe."""
    from hotfix_fsm.reporting.report import iso, summarize

    piped = not stdout_is_terminal()
    rows = [[str(e.seq), iso(e.at) or "", e.kind, summarize(e, full=piped)] for e in journal]
    if piped:
        print_tsv(rows)
        return
    from rich.table import Table

    console = stdout_console()
    table = Table(title=f"journal of {_esc(hotfix.id)}", show_edge=False)
    for col in ("#", "time (UTC)", "kind", "event"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_esc(v) for v in row))
    console.print(table)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(clean(text))


__all__ = [
    "ProgressView",
    "clean",
    "drive_with_progress",
    "echo",
    "error_text",
    "metric_line",
    "monitor_thresholds",
    "no_color",
    "outcome_text",
    "print_json",
    "print_tsv",
    "render_list",
    "render_log",
    "render_status",
    "summary_lines",
]
