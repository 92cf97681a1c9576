"""The results table the harness prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from benchmarks.common import Row, fmt_value

HEADERS = ("figure", "what", "measured", "baseline", "ratio", "goal", "verdict")


def _cells(row: Row) -> tuple[str, ...]:
    ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
    return (
        row.figure,
        row.name,
        fmt_value(row.measured, row.unit),
        fmt_value(row.baseline, row.unit),
        ratio,
        row.goal or "-",
        row.verdict,
    )


def print_table(rows: Sequence[Row], out: TextIO) -> None:
    """A plain-text table, then each row's notes underneath."""
    cells = [HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    out.write("\n")
    for n, line in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    noted = [r for r in rows if r.notes]
    if noted:
        out.write("\nnotes:\n")
        for row in noted:
            for note in row.notes:
                out.write(f"  [{row.figure}] {note}\n")
