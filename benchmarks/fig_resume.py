"""Figure 3: resume latency — from process start to the first effect of the next phase.

A hotfix waits in ``pr_open`` (its journal: the 22 rows a real hotfix has by then). A
fresh process (``drivers/resume_driver.py``) opens the store through ``HotfixEngine``,
takes the lease, commits the intent and runs the next phase, a custom ``wait_ci`` that
writes ``time.time()`` into a marker file. Latency = marker time minus the instant just before
the process was spawned. Every other phase is the default one, so the process imports what a
real resume imports. Baseline: figure 2's ``python -c "import sqlalchemy.orm"``, interleaved.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from benchmarks.common import (
    DRIVERS,
    PYTHON,
    Options,
    Row,
    bench_env,
    interleave,
    median,
    spread,
    timed_run,
)
from benchmarks.fig_startup import BASELINE
from benchmarks.fixtures import make_hotfix

HOTFIX_ID = "BENCH-3-20250101-000000"


def run(opts: Options) -> list[Row]:
    folder = opts.work / "fig3"
    folder.mkdir()
    repo = folder / "repo"
    repo.mkdir()
    template = folder / "template.db"
    made = make_hotfix(template, HOTFIX_ID, until="pr_open", repo=repo)
    env = bench_env()
    counter = [0]
    process_wall: list[float] = []

    def resume_once() -> float:
        counter[0] += 1
        db = folder / f"round-{counter[0]}.db"
        marker = folder / f"marker-{counter[0]}"
        shutil.copyfile(template, db)
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [PYTHON, str(DRIVERS / "resume_driver.py"), str(db), HOTFIX_ID, str(marker)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        process_wall.append(time.perf_counter() - t0)
        if proc.returncode != 0 or not marker.exists():
            raise RuntimeError(
                f"resume driver exited {proc.returncode}:\n{proc.stdout[-1500:]}\n"
                f"{proc.stderr[-3000:]}"
            )
        effect_at = float(marker.read_text(encoding="utf-8"))
        for leftover in (db, marker, Path(f"{db}-wal"), Path(f"{db}-shm")):
            leftover.unlink(missing_ok=True)
        return effect_at - started

    samples = interleave(
        {"resume": resume_once, "baseline": lambda: timed_run(BASELINE, env=env)[0]},
        opts.rounds(12, 30),  # twelve: the median of six moved by a tenth on a busy machine
        warmup=1,
    )
    row = Row(
        figure="3",
        name="resume: process start -> first effect",
        measured=median(samples["resume"]),
        baseline=median(samples["baseline"]),
        goal="<= 1.0x `python -c 'import sqlalchemy.orm'`",
        goal_ratio=1.0,
        details={
            "samples": spread(samples["resume"]),
            "baseline_samples": spread(samples["baseline"]),
            "driver_process_wall": spread(process_wall[1:] or process_wall),
            "journal_rows_before": made["rows"],
            "state_before": made["state"],
        },
    ).judge()
    if row.verdict == "MISS":
        from benchmarks.fig_startup import importtime

        db = folder / "profile.db"
        shutil.copyfile(template, db)
        argv = [PYTHON, str(DRIVERS / "resume_driver.py"), str(db), HOTFIX_ID, str(db) + ".m"]
        profile = importtime(argv, env, runs=1)
        row.details["importtime"] = profile
        heavy = ", ".join(
            f"{pkg} {s * 1e3:.0f} ms" for pkg, s in list(profile["by_package_s"].items())[:10]
        )
        row.notes.append(
            f"imports take {profile['total_import_s'] * 1e3:.0f} ms; heaviest: {heavy}"
        )
    return [row]
