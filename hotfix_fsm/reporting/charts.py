"""Pictures of a hotfix: the phase timeline and each monitored metric with its thresholds.

The data comes from the journal only: phase spans from ``phase_rows`` (intent to done,
failed or paused), metric series from the ``measurement`` rows of phase ``monitor`` (one
series per monitoring window and metric) and the thresholds the window was judged with
(the ``rules`` saved in the ``monitor_window`` fact when the window opened).

Two renderings of the same data: Mermaid (``gantt`` and ``xychart-beta``, which GitHub
renders in the Markdown post-mortem) and plain SVG generated here (for the HTML report and
the dashboard, which must work offline and under a strict Content-Security-Policy: no
script, no inline ``style`` attribute — only presentation attributes). Every text that a
person typed (a description, a metric name, a gate name) is escaped for its target:
``mermaid_text`` keeps only characters that cannot end a Mermaid token, ``html.escape``
for SVG. Every text is redacted first.
"""

from __future__ import annotations

import html
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
VERDICT_COLOR = {
    "success": "#2e7d32",
    "failure": "#c62828",
    "error": "#6a1b9a",
    "inconclusive": "#ef6c00",
    "ignored": "#757575",
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


# -- SVG ----------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(redact(str(text)), quote=True)


def gantt_svg(spans: Sequence[Span], *, width: int = 760) -> str:
    """The phase timeline as a standalone SVG element (no script, no style attribute)."""
    row_h, left, right, top = 22, 190, 90, 24
    height = top + row_h * max(1, len(spans)) + 24
    if not spans:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40" '
            f'role="img" aria-label="no phase ran"><text x="8" y="24" font-size="13">'
            "no phase ran</text></svg>"
        )
    t0 = min(s.start for s in spans)
    t1 = max(s.end for s in spans)
    scale = (width - left - right) / max(t1 - t0, 1e-3)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="phase timeline" '
        'class="chart gantt" font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="14" fill="#444">{_e(time.strftime("%H:%M:%S", time.gmtime(t0)))}'
        f' UTC</text><text x="{width - right}" y="14" text-anchor="end" fill="#444">'
        f"+{_e(fmt_duration(t1 - t0))}</text>",
    ]
    for i, span in enumerate(spans):
        y = top + i * row_h
        x = left + (span.start - t0) * scale
        w = max(2.0, span.duration * scale)
        color = STATUS_COLOR.get(span.status, "#1565c0")
        out.append(
            f'<g class="span" data-phase="{_e(span.name)}" data-status="{_e(span.status)}">'
            f"<title>{_e(span.name)}: {_e(span.status)}, {_e(fmt_duration(span.duration))}</title>"
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{_e(span.name[:28])}</text>'
            f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" rx="3" '
            f'fill="{color}"/>'
            f'<text x="{min(x + w + 4, width - right + 4):.1f}" y="{y + 15}" fill="#333">'
            f"{_e(fmt_duration(span.duration))}</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def line_svg(series: Series, *, width: int = 760, height: int = 220) -> str:
    """One metric as an SVG line chart with its thresholds as dashed lines."""
    left, right, top, bottom = 56, 120, 28, 30
    points = series.numeric
    success, failure = series.threshold("success"), series.threshold("failure")
    values = [v for _, v in points]
    limits = [x for x in (success, failure) if x is not None]
    low = min([*values, *limits, 0.0])
    high = max([*values, *limits, 1.0])
    span_y = (high - low) or 1.0
    high += span_y * 0.1
    t_max = max([t for t, _, _ in series.points] + [1.0])
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(t: float) -> float:
        return left + t / t_max * plot_w

    def sy(v: float) -> float:
        return top + (high - v) / (high - low) * plot_h

    title = f"{series.metric} — window {series.window} ({_limits_text(series)})"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}" '
        f'class="chart metric" data-metric="{_e(series.metric)}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="{left}" y="16" font-weight="bold">{_e(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#888"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#888"/>',
    ]
    for v in (low, (low + high) / 2, high):
        out.append(
            f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" fill="#555">'
            f"{_e(_num(round(v, 2)))}</text>"
        )
    out.append(
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end" fill="#555">'
        f"{_e(_num(round(t_max, 1)))}s into the window</text>"
    )
    for name, limit, color in (("success", success, "#2e7d32"), ("failure", failure, "#c62828")):
        if limit is None:
            continue
        cond = series.success if name == "success" else series.failure
        out.append(
            f'<g class="threshold" data-threshold="{name}"><line x1="{left}" y1="{sy(limit):.1f}" '
            f'x2="{left + plot_w}" y2="{sy(limit):.1f}" stroke="{color}" stroke-dasharray="6 4"/>'
            f'<text x="{left + plot_w + 6}" y="{sy(limit) + 4:.1f}" fill="{color}">'
            f"{name} {_e(cond)}</text></g>"
        )
    if len(points) > 1:
        path = " ".join(f"{sx(t):.1f},{sy(y):.1f}" for t, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="2"/>')
    for t, maybe, verdict in series.points:
        if maybe is None:
            continue
        color = VERDICT_COLOR.get(verdict, "#1565c0")
        out.append(
            f'<circle cx="{sx(t):.1f}" cy="{sy(maybe):.1f}" r="3.5" fill="{color}">'
            f"<title>{_e(_num(round(t, 1)))}s: {_e(_num(maybe))} ({_e(verdict or '?')})</title>"
            "</circle>"
        )
    note = metric_note(series)
    if note:
        out.append(f'<text x="{left + 4}" y="{top + 14}" fill="#6a1b9a">{_e(note)}</text>')
    out.append("</svg>")
    return "".join(out)


__all__ = [
    "Series",
    "Span",
    "condition_words",
    "gantt_mermaid",
    "gantt_svg",
    "line_svg",
    "mermaid_text",
    "metric_note",
    "metric_series",
    "phase_spans",
    "xychart_mermaid",
]
