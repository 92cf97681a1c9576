"""Run every benchmark figure and print figure / measured / baseline / ratio / goal / verdict.

Usage::

    python benchmarks/run.py [--quick] [--only N[,N...]] [--json out.json]

``--quick`` runs fewer rounds (under about three minutes); the full run takes under about
fifteen. Results also go to ``benchmarks/results.json`` (or the ``--json`` path). The scale
store of figure 4 is built once into ``benchmarks/.cache/`` and reused. See
``benchmarks/README.md`` for what each figure measures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# figure number -> (module under benchmarks/, title)
FIGURES: dict[str, tuple[str, str]] = {
    "1": ("fig_checkpoint", "durable checkpoint cost"),
    "2": ("fig_startup", "command start-up"),
    "3": ("fig_resume", "resume latency"),
    "4": ("fig_scale", "status/list/resume at scale"),
    "5": ("fig_gates", "parallel gates"),
    "6": ("fig_sandbox", "reaction, API requests and memory of a full run (6, 7, 8)"),
}
# Figures 7 and 8 come from the same sandbox runs as figure 6.
ALIASES = {"7": "6", "8": "6"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="hotfix_fsm benchmarks: each figure against its baseline, in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 3 minutes)")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated figure numbers (1-8; 6, 7 and 8 share one set of runs)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="benchmark the hotfix_fsm package in this directory instead of this checkout "
        "(to compare a candidate change against the same baselines)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "benchmarks" / "results.json",
        help="where to write the results (default: benchmarks/results.json)",
    )
    return parser.parse_args(argv)


def _selected(only: str) -> list[str]:
    if not only.strip():
        return list(FIGURES)
    wanted: list[str] = []
    for part in only.split(","):
        key = ALIASES.get(part.strip(), part.strip())
        if key not in FIGURES:
            raise SystemExit(f"benchmarks/run.py: unknown figure {part!r} (use 1-8)")
        if key not in wanted:
            wanted.append(key)
    return wanted


def _isolate(work: Path) -> None:
    """Keep every hotfix_fsm file (state dir, default store, crash logs) in the scratch dir."""
    os.environ["HOTFIX_FSM_STATE_DIR"] = str(work / "state")
    os.environ["XDG_STATE_HOME"] = str(work / "xdg-state")
    os.environ["HOTFIX_FSM_DB"] = str(work / "default.db")
    os.environ.pop("HOTFIX_FSM_FAILPOINTS", None)
    os.environ.setdefault("GIT_CONFIG_NOSYSTEM", "1")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    keys = _selected(args.only)
    source = None
    if args.source is not None:
        source = args.source.expanduser().resolve()
        if not (source / "hotfix_fsm" / "__init__.py").is_file():
            raise SystemExit(f"benchmarks/run.py: no hotfix_fsm package in {source}")
        os.environ["HOTFIX_BENCH_SOURCE"] = str(source)
    # The harness itself always comes from this checkout; hotfix_fsm from the tree under test.
    from benchmarks.common import CACHE_DIR, SOURCE, Options, Row
    from benchmarks.report import print_table

    if source is not None:
        sys.path.insert(0, str(source))

    # Scratch files go to a real disk (benchmarks/.cache), never to tmpfs; HOTFIX_BENCH_WORK
    # moves them (the smoke test points it at its tmp_path).
    parent = Path(os.environ.get("HOTFIX_BENCH_WORK") or CACHE_DIR)
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    _isolate(work)
    opts = Options(quick=args.quick, work=work)
    output = args.json.expanduser().resolve()
    previous_cwd = Path.cwd()
    # Subprocesses run from the scratch directory: ``python -c`` puts the working directory
    # first on sys.path, and only the tree under test may provide hotfix_fsm.
    os.chdir(work)
    rows: list[Row] = []
    timings: dict[str, float] = {}
    started = time.monotonic()
    try:
        for key in keys:
            module_name, title = FIGURES[key]
            print(f"[figure {key}] {title} ...", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                module = importlib.import_module(f"benchmarks.{module_name}")
                runner: Callable[[Options], list[Row]] = module.run
                rows.extend(runner(opts))
            except Exception as exc:  # one broken figure must not hide the others
                traceback.print_exc(file=sys.stderr)
                rows.append(
                    Row(
                        figure=key,
                        name=title,
                        verdict="ERROR",
                        notes=[f"{type(exc).__name__}: {exc}"],
                    )
                )
            timings[key] = round(time.monotonic() - t0, 1)
            print(f"[figure {key}] took {timings[key]:.1f}s", file=sys.stderr, flush=True)
    finally:
        os.chdir(previous_cwd)
        shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - started
    print_table(rows, sys.stdout)
    document: dict[str, Any] = {
        "schema": "hotfix-fsm/benchmarks@1",
        "quick": args.quick,
        "figures": keys,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - total)),
        "duration_s": round(total, 1),
        "figure_durations_s": timings,
        "source": str(SOURCE),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "rows": [row.to_json() for row in rows],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    if ROOT.resolve() != SOURCE:
        print(f"\nbenchmarked hotfix_fsm from {SOURCE}", file=sys.stderr)
    print(f"\nresults written to {output} ({total:.0f}s)", file=sys.stderr)
    return 1 if any(row.verdict == "ERROR" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
