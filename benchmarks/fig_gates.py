"""Figure 5: tests, build and audit in parallel against the slowest gate alone.

The real runner drives a hotfix from ``fix_committed`` through ``gating`` with the real
``Gate`` phase (work-tree checks with git, logs, journal rows), the three gates configured to
run real subprocesses that sleep 0.6, 0.8 and 1.0 s. Measured: from the committed
``start_gates`` transition to the committed ``finish_gates`` transition (the push phase is
replaced by one that pauses, so nothing else runs). Baseline: the slowest gate's command run
alone with ``subprocess.run``, interleaved. For diagnosis the runner with only the slowest
gate enabled is timed too (reported in the details, not judged).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PYTHON, Options, Row, interleave, median, spread

SLEEPS = {"tests": 0.6, "build": 0.8, "audit": 1.0}


def _command(seconds: float) -> list[str]:
    return [PYTHON, "-c", f"import time; time.sleep({seconds})"]


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stdout.strip()


def _repo(folder: Path) -> str:
    folder.mkdir()
    _git(folder, "init", "-q", "-b", "main")
    (folder / "app.py").write_text("print('hello')\n", encoding="utf-8")
    _git(folder, "add", "app.py")
    _git(folder, "commit", "-q", "-m", "Initial")
    _git(folder, "switch", "-q", "-c", "hotfix/BENCH-5")
    return _git(folder, "rev-parse", "HEAD")


def _config(only_slowest: bool) -> Any:
    from hotfix_fsm.config import Config, GateConfig, GatesConfig

    gates = {
        name: GateConfig(
            command=_command(seconds),
            timeout=60,
            enabled=not only_slowest or seconds == max(SLEEPS.values()),
        )
        for name, seconds in SLEEPS.items()
    }
    return Config(gates=GatesConfig(parallel=True, **gates))


def run(opts: Options) -> list[Row]:
    from hotfix_fsm.core import machine
    from hotfix_fsm.durable.runner import Event
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.errors import NeedsHuman
    from hotfix_fsm.phases.base import BasePhase, PhaseContext
    from hotfix_fsm.store import open_store

    class Stop(BasePhase):
        name = "push"

        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            raise NeedsHuman("benchmark: stop after the gates")

    folder = opts.work / "fig5"
    folder.mkdir()
    repo = folder / "repo"
    sha = _repo(repo)
    store = open_store(folder / "store.db")
    engines = {
        flag: HotfixEngine(store, phases={"push": Stop()}, config=_config(flag))
        for flag in (False, True)
    }
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if event.kind == "transition" and event.phase in ("start_gates", "finish_gates"):
            marks[event.phase] = time.perf_counter()

    for engine in engines.values():
        engine.subscribe(on_event)
    counter = [0]

    def gating(only_slowest: bool) -> float:
        counter[0] += 1
        hotfix_id = f"BENCH-5-{counter[0]:04d}"
        store.create(
            hotfix_id=hotfix_id,
            issue=f"BENCH-5-{counter[0]}",
            description="gates benchmark",
            repo=str(repo),
            graph_hash=machine.graph_hash(),
            options={},
            context={"fix_sha": sha, "branch": "hotfix/BENCH-5", "base_sha": sha},
            state="fix_committed",
        )
        marks.clear()
        outcome = engines[only_slowest].drive(hotfix_id)
        if outcome.state != "gates_passed" or set(marks) != {"start_gates", "finish_gates"}:
            raise RuntimeError(
                f"the gates did not pass: {outcome.state} {outcome.error or ''} "
                f"{outcome.paused_reason or ''}"
            )
        return marks["finish_gates"] - marks["start_gates"]

    slowest = _command(max(SLEEPS.values()))

    def alone() -> float:
        started = time.perf_counter()
        subprocess.run(slowest, check=True, timeout=60)
        return time.perf_counter() - started

    try:
        samples = interleave(
            {
                "parallel": lambda: gating(False),
                "alone": alone,
                "runner_slowest_only": lambda: gating(True),
            },
            opts.rounds(4, 10),
            warmup=1,
        )
    finally:
        store.engine.dispose()
    row = Row(
        figure="5",
        name="gates: tests | build | audit in parallel",
        measured=median(samples["parallel"]),
        baseline=median(samples["alone"]),
        goal="<= 1.15x the slowest gate alone",
        goal_ratio=1.15,
        details={
            "gate_sleeps_s": SLEEPS,
            "parallel": spread(samples["parallel"]),
            "slowest_alone_subprocess": spread(samples["alone"]),
            "runner_with_only_the_slowest_gate": spread(samples["runner_slowest_only"]),
        },
    ).judge()
    row.notes.append(
        f"runner with only the slowest gate enabled: "
        f"{median(samples['runner_slowest_only']):.3f}s (the other two recorded as skipped)"
    )
    return [row]
