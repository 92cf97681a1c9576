"""The pictures of a hotfix drawn by matplotlib: the phase timeline and each monitored metric.

``charts`` holds the data (phase spans, metric series and their thresholds) and its Mermaid
form; this module draws the same data as SVG documents with matplotlib (its object API and
SVG canvas: no ``pyplot``, no GUI backend, no global figure registry), on the server. A page
shows them as ``<img>`` (the HTML report as ``data:`` URLs, the dashboard from its own
``/charts/...`` route), so the page needs no script to show a chart and its
Content-Security-Policy stays strict; an SVG shown as an image never runs script.

Text is kept as text (``svg.fonttype = none``: searchable, and the reader's fonts), math
parsing is off (a ``$`` in a metric name stays a dollar), and the files are reproducible
(fixed ids, no date). Every text that reaches a chart (a phase name, a metric name, a
condition) is redacted and its control characters escaped first (``sanitize``); a
character the bundled font has no glyph for becomes ``?`` instead of a warning. The XML
writer escapes the rest (``<``, ``&``). Each chart also has its words (``alt`` and a caption)
for the page around it.

matplotlib's settings are process-wide: each drawing takes a lock and applies its settings
only for its duration (``rc_context``), so a program that imports this library and draws its
own figures keeps its own settings.
"""

from __future__ import annotations

import base64
import html
import io
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font

from hotfix_fsm.core.redact import redact
from hotfix_fsm.core.sanitize import sanitize
from hotfix_fsm.reporting.charts import (
    STATUS_COLOR,
    Series,
    Span,
    condition_words,
    metric_note,
    metric_series,
    phase_spans,
)
from hotfix_fsm.reporting.report import fmt_duration

WIDTH_INCHES = 7.6
LINE_COLOR = "#1565c0"
SUCCESS_COLOR = "#2e7d32"
FAILURE_COLOR = "#c62828"
GRID_COLOR = "#e3e3e3"
SVG_MEDIA_TYPE = "image/svg+xml"
# Served on its own, a chart needs its own <style> and style attributes, nothing else.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_drawing = threading.Lock()


@cache
def _glyphs() -> frozenset[int]:
    """The code points the font the charts are laid out with can draw."""
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    return frozenset(FT2Font(path).get_charmap())


def plain(text: Any, limit: int = 80) -> str:
    """Outside text for a chart and its words: redacted, controls escaped, whitespace
    collapsed, cut to ``limit`` (``_drawable`` then replaces glyphs the font lacks)."""
    cleaned = " ".join(sanitize(redact(str(text))).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned


def _drawable(text: str) -> str:
    """``text`` with each character the font cannot draw as ``?`` (no missing-glyph warning)."""
    glyphs = _glyphs()
    return "".join(ch if ord(ch) in glyphs else "?" for ch in text)


@contextmanager
def _figure(height_inches: float) -> Iterator[Figure]:
    with (
        _drawing,
        matplotlib.rc_context(
            {
                "svg.fonttype": "none",
                "svg.hashsalt": "hotfix-fsm",
                "text.parse_math": False,
                "text.usetex": False,
                "font.family": "sans-serif",
                "font.sans-serif": ["DejaVu Sans"],
                "font.size": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "axes.titlesize": 10,
                "axes.titlelocation": "left",
                "legend.frameon": False,
                "legend.fontsize": 8,
            }
        ),
    ):
        yield Figure(figsize=(WIDTH_INCHES, height_inches), dpi=100, layout="constrained")


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _limits(series: Series) -> list[tuple[str, str, float, str]]:
    """(which, label, value, colour) of each numeric threshold the window was judged with."""
    out = []
    for which, color in (("success", SUCCESS_COLOR), ("failure", FAILURE_COLOR)):
        value = series.threshold(which)
        if value is not None:
            cond = series.success if which == "success" else series.failure
            out.append((which, f"{which} when {condition_words(cond)}", value, color))
    return out


def metric_title(series: Series) -> str:
    return plain(f"{series.metric} — window {series.window}", 100)


def metric_caption(series: Series) -> str:
    """The chart in words: thresholds, rounds, the last value, what could not be drawn."""
    limits = "; ".join(
        f"{which} when {condition_words(cond)}"
        for which, cond in (("success", series.success), ("failure", series.failure))
        if cond
    )
    numeric = series.numeric
    last = f", last value {numeric[-1][1]:g}" if numeric else ""
    failing = sum(1 for _, _, verdict in series.points if verdict == "failure")
    words = [f"{len(series.points)} rounds{last}", limits or "no thresholds recorded"]
    if failing:
        words.append(f"{failing} judged failure")
    note = metric_note(series)
    if note:
        words.append(note)
    return plain(f"{metric_title(series)}: " + ", ".join(words), 400)


def metric_svg(series: Series) -> str:
    """One metric over its window: a line (broken where a round had no number), each
    threshold as a dashed line, the rounds judged failure as red points."""
    limits = _limits(series)
    t_max = max([t for t, _, _ in series.points] + [1.0])
    xs = [t for t, _, _ in series.points]
    ys = [math.nan if v is None else v for _, v, _ in series.points]
    failing = [(t, v) for t, v, verdict in series.points if v is not None and verdict == "failure"]
    with _figure(2.8) as figure:
        ax = figure.add_subplot()
        ax.set_title(_drawable(metric_title(series)))
        ax.plot(
            xs,
            ys,
            color=LINE_COLOR,
            gid="metric",
            marker="o",
            markersize=3,
            linewidth=1.8,
            label=_drawable(plain(series.metric, 40)),
        )
        for which, label, value, color in limits:
            ax.axhline(
                value,
                color=color,
                gid=f"threshold-{which}",
                linestyle="--",
                linewidth=1.2,
                label=_drawable(plain(label, 40)),
            )
        if failing:
            ax.scatter(
                [t for t, _ in failing],
                [v for _, v in failing],
                s=36,
                color=FAILURE_COLOR,
                gid="judged-failure",
                zorder=3,
                label="judged failure",
            )
        ax.set_xlim(0.0, t_max * 1.03)
        low = min([v for v in ys if not math.isnan(v)] + [x for _, _, x, _ in limits] + [0.0])
        if series.numeric or limits:
            ax.set_ylim(bottom=low)
        else:
            ax.set_ylim(0.0, 1.0)
        ax.set_xlabel("seconds into the window")
        ax.grid(axis="y", color=GRID_COLOR, linewidth=0.6)
        if not series.numeric:
            ax.text(
                0.5,
                0.5,
                "no round with a numeric value yet",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#666",
            )
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _svg(figure)


def timeline_svg(spans: Sequence[Span]) -> str:
    """The phases as horizontal bars on one time axis (seconds since the first started),
    coloured by how each ended, labelled with name and status, the duration beside each."""
    rows = len(spans)
    with _figure(0.9 + 0.27 * max(1, rows)) as figure:
        ax = figure.add_subplot()
        ax.set_title("Phase timeline")
        if not spans:
            ax.text(
                0.5,
                0.5,
                "no phase ran yet",
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#666",
            )
            ax.set_axis_off()
            return _svg(figure)
        t0 = min(s.start for s in spans)
        total = max(max(s.end for s in spans) - t0, 1.0)
        shortest = total * 0.004  # an instant phase still shows as a sliver
        bars = ax.barh(
            range(rows),
            [max(s.duration, shortest) for s in spans],
            left=[s.start - t0 for s in spans],
            color=[STATUS_COLOR.get(s.status, LINE_COLOR) for s in spans],
            height=0.6,
        )
        for i, bar in enumerate(bars):
            bar.set_gid(f"phase-{i}")
        for i, span in enumerate(spans):
            ax.text(
                span.end - t0 + total * 0.01,
                i,
                fmt_duration(span.duration),
                va="center",
                fontsize=8,
                color="#333",
            )
        ax.set_yticks(
            range(rows), labels=[_drawable(plain(f"{s.name} ({s.status})", 40)) for s in spans]
        )
        ax.invert_yaxis()
        ax.set_xlim(0.0, total * 1.12)
        started = time.strftime("%H:%M:%S", time.gmtime(t0))
        ax.set_xlabel(f"seconds since {started} UTC")
        ax.grid(axis="x", color=GRID_COLOR, linewidth=0.6)
        ax.set_axisbelow(True)
        return _svg(figure)


def timeline_caption(spans: Sequence[Span]) -> str:
    if not spans:
        return "no phase ran yet"
    total = max(s.end for s in spans) - min(s.start for s in spans)
    return plain(
        "; ".join(f"{s.name} {s.status} in {fmt_duration(s.duration)}" for s in spans)
        + f" (all: {fmt_duration(total)})",
        2000,
    )


@dataclass(frozen=True)
class Picture:
    """One chart of a hotfix: its key (``timeline``, ``metric-0``, …), words, and drawing."""

    key: str
    kind: str  # "timeline" or "metric"
    metric: str  # the metric's name ("" for the timeline)
    alt: str
    caption: str
    has_data: bool  # a phase ran / a round had a numeric value
    draw: Callable[[], str]

    def svg(self) -> str:
        return self.draw()


def pictures(journal: Sequence[Any], *, now: float | None = None) -> list[Picture]:
    """The timeline, then one chart per (monitoring window, metric), in journal order."""
    spans = phase_spans(journal, now=now)
    out = [
        Picture(
            key="timeline",
            kind="timeline",
            metric="",
            alt="Phase timeline",
            caption=timeline_caption(spans),
            has_data=bool(spans),
            draw=lambda: timeline_svg(spans),
        )
    ]
    for i, series in enumerate(metric_series(journal)):
        out.append(
            Picture(
                key=f"metric-{i}",
                kind="metric",
                metric=plain(series.metric, 80),
                alt=metric_title(series),
                caption=metric_caption(series),
                has_data=bool(series.numeric),
                draw=partial(metric_svg, series),
            )
        )
    return out


def figure(picture: Picture, src: str) -> str:
    """The HTML around a chart: the image, its words as ``alt`` and as a caption."""
    e = html.escape
    metric = f' data-metric="{e(picture.metric)}"' if picture.kind == "metric" else ""
    return (
        f'<figure class="chart {e(picture.kind)}" data-chart="{e(picture.key)}"{metric}>'
        f'<img src="{e(src)}" alt="{e(picture.alt)}">'
        f"<figcaption>{e(picture.caption)}</figcaption></figure>"
    )


def data_url(svg: str) -> str:
    """An SVG document as a ``data:`` URL (a self-contained page's image source)."""
    return f"data:{SVG_MEDIA_TYPE};base64," + base64.b64encode(svg.encode("utf-8")).decode()


__all__ = [
    "SVG_CSP",
    "SVG_MEDIA_TYPE",
    "Picture",
    "data_url",
    "figure",
    "metric_caption",
    "metric_svg",
    "pictures",
    "plain",
    "timeline_caption",
    "timeline_svg",
]
