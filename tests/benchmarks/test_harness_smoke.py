"""The benchmark harness runs: its cheapest figure, in --quick mode, end to end.

Only the structure of the output is checked — never a timing, so this cannot fail because
the machine is slow or busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = (sys.executable, str(ROOT / "benchmarks" / "run.py"))


def test_quick_checkpoint_figure_prints_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "HOTFIX_BENCH_WORK": str(tmp_path / "work")}
    proc = subprocess.run(
        [*HARNESS, "--quick", "--only", "1", "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = proc.stdout.strip().splitlines()[0].split()
    assert header == ["figure", "what", "measured", "baseline", "ratio", "goal", "verdict"]

    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema"] == "hotfix-fsm/benchmarks@1"
    assert doc["quick"] is True
    assert doc["figures"] == ["1"]
    *judged, cpu = doc["rows"]
    assert [r["figure"] for r in doc["rows"]] == ["1"] * 5
    assert cpu["verdict"] == "INFO"
    assert cpu["measured"] > 0
    # Two WAL states against the baseline (judged), then against an INSERT alone.
    assert [(r["details"]["baseline"], r["goal_ratio"]) for r in judged] == [
        ("bare sqlite3, same statements", 1.2),  # the goal of issue 15
        ("bare sqlite3, same statements", 1.2),
        ("bare sqlite3, INSERT alone", None),
        ("bare sqlite3, INSERT alone", None),
    ]
    assert ["growing" in r["name"] for r in judged] == [True, False, True, False]
    for row in judged:
        assert row["verdict"] in ({"PASS", "MISS"} if row["goal_ratio"] else {"INFO"})
        assert row["measured"] > 0
        assert row["baseline"] > 0
        assert row["ratio"] == round(row["measured"] / row["baseline"], 4)
        assert row["details"]["checkpoint"]["n"] == row["details"]["baseline_samples"]["n"] > 0
    assert " on " in judged[0]["notes"][0]  # the file system holding the files is named
    # The scratch directory is removed; nothing is left behind.
    assert list((tmp_path / "work").iterdir()) == []


def test_unknown_figure_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [*HARNESS, "--only", "42", "--json", str(tmp_path / "r.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "unknown figure '42'" in proc.stderr
    assert not (tmp_path / "r.json").exists()
