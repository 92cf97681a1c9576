"""The post-mortem's pictures: a Mermaid gantt and xychart per metric; `--html` draws them as SVG
images (matplotlib) in ``data:`` URLs.

Hostile text (quotes, Mermaid comment and statement separators, HTML) goes through every
label; the Mermaid lines must keep their grammar and the HTML must show it as text.
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hotfix_fsm.config import load_config
from hotfix_fsm.core.analysis import parse_condition
from hotfix_fsm.errors import ExitCode
from hotfix_fsm.reporting.charts import metric_series
from hotfix_fsm.reporting.html_report import render_html
from hotfix_fsm.reporting.postmortem import render_markdown
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.store import JournalEntry
from tests.cli.conftest import Cli
from tests.cli.test_report import Journal, _happy, _hotfix

HOSTILE = 'x"]; click a call alert(1) %%\n<img src=x onerror=alert(1)>#:;`|{}\x07'
SUCCESS, FAILURE = "< 5", ">= 10"
VALUES = [0.5, 2.0, None, 7.5]

# A Mermaid label may hold none of these (they end or open a token, or start a comment).
_BREAKERS = set('"`:;#%<>[]{}|\\&') | {chr(c) for c in range(32)}
_GANTT_TASK = re.compile(r"^    ([^:;#%\"<>]+) :(done|active|crit), p\d+, (\d+), (\d+)$")


def _mermaid_blocks(markdown: str) -> list[list[str]]:
    blocks, current = [], None
    for line in markdown.splitlines():
        if line == "```mermaid":
            current = []
        elif line == "```" and current is not None:
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _numbers(line: str) -> list[float]:
    inner = line.split("[", 1)[1].rsplit("]", 1)[0]
    return [float(x) for x in inner.split(",")]


def _monitored(metric: str) -> Journal:
    j = _happy()
    done = j.rows.pop()  # the monitor's done row: re-added after the rounds
    start = j.rows[-2].at
    j.add(
        "note",
        "monitor",
        {
            "facts": {
                "monitor_window": {
                    "id": "w2",
                    "started_at": start,
                    "rules": {metric: {"success": SUCCESS, "failure": FAILURE}},
                }
            }
        },
    )
    for k, value in enumerate(VALUES):
        j.add(
            "measurement",
            "monitor",
            {
                "window": "w2",
                "round": k,
                "at": start + k,
                "values": {metric: value},
                "verdicts": {metric: "success" if value is not None else "error"},
            },
        )
    j.rows.append(
        JournalEntry(done.hotfix_id, len(j.rows) + 1, done.at, done.kind, done.phase, 1, None, {})
    )
    return j


def test_markdown_has_a_gantt_and_a_chart_per_metric_with_thresholds_and_escaped_labels() -> None:
    metric = "latency " + HOSTILE
    hotfix = replace(_hotfix(), description="Fix " + HOSTILE)
    journal = _monitored(metric)
    text = render_markdown(hotfix, journal.rows)
    blocks = _mermaid_blocks(text)
    charts = [b for b in blocks if b[0] == "xychart-beta"]
    gantts = [b for b in blocks if b[0] == "gantt"]
    assert len(gantts) == 1
    # One chart per (window, metric) with numeric values: w (error_rate) and w2 (the hostile one).
    assert len(charts) == len([s for s in metric_series(journal.rows) if s.numeric]) == 2
    hostile_chart = next(c for c in charts if "latency" in c[1])
    for block in blocks:
        for line in block[1:]:
            if line.lstrip().startswith(("title", "y-axis")):
                label = line.split('"')[1] if '"' in line else line.split("title", 1)[1]
                assert not set(label) & _BREAKERS, line
                assert line.count('"') in (0, 2), line
    lines = [line.strip() for line in hostile_chart]
    series_lines = [line for line in lines if line.startswith("line [")]
    measured = [v for v in VALUES if v is not None]
    assert _numbers(series_lines[0]) == measured
    limits = {_numbers(line)[0] for line in series_lines[1:]}
    expected = set()
    for text_cond in (SUCCESS, FAILURE):
        cond = parse_condition(text_cond)
        assert cond is not None
        expected.add(float(cond.value))
    assert limits == expected
    assert all(len(_numbers(line)) == len(measured) for line in series_lines)
    assert "1 of 4 rounds had no numeric value" in text
    tasks = gantts[0][5:]
    assert tasks
    assert all(_GANTT_TASK.match(t) for t in tasks), tasks
    for task in tasks:
        m = _GANTT_TASK.match(task)
        assert m is not None
        assert int(m.group(3)) < int(m.group(4))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, Any]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _images(parser: _Tags) -> list[tuple[dict[str, Any], ET.Element]]:
    """Each chart of an HTML report: its figure's attributes and its SVG, decoded from the
    ``data:`` URL and parsed (well-formed XML, whatever the texts held)."""
    figures = [a for t, a in parser.tags if t == "figure"]
    sources = [str(a.get("src")) for t, a in parser.tags if t == "img"]
    assert len(figures) == len(sources)
    out = []
    for figure, src in zip(figures, sources, strict=True):
        prefix = "data:image/svg+xml;base64,"
        assert src.startswith(prefix), src[:80]
        root = ET.fromstring(base64.b64decode(src[len(prefix) :]))  # noqa: S314 - our own chart
        tags = {e.tag.rpartition("}")[2] for e in root.iter()}
        assert "script" not in tags
        assert "foreignObject" not in tags
        assert not [k for e in root.iter() for k in e.attrib if k.lower().startswith("on")]
        out.append((figure, root))
    return out


def test_html_report_draws_the_same_pictures_and_shows_hostile_text_as_text() -> None:
    metric = "latency " + HOSTILE
    hotfix = replace(_hotfix(), description="Fix " + HOSTILE)
    journal = _monitored(metric)
    page = render_html(hotfix, journal.rows)
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags
    assert not any(k.startswith("on") for _, attrs in parser.tags for k in attrs)
    images = _images(parser)  # every <img> is a chart drawn here: none came from the text
    numeric = [s for s in metric_series(journal.rows) if s.numeric]
    assert len(images) == len(numeric) + 1
    metrics = [(f, svg) for f, svg in images if f.get("data-metric")]
    assert len(metrics) == len(numeric)
    # The hostile name is an attribute value of its figure, and a text node of its SVG.
    svg = next(svg for f, svg in metrics if "<img src=x" in str(f.get("data-metric")))
    ids = {e.get("id") for e in svg.iter()}
    assert {"metric", "threshold-success", "threshold-failure"} <= ids
    assert "<img src=x" in "".join(svg.itertext())
    assert "\\x07" in "".join(svg.itertext())  # the control character shown, not written
    timeline = [svg for f, svg in images if "timeline" in str(f.get("class"))]
    assert len(timeline) == 1
    assert "<img src=x" in "".join(parser.text)  # shown as text, not as an element
    assert "success when below 5" in "".join(parser.text)  # the caption says it in words
    assert "```" not in page


def test_sandbox_hotfix_report_charts_every_configured_metric(
    cli: Cli, served: RunningSandbox, tmp_path: Path
) -> None:
    info = served.info
    work = Path(info.work)
    description = 'Fix <b>bold</b> "quotes" ; %% comment'
    started = cli("start", "INC-17", description, "--cherry-pick", info.fix_sha, "--yes", cwd=work)
    assert started.code == ExitCode.OK, started
    config = load_config(work)
    report = cli("report", "INC-17", cwd=work)
    assert report.code == 0, report
    charts = [b for b in _mermaid_blocks(report.out) if b[0] == "xychart-beta"]
    assert len(charts) == len(config.monitor.metrics)
    for metric in config.monitor.metrics:
        chart = next(c for c in charts if f'title "{metric.name} ' in c[1])
        wanted = set()
        for cond_text in (metric.success, metric.failure):
            cond = parse_condition(cond_text)
            if cond is not None and isinstance(cond.value, float):
                wanted.add(cond.value)
        assert wanted, metric  # the sandbox's metrics all have numeric thresholds
        flat = [_numbers(line) for line in chart if line.strip().startswith("line [")][1:]
        assert {values[0] for values in flat} == wanted, chart
    out = tmp_path / "postmortem.html"
    written = cli("report", "INC-17", "--html", "--output", str(out), cwd=work)
    assert written.code == 0, written
    parser = _Tags()
    parser.feed(out.read_text(encoding="utf-8"))
    assert "b" not in [t for t, _ in parser.tags]
    images = _images(parser)
    assert {f.get("data-metric") for f, _ in images if f.get("data-metric")} == {
        m.name for m in config.monitor.metrics
    }
    timeline = [svg for f, svg in images if "timeline" in str(f.get("class"))]
    assert len(timeline) == 1
    bars = [e for e in timeline[0].iter() if str(e.get("id", "")).startswith("phase-")]
    assert len(bars) >= 10, len(bars)  # every phase of the happy path has its bar
