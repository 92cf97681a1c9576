"""Terminal output of the ``hotfix`` command: tables, live progress, outcome and error text.

rich renders tables and the live progress line (a spinner with the current phase, what is
being waited for and the elapsed time) when stderr is a terminal; otherwise progress becomes
plain, throttled log lines so CI logs and pipes stay readable. rich is imported inside the
functions that draw, so commands that print JSON or plain text never pay for it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from hotfix_fsm.core.redact import redact, redact_obj

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from hotfix_fsm.core.outcome import Event, Outcome
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.store import Hotfix, JournalEntry

# Plain (non-terminal) progress: repeat an unchanged wait message at most this often.
PLAIN_PROGRESS_EVERY = 10.0


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def echo(text: str = "", *, err: bool = False) -> None:
    """Print redacted plain text to stdout (or stderr)."""
    stream: TextIO = sys.stderr if err else sys.stdout
    stream.write(redact(text) + "\n")
    stream.flush()


def print_json(doc: Any) -> None:
    """A stable JSON document on stdout (sorted keys, redacted)."""
    sys.stdout.write(json.dumps(redact_obj(doc), indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def error_text(exc: Exception) -> str:
    """The user-facing text of a HotfixError: what happened, where, and what to do."""
    return redact(f"hotfix: error: {exc}")


# -- live progress --------------------------------------------------------------------------


@dataclass
class _LiveState:
    hotfix_id: str
    phase: str = "starting"
    waiting: str = ""
    phase_started: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)


class ProgressView:
    """Receives engine events; draws a spinner on a terminal, plain lines otherwise."""

    def __init__(
        self, hotfix_id: str, *, live: bool | None = None, stream: TextIO | None = None
    ) -> None:
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
        what = f" — {s.waiting}" if s.waiting else ""
        line = redact(f"{s.hotfix_id} · {s.phase}{what} · {elapsed:.1f}s")
        return Text(line, style="none", no_wrap=True, overflow="ellipsis")

    def _say(self, text: str, style: str = "") -> None:
        text = redact(text)
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
                    suffix = f" ({elapsed}s)" if elapsed is not None else ""
                    self._say(f"{event.hotfix_id}: {phase}: {message}{suffix}")
        elif event.kind == "done":
            took = now - self._phase_started.pop(phase, now)
            inferred = (
                " (adopted after a probe: it had already happened)" if p.get("inferred") else ""
            )
            self._say(f"✓ {phase} ({took:.1f}s){inferred}", "green")
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
        elif event.kind == "measurement" and not self.live:
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


def _measure(p: Any) -> str:
    from hotfix_fsm.reporting.report import measurement_text

    return measurement_text(p)


def drive_with_progress(
    engine: HotfixEngine, hotfix_id: str, action: Callable[[], Outcome]
) -> Outcome:
    """Run ``action`` (a drive, resume or rollback) while showing its progress."""
    from hotfix_fsm.log import get_logger

    log = get_logger("hotfix_fsm.cli")
    view = ProgressView(hotfix_id)

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


def outcome_text(outcome: Outcome) -> str:
    lines = [f"{outcome.hotfix_id}: {outcome.state}"]
    if outcome.paused_reason:
        lines.append(f"  paused: {outcome.paused_reason}")
    if outcome.error and outcome.state in ("failed", "rollback_failed", "rolled_back"):
        lines.append(f"  error: {outcome.error}")
    lines.append(f"  next: {outcome.next_action}")
    return "\n".join(lines)


# -- tables ---------------------------------------------------------------------------------


def render_status(doc: dict[str, Any]) -> None:
    from rich.table import Table

    from hotfix_fsm.reporting.report import fmt_duration

    console = stdout_console()
    console.print(f"[bold]{doc['id']}[/bold]  {doc['issue']} — {_esc(doc['description'])}")
    console.print(f"state: [bold]{doc['state']}[/bold]")
    if doc.get("paused"):
        console.print(f"paused: {_esc(doc['paused']['reason'])}", style="yellow")
    if doc.get("error"):
        console.print(f"error: {_esc(doc['error'])}", style="red")
    lease = doc.get("lease")
    if lease and lease.get("live"):
        console.print(f"driven by {lease['owner']} since {lease['since']}")
    for key, value in doc.get("facts", {}).items():
        console.print(
            f"  {key}: {_esc(json.dumps(value) if isinstance(value, dict) else str(value))}"
        )
    table = Table(title="phases", show_edge=False)
    for col in ("phase", "status", "attempts", "duration", "note"):
        table.add_column(col)
    for row in doc.get("phases", []):
        note = "adopted after probe" if row["inferred"] else (row.get("error") or "")
        if not note and row.get("skipped"):
            note = f"skipped: {row['skipped']}"
        table.add_row(
            row["name"],
            row["status"],
            str(row["attempts"]),
            fmt_duration(row["duration_s"]),
            _esc(note[:80]),
        )
    console.print(table)
    console.print(f"next: {_esc(doc['next_action'])}", style="bold")


def render_list(doc: dict[str, Any]) -> None:
    from rich.table import Table

    console = stdout_console()
    if not doc["hotfixes"]:
        console.print(
            "no hotfixes"
            + (
                ""
                if doc["include_finished"]
                else " in progress (`hotfix list --all` shows finished ones)"
            )
        )
        return
    table = Table(show_edge=False)
    for col in ("id", "state", "updated (UTC)", "next"):
        table.add_column(col)
    for item in doc["hotfixes"]:
        state = item["state"] + (
            f" (gate {item['paused_gate']})"
            if item["paused_gate"]
            else " (paused)"
            if item["paused"]
            else ""
        )
        table.add_row(item["id"], state, item["updated_at"] or "", _esc(item["next_action"]))
    console.print(table)


def render_log(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> None:
    from rich.table import Table

    from hotfix_fsm.reporting.report import iso, summarize

    console = stdout_console()
    table = Table(title=f"journal of {hotfix.id}", show_edge=False)
    for col in ("#", "time (UTC)", "kind", "event"):
        table.add_column(col)
    for entry in journal:
        table.add_row(str(entry.seq), iso(entry.at) or "", entry.kind, _esc(summarize(entry)))
    console.print(table)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(redact(text))


__all__ = [
    "ProgressView",
    "drive_with_progress",
    "echo",
    "error_text",
    "outcome_text",
    "print_json",
    "render_list",
    "render_log",
    "render_status",
]
