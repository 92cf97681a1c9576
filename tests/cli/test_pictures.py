"""The charts drawn by matplotlib (``reporting.pictures``): texts as text, whatever they hold;
the same input gives the same file; the host program's matplotlib settings are left alone."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

import matplotlib

from hotfix_fsm.reporting.charts import Series, Span
from hotfix_fsm.reporting.pictures import metric_svg, timeline_svg


def _series(name: str) -> Series:
    series = Series(metric=name, window="w1", started_at=0.0, success="< 5", failure=">= 10")
    for i, (value, verdict) in enumerate([(1.0, "success"), (None, "error"), (12.0, "failure")]):
        series.points.append((i * 5.0, value, verdict))
    return series


def _text(svg: str) -> str:
    return "".join(ET.fromstring(svg).itertext())  # noqa: S314 - our own chart


def test_a_name_with_math_signs_controls_and_glyphs_the_font_lacks_is_drawn_as_text() -> None:
    # pytest runs with warnings as errors: a missing glyph would fail here, not print.
    name = "p95 $x^2$ 延迟 \x1b[2J"
    svg = metric_svg(_series(name))
    text = _text(svg)
    assert "p95 $x^2$" in text  # no math parsing: the dollars stay
    assert "\\x1b[2J" in text  # the escape shown, never written raw
    assert "\x1b" not in svg
    assert "延迟" not in text  # no glyph in the bundled font: shown as "?"
    assert "p95 $x^2$ ?? \\x1b[2J" in text


def test_the_same_data_draws_the_same_file() -> None:
    spans = [Span("branch", "done", 100.0, 101.0), Span("verify", "failed", 101.0, 130.0)]
    assert timeline_svg(spans) == timeline_svg(spans)
    assert metric_svg(_series("error_rate")) == metric_svg(_series("error_rate"))
    assert "<dc:date>" not in timeline_svg(spans)


def test_drawing_leaves_the_host_programs_settings_alone() -> None:
    before = dict(matplotlib.rcParams)
    with matplotlib.rc_context({"font.size": 17.0}):
        metric_svg(_series("error_rate"))
        assert matplotlib.rcParams["font.size"] == 17.0
    assert dict(matplotlib.rcParams) == before


def test_charts_drawn_from_many_threads_are_each_whole() -> None:
    # The dashboard draws in a thread pool: every drawing is complete and the same.
    expected = metric_svg(_series("error_rate"))
    results: list[str] = []
    lock = threading.Lock()

    def draw() -> None:
        svg = metric_svg(_series("error_rate"))
        with lock:
            results.append(svg)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 8
    assert all(svg == expected for svg in results)
