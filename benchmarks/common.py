"""Shared pieces of the benchmark harness: results, interleaved timing, subprocess helpers.

Every ratio is measured in one run by alternating the measured thing and its baseline round
by round (the order rotates each round, so drift and neighbours' load hit both alike) and
comparing medians. Nothing here is part of the test suite; timings never fail a test.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The hotfix_fsm tree under test: this checkout, or another one given with --source (A/B runs).
SOURCE = Path(os.environ.get("HOTFIX_BENCH_SOURCE") or ROOT).resolve()
BENCH_DIR = ROOT / "benchmarks"
CACHE_DIR = BENCH_DIR / ".cache"
DRIVERS = BENCH_DIR / "drivers"
PYTHON = sys.executable


@dataclass
class Row:
    """One line of the results table."""

    figure: str
    name: str
    measured: float | None = None  # seconds unless ``unit`` says otherwise
    baseline: float | None = None
    goal: str = ""
    goal_ratio: float | None = None  # measured/baseline must be <= this
    goal_max: float | None = None  # measured must be < this (absolute goals)
    unit: str = "s"
    verdict: str = ""  # PASS, MISS, INFO, SKIP, ERROR
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.measured is None or not self.baseline:
            return None
        return self.measured / self.baseline

    def judge(self) -> Row:
        """Fill ``verdict`` from the goal (unless a figure already set one)."""
        if self.verdict:
            return self
        if self.measured is None:
            self.verdict = "SKIP"
        elif self.goal_ratio is not None and self.ratio is not None:
            self.verdict = "PASS" if self.ratio <= self.goal_ratio else "MISS"
        elif self.goal_max is not None:
            self.verdict = "PASS" if self.measured < self.goal_max else "MISS"
        else:
            self.verdict = "INFO"
        return self

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return out


@dataclass
class Options:
    """What the command line asked for."""

    quick: bool
    work: Path  # a scratch directory on a real disk, removed at the end

    def rounds(self, quick: int, full: int) -> int:
        return quick if self.quick else full


def entry_point() -> tuple[str, str]:
    """``(module, function)`` of the ``hotfix`` console script of the tree under test."""
    import tomllib

    target = "hotfix_fsm.cli:main"
    try:
        project = tomllib.loads((SOURCE / "pyproject.toml").read_text(encoding="utf-8"))
        target = str(project["project"]["scripts"]["hotfix"])
    except (OSError, KeyError, ValueError):
        pass
    module, _, function = target.partition(":")
    return module, function or "main"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def interleave(
    subjects: Mapping[str, Callable[[], float]], rounds: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Run each subject once per round, rotating the order; return every sample per subject.

    A subject returns its own sample (a duration, or a per-operation mean of a batch).
    ``warmup`` rounds run first and are thrown away (page cache, .pyc files, lazy imports).
    """
    names = list(subjects)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + rounds):
        # Each subject takes each place equally often: rotate every round, and run every
        # other cycle of rotations backwards. (Reversing every odd round instead undoes the
        # rotation when there are two subjects: the same one always went first.)
        shift = i % len(names)
        order = names[shift:] + names[:shift]
        if (i // len(names)) % 2:
            order.reverse()
        for name in order:
            value = subjects[name]()
            if i >= warmup:
                samples[name].append(value)
    return samples


def spread(samples: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of a sample list (seconds, rounded to microseconds)."""
    ordered = sorted(samples)
    if len(ordered) >= 4:
        q = statistics.quantiles(ordered, n=4)
        q1, q3 = q[0], q[2]
    else:
        q1, q3 = ordered[0], ordered[-1]
    return {
        "n": len(ordered),
        "median": round(median(ordered), 6),
        "q1": round(q1, 6),
        "q3": round(q3, 6),
        "min": round(ordered[0], 6),
        "max": round(ordered[-1], 6),
    }


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for subprocesses: the tree under test first, no colour, no pager.

    ``PYTHONDONTWRITEBYTECODE`` is dropped: with it, every timed run of the tree under test
    compiles each of its modules from source (its bytecode is never cached), while the
    baselines' installed packages load their cached bytecode. A user's installed or
    editable ``hotfix`` loads cached bytecode too; the discarded warm-up round writes it.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [
        str(SOURCE),
        str(ROOT),
        *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p],
    ]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env.pop("HOTFIX_FSM_FAILPOINTS", None)
    env.update({"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "120"})
    env.update(extra)
    return env


def timed_run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
    expect: Sequence[int] = (0,),
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``argv`` to completion; return its wall time and the finished process."""
    started = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in expect:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n"
            f"{proc.stderr[-2000:]}"
        )
    return elapsed, proc


def disk_of(path: Path) -> str:
    """``<fstype> on <device> (<mount point>)`` for the file system holding ``path``."""
    target = str(path.resolve())
    best = ("?", "?", "/")
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                device, mount, fstype = parts[0], parts[1], parts[2]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[2]):
                    best = (fstype, device, mount)
    except OSError:
        return "unknown file system"
    return f"{best[0]} on {best[1]} (mounted at {best[2]})"


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return fmt_seconds(value)
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "requests":
        return f"{value:.0f} req"
    return f"{value:g} {unit}"
