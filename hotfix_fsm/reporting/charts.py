"""Pictures of a hotfix: the phase timeline and each monitored metric with its thresholds.

The data comes from the journal only: phase spans from ``phase_rows`` (intent to done,
failed or paused), metric series from the ``measurement`` rows of phase ``monitor`` (one
series per monitoring window and metric) and the thresholds the window was judged with
(the ``rules`` saved in the ``monitor_window`` fact when the window opened).

Two renderings of the same data: Mermaid here (``gantt`` and ``xychart-beta``, which GitHub
renders in the Markdown post-mortem), and SVG drawn by pygal in ``pictures`` (for the HTML
report and the dashboard). Every text that a person typed (a description, a metric name, a
gate name) is redacted, then made safe for Mermaid by ``mermaid_text``, which keeps only
characters that cannot end a Mermaid token.
"""

from __future__ import annotations

import math
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hotfix_fsm.core.analysis import as_number, parse_condition
from hotfix_fsm.core.redact import redact
from hotfix_fsm.reporting.report import fmt_duration, phase_rows
from hotfix_fsm.store import JournalEntry

# Characters kept in a Mermaid label besides letters and digits: none of them opens or
# closes a Mermaid token (no quote, colon, semicolon, hash, percent, brackets, pipe, angle
# brackets, backslash, backtick, ampersand).
_MERMAID_SAFE = frozenset(" _-.,/()+=@'!?*~")
STATUS_COLOR = {
    "done": "#2e7d32",
    "running": "#1565c0",
    "paused": "#ef6c00",
    "failed": "#c62828",
}


@dataclass(frozen=True)
class Span:
    """One phase (or gate) from its first intent to its last end, in epoch seconds."""

    name: str
    status: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class Series:
    """One metric over one monitoring window."""

    metric: str
    window: str
    started_at: float
    # (seconds into the window, value or None when not numeric/missing, verdict)
    points: list[tuple[float, float | None, str]] = field(default_factory=list)
    success: str = ""  # the condition text, e.g. "< 5"
    failure: str = ""

    def threshold(self, which: str) -> float | None:
        """The numeric limit of the success or failure condition, if it has one."""
        text = self.success if which == "success" else self.failure
        try:
            cond = parse_condition(text)
        except ValueError:
            return None
        return cond.value if cond is not None and isinstance(cond.value, float) else None

    @property
    def numeric(self) -> list[tuple[float, float]]:
        return [(t, v) for t, v, _ in self.points if v is not None]


# -- data ---------------------------------------------------------------------------------


def phase_spans(journal: Sequence[JournalEntry], now: float | None = None) -> list[Span]:
    """Every phase that started, in order; a running one ends at ``now`` (or the last row)."""
    last = journal[-1].at if journal else time.time()
    until = last if now is None else max(now, last)
    spans = []
    for row in phase_rows(journal):
        if row.started_at is None:
            continue
        end = row.ended_at if row.ended_at is not None else until
        spans.append(Span(row.name, row.status, row.started_at, max(end, row.started_at)))
    return spans


def _window_rules(journal: Sequence[JournalEntry]) -> dict[str, dict[str, Any]]:
    """Window id -> the rules it was judged with (saved when the window opened)."""
    found: dict[str, dict[str, Any]] = {}
    for entry in journal:
        facts = entry.payload.get("facts") if entry.kind == "note" else None
        window = facts.get("monitor_window") if isinstance(facts, dict) else None
        if isinstance(window, dict) and isinstance(window.get("rules"), dict):
            found[str(window.get("id"))] = window["rules"]
    return found


def metric_series(journal: Sequence[JournalEntry]) -> list[Series]:
    """One series per (monitoring window, metric), in the order they were first measured."""
    rules = _window_rules(journal)
    out: dict[tuple[str, str], Series] = {}
    starts: dict[str, float] = {}
    for entry in journal:
        p = entry.payload
        if entry.kind != "measurement" or entry.phase != "monitor":
            continue
        if not isinstance(p.get("values"), dict):
            continue
        window = str(p.get("window", ""))
        at = as_number(p.get("at")) or entry.at
        start = starts.setdefault(window, at)
        raw_verdicts = p.get("verdicts")
        verdicts: dict[str, Any] = raw_verdicts if isinstance(raw_verdicts, dict) else {}
        for name, value in p["values"].items():
            key = (window, str(name))
            series = out.get(key)
            if series is None:
                rule = rules.get(window, {}).get(name)
                rule = rule if isinstance(rule, dict) else {}
                series = Series(
                    metric=str(name),
                    window=window,
                    started_at=start,
                    success=str(rule.get("success") or ""),
                    failure=str(rule.get("failure") or ""),
                )
                out[key] = series
            number = as_number(value)
            if number is not None and not math.isfinite(number):
                number = None
            series.points.append((at - series.started_at, number, str(verdicts.get(name, ""))))
    return list(out.values())


# -- Mermaid ------------------------------------------------------------------------------


def mermaid_text(text: Any, limit: int = 80) -> str:
    """``text`` made safe inside any Mermaid label: redacted, control characters and
    syntax characters replaced by spaces, whitespace collapsed, cut to ``limit``."""
    out = []
    for ch in redact(str(text)):
        if (ch.isalnum() and unicodedata.category(ch)[0] in "LN") or ch in _MERMAID_SAFE:
            out.append(ch)
        else:
            out.append(" ")
    cleaned = " ".join("".join(out).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned or "-"


def _num(value: float) -> str:
    """A number as Mermaid and SVG read it: plain decimal, no exponent."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


def gantt_mermaid(spans: Sequence[Span], title: str) -> str:
    """A Mermaid ``gantt`` of the phases (times in epoch milliseconds, shown as UTC)."""
    lines = [
        "gantt",
        f"    title {mermaid_text(title)}",
        "    dateFormat x",
        "    axisFormat %H:%M:%S",
        "    section Phases",
    ]
    tags = {"done": "done", "running": "active", "failed": "crit", "paused": "crit"}
    for i, span in enumerate(spans):
        label = f"{mermaid_text(span.name, 40)} {span.status} {fmt_duration(span.duration)}"
        start = int(span.start * 1000)
        end = max(int(span.end * 1000), start + 1)
        lines.append(f"    {label} :{tags.get(span.status, 'active')}, p{i}, {start}, {end}")
    return "\n".join(lines)


_OP_WORDS = {
    "<": "below",
    "<=": "at most",
    ">": "above",
    ">=": "at least",
    "==": "equal to",
    "!=": "not",
}


def condition_words(text: str) -> str:
    """``"< 5"`` as ``"below 5"``: the same condition without Mermaid-breaking operators."""
    try:
        cond = parse_condition(text)
    except ValueError:
        return text
    if cond is None:
        return ""
    value = _num(cond.value) if isinstance(cond.value, float) else cond.value
    return f"{_OP_WORDS.get(cond.op, cond.op)} {value}"


def _limits_text(series: Series) -> str:
    bits = []
    if series.success:
        bits.append(f"success when {condition_words(series.success)}")
    if series.failure:
        bits.append(f"failure when {condition_words(series.failure)}")
    return ", ".join(bits) if bits else "no thresholds recorded"


def xychart_mermaid(series: Series) -> str:
    """A Mermaid ``xychart-beta``: the metric's line, and one flat line per threshold."""
    points = series.numeric
    values = [v for _, v in points]
    limits = [
        x for x in (series.threshold("success"), series.threshold("failure")) if x is not None
    ]
    low = min([*values, *limits, 0.0])
    high = max([*values, *limits, 1.0])
    pad = (high - low) * 0.1 or 1.0
    title = f"{series.metric} (window {series.window}, {_limits_text(series)})"
    lines = [
        "xychart-beta",
        f'    title "{mermaid_text(title, 120)}"',
        "    x-axis [" + ", ".join(f'"{_num(round(t, 1))}s"' for t, _ in points) + "]",
        f'    y-axis "{mermaid_text(series.metric, 40)}" {_num(low - pad if low < 0 else low)} '
        f"--> {_num(high + pad)}",
        "    line [" + ", ".join(_num(v) for v in values) + "]",
    ]
    for limit in limits:
        lines.append("    line [" + ", ".join(_num(limit) for _ in points) + "]")
    return "\n".join(lines)


def metric_note(series: Series) -> str:
    """What a chart cannot show: rounds without a numeric value."""
    missing = len(series.points) - len(series.numeric)
    if not series.points:
        return "no round was measured"
    if missing:
        return f"{missing} of {len(series.points)} rounds had no numeric value (not plotted)"
    return ""


__all__ = [
    "Series",
    "Span",
    "condition_words",
    "gantt_mermaid",
    "mermaid_text",
    "metric_note",
    "metric_series",
    "phase_spans",
    "xychart_mermaid",
]
