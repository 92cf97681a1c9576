"""Reliability figures of the torture suite, for the README.

    python -m tests.torture.figures              # run tests/torture (CI size), print figures
    python -m tests.torture.figures --torture    # the long runs too
    python -m tests.torture.figures --from FILE  # figures of a recorded run (JSON lines)
    python -m tests.torture.figures -- -k crash  # extra arguments go to pytest

Each trial, fault, input and secrets example of the suite appends one JSON line to
``$HOTFIX_TORTURE_FIGURES`` (see ``tests/torture/harness.py``); this script runs pytest
with that variable set and sums the lines. Every value in a line is measured — counted from
what the rehearsal world, the journal or the processes show — never written as a constant
after an assertion passed (``invariants.duplicates`` counts the duplicated effects).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def all_failpoints() -> set[str]:
    from hotfix_fsm.core import machine
    from hotfix_fsm.durable.failpoints import POINTS

    return {f"{phase}:{point}" for phase in machine.EFFECT_PHASES for point in POINTS}


def figures(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the recorded lines into the published figures."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(record["kind"], []).append(record)
    trials = by_kind.get("trial", [])
    modes = Counter(t.get("mode", "?") for t in trials)
    covered = set().union(*(set(t.get("failpoints", [])) for t in trials)) if trials else set()
    possible = all_failpoints()
    faults = by_kind.get("fault", [])
    inputs = by_kind.get("inputs", [])
    races = by_kind.get("race", [])
    secrets = by_kind.get("secrets", [])
    duplicated = sum(int(r.get("duplicated", 0)) for r in trials + faults + races)
    return {
        "trials": len(trials),
        "trials_by_mode": dict(sorted(modes.items())),
        "processes": sum(int(t.get("processes", 0)) for t in trials),
        "sigkills": sum(int(t.get("kills", 0)) + int(t.get("extra_kills", 0)) for t in trials),
        "random_instant_kills": sum(
            int(t.get("kills", 0)) for t in trials if t.get("mode") == "random"
        ),
        "failpoints_covered": len(covered & possible),
        "failpoints_possible": len(possible),
        "failpoints_missed": sorted(possible - covered),
        "fault_scenarios": len({f["scenario"] for f in faults}),
        "faults_injected": sum(int(f.get("injected", 0)) for f in faults),
        "inputs_tried": sum(int(i.get("tried", 0)) for i in inputs),
        "inputs_mishandled": sum(int(i.get("problems", 0)) for i in inputs),
        "race_rounds": sum(int(r.get("rounds", 0)) for r in races),
        "racing_drivers": sum(int(r.get("drivers", 0)) for r in races),
        "frozen_drivers": sum(int(r.get("sigstop", 0)) for r in races),
        # One line per example (a hypothesis example is the unit counted).
        "secret_examples": len(secrets),
        "secret_leaks": sum(int(s.get("leaks", 0)) for s in secrets),
        "effects_duplicated": duplicated,
    }


def markdown(fig: dict[str, Any], command: str, outcome: str, seconds: float) -> str:
    rows = [
        ("Trials run (hotfixes driven to a terminal state)", fig["trials"], command),
        (
            "— of which: processes started / SIGKILLed",
            f"{fig['processes']} / {fig['sigkills']}",
            command,
        ),
        ("— random-instant SIGKILLs (seeded)", fig["random_instant_kills"], command),
        (
            "Failpoints covered (phase x before/after effect, after done)",
            f"{fig['failpoints_covered']} / {fig['failpoints_possible']}",
            command,
        ),
        (
            "Concurrent drivers raced (rounds)",
            f"{fig['racing_drivers']} ({fig['race_rounds']})",
            command,
        ),
        (
            "— of which frozen (SIGSTOP) past their lease, then woken",
            fig["frozen_drivers"],
            command,
        ),
        (
            "Faults injected (scenarios)",
            f"{fig['faults_injected']} ({fig['fault_scenarios']})",
            command,
        ),
        (
            "Hostile inputs tried (mishandled, outside reported bugs)",
            f"{fig['inputs_tried']} ({fig['inputs_mishandled']})",
            command,
        ),
        (
            "Secrets property examples (leaks)",
            f"{fig['secret_examples']} ({fig['secret_leaks']})",
            command,
        ),
        ("Effects duplicated", fig["effects_duplicated"], command),
    ]
    out = ["| Figure | Value | Reproduce |", "|---|---|---|"]
    out += [f"| {name} | {value} | `{cmd}` |" for name, value, cmd in rows]
    out.append("")
    out.append(f"pytest: {outcome} in {seconds:.0f}s")
    if fig["failpoints_missed"]:
        out.append(f"failpoints not reached: {', '.join(fig['failpoints_missed'])}")
    return "\n".join(out)


def read(path: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--torture", action="store_true", help="include the long runs")
    parser.add_argument("--from", dest="source", type=Path, help="a recorded JSON-lines file")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--log", type=Path, help="write pytest's whole output here")
    args, extra = parser.parse_known_args(argv)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    failed = False
    command = "python -m tests.torture.figures" + (" --torture" if args.torture else "")
    outcome, seconds = "not run (recorded figures)", 0.0
    if args.source is not None:
        records = read(args.source)
    else:
        with tempfile.TemporaryDirectory(prefix="torture-figures-") as tmp:
            sink = Path(tmp) / "figures.jsonl"
            sink.touch()
            pytest_args = [
                sys.executable,
                "-m",
                "pytest",
                "tests/torture",
                "-q",
                "-p",
                "no:cacheprovider",
            ]
            if args.torture:
                pytest_args.append("--torture")
            started = time.monotonic()
            proc = subprocess.run(
                [*pytest_args, *extra],
                cwd=ROOT,
                env={**os.environ, "HOTFIX_TORTURE_FIGURES": str(sink)},
                capture_output=True,
                text=True,
                check=False,
            )
            seconds = time.monotonic() - started
            if args.log is not None:
                args.log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
            lines = proc.stdout.strip().splitlines()
            outcome = lines[-1].strip("= ") if lines else f"exit {proc.returncode}"
            failed = proc.returncode != 0
            if failed:
                sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-3000:])
            records = read(sink)
    fig = figures(records)
    if args.json:
        sys.stdout.write(
            json.dumps({**fig, "pytest": outcome, "seconds": round(seconds)}, indent=2) + "\n"
        )
    else:
        sys.stdout.write(markdown(fig, command, outcome, seconds) + "\n")
    clean = fig["effects_duplicated"] == 0 and fig["secret_leaks"] == 0
    return 0 if clean and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
