"""Crash anywhere: SIGKILL the real ``hotfix`` command at every failpoint and at random
instants, resume with ``hotfix resume --take-over --yes`` until a terminal state, and compare
the world and the journal with the uninterrupted run's.

CI: every (phase, point) of the forward path, of the automatic rollback after a failed verify
and of a manual rollback after ``done`` (revert PR), kills landing mid monitoring window, and
``RANDOM_TRIALS_CI`` trials of seeded random instants (``RANDOM_KILLS`` kills each).
``--torture``: one trial per (phase, point) on its own and ``RANDOM_TRIALS_TORTURE`` random
trials.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hotfix_fsm.core import machine
from hotfix_fsm.durable.failpoints import POINTS
from tests.torture.harness import FIGURES, parallel, wait_for
from tests.torture.invariants import check_trial, duplicated_effects
from tests.torture.sandbox import ISSUE, Sandbox, drive

Factory = Callable[..., Sandbox]

FORWARD_PHASES = [
    p for p, _, _ in machine.FORWARD if p in machine.EFFECT_PHASES or p == "finish_gates"
]
FORWARD_PHASES = [
    g
    for p in FORWARD_PHASES
    for g in (["gate:tests", "gate:build", "gate:audit"] if p == "finish_gates" else [p])
]
ROLLBACK_PHASES = [p for p, _, _ in machine.ROLLBACK if p in machine.EFFECT_PHASES]
RANDOM_TRIALS_CI = 4
RANDOM_TRIALS_TORTURE = 100
RANDOM_KILLS = 6
SEED = 20_261_125

_baselines: dict[str, dict[str, Any]] = {}


def prepare(sb: Sandbox, scenario: str) -> None:
    """``rollback``: every version but the release is unhealthy, so verify fails and the
    automatic rollback redeploys the release; ``monitor-rollback``: the fix answers healthy
    but its metrics breach the limits during the monitoring window."""
    release = sb.info.production_sha
    if scenario == "rollback":
        sb.running.production.set_mode("failing")
        sb.running.production.set_mode("healthy", for_version=release)
    elif scenario == "monitor-rollback":
        sb.running.production.set_mode("degraded")
        sb.running.production.set_mode("healthy", for_version=release)
        # Five breaching rounds are tolerated before the verdict, so the window stays open.
        metric = {"name": "error_rate", "field": "errorRate", "success": "< 5"}
        sb.configure(
            {
                "monitor": {
                    "duration": 2.0,
                    "interval": 0.2,
                    "metrics": [{**metric, "failure": ">= 10", "failure_limit": 5}],
                }
            }
        )


EXPECTED_STATE = {"happy": "done", "rollback": "rolled_back", "monitor-rollback": "rolled_back"}


def record(kind: str, sb: Sandbox, run: Any, **extra: Any) -> None:
    FIGURES.add(
        kind,
        processes=len(run.runs),
        kills=run.kills,
        failpoints=sorted({f.rsplit("@", 1)[0] for f in run.fired}),
        duplicated=sum(duplicated_effects(sb.effects()).values()),
        **extra,
    )


@dataclass(frozen=True)
class Trial:
    """One hotfix of a scenario, driven through SIGKILLs (none for the baseline)."""

    name: str
    scenario: str
    specs: tuple[str, ...] = ()
    delays: tuple[float, ...] = ()
    mode: str = "failpoints"
    seed: int | None = None


def _run(sandboxes: Factory, trial: Trial) -> dict[str, Any]:
    sb = sandboxes(trial.name)
    prepare(sb, trial.scenario)
    delays = trial.delays
    run = drive(
        sb,
        failpoint_specs=trial.specs,
        kill_after=(lambda i: delays[i] if i < len(delays) else None) if delays else None,
    )
    # Recorded before any assertion: a failed trial's duplicates count in the figures too.
    record("trial", sb, run, scenario=trial.scenario, mode=trial.mode, seed=trial.seed)
    if trial.specs:
        assert run.kills + len(run.excused) == len(trial.specs), (run.fired, run.excused)
    try:
        sig = check_trial(sb, None)
    except AssertionError as exc:
        raise AssertionError(f"{trial}: {exc}") from exc
    return sig


def run_against_baselines(sandboxes: Factory, trials: list[Trial], workers: int = 3) -> None:
    """Run the trials — and the uninterrupted baseline of each scenario, once per session,
    alongside them — then require every trial to end exactly like its baseline."""
    missing = sorted({t.scenario for t in trials} - _baselines.keys())
    tasks = [Trial(f"baseline-{s}", s, mode="baseline") for s in missing] + trials
    sigs: dict[str, dict[str, Any]] = {}
    parallel(lambda t: sigs.__setitem__(t.name, _run(sandboxes, t)), tasks, workers=workers)
    for scenario in missing:
        base = sigs.pop(f"baseline-{scenario}")
        assert base["state"] == EXPECTED_STATE[scenario], base
        _baselines[scenario] = base
    diverged = [
        f"{t}:\n  {sigs[t.name]}\n  != {_baselines[t.scenario]}"
        for t in trials
        if sigs[t.name] != _baselines[t.scenario]
    ]
    assert not diverged, "diverged from the uninterrupted run:\n" + "\n".join(diverged)


def test_every_failpoint_of_the_forward_path(sandboxes: Factory) -> None:
    """Three hotfixes, one per point; each is killed at that point of all 16 phases in turn."""
    trials = [
        Trial(f"fwd-{point}", "happy", tuple(f"{phase}:{point}" for phase in FORWARD_PHASES))
        for point in POINTS
    ]
    run_against_baselines(sandboxes, trials, workers=4)


def test_every_failpoint_of_the_automatic_rollback(sandboxes: Factory) -> None:
    """Verify fails (the fix is unhealthy): kill before verify's effect and at every point of
    every rollback phase (one hotfix per point) and end ``rolled_back`` like the uninterrupted
    run, with the release running again."""
    chains = {pt: [f"{p}:{pt}" for p in ROLLBACK_PHASES] for pt in POINTS}
    chains["before_effect"].insert(0, "verify:before_effect")  # verify raises: no later point
    trials = [Trial(f"auto-rb-{pt}", "rollback", tuple(chains[pt])) for pt in POINTS]
    run_against_baselines(sandboxes, trials, workers=4)


def test_every_failpoint_of_a_manual_rollback_after_done(sandboxes: Factory) -> None:
    """``hotfix rollback`` after ``done`` reverts the merge through a PR and redeploys the
    release: killed at every point of every rollback phase, it opens one revert PR, merges it
    once, dispatches one rollback run, and ends ``rolled_back``."""

    def trial(specs: list[str] | None) -> dict[str, Any]:
        sb = sandboxes("manual-" + ("crash" if specs else "clean"))
        first = drive(sb)
        assert sb.hotfix() is not None
        assert sb.hotfix().state == "done"  # type: ignore[union-attr]
        sb.running.production.set_mode("failing")
        sb.running.production.set_mode("healthy", for_version=sb.info.production_sha)
        run = drive(
            sb,
            failpoint_specs=specs or (),
            first=("rollback", ISSUE, "--reason", "drill: the fix misbehaves"),
        )
        record(
            "trial", sb, run, scenario="manual-rollback", mode="failpoints" if specs else "baseline"
        )
        assert run.kills == len(specs or ()), run.fired
        sig = check_trial(sb, None)
        assert first.kills == 0
        return sig

    results: dict[str, dict[str, Any]] = {}
    specs = [f"{p}:{pt}" for p in ROLLBACK_PHASES for pt in POINTS]
    parallel(lambda s: results.setdefault("crash" if s else "clean", trial(s)), [None, specs], 2)
    assert results["crash"] == results["clean"]
    assert results["clean"]["state"] == "rolled_back"
    assert results["clean"]["production_runs"] == "release"


def _wait_for_rounds(sb: Sandbox, proc: Any, rounds: int, deadline: float = 180) -> bool:
    """Poll the store until ``rounds`` monitoring rounds are journaled (False if it exited)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not proc.running():
            return False
        hotfix = sb.hotfix()
        if hotfix is not None:
            rows = [
                e for e in sb.journal(hotfix.id) if e.kind == "measurement" and e.phase == "monitor"
            ]
            if len(rows) >= rounds:
                return True
        time.sleep(0.02)
    raise AssertionError("the monitoring window never reached the wanted round")


def test_kill_mid_monitoring_window(sandboxes: Factory) -> None:
    """SIGKILL while the monitoring window is open (after 1, then 3 journaled rounds): the
    resumed monitor continues the same window from its journaled rounds — none measured
    twice — and the hotfix completes."""
    sb = sandboxes("mid-window")
    # Long enough that a loaded machine's slow restart still finds the window open.
    sb.configure({"monitor": {"duration": 4.0, "interval": 0.2}})
    kills = 0
    for rounds, args in ((1, sb.start_args()), (3, sb.resume_args())):
        proc = sb.spawn(*args)
        if _wait_for_rounds(sb, proc, rounds):
            proc.power_cut()
            kills += 1
        proc.finish()
    run = drive(sb)
    record("trial", sb, run, scenario="happy", mode="mid-window", extra_kills=kills)
    assert kills == 2
    sig = check_trial(sb, _baselines.get("happy"))
    assert sig["state"] == "done"
    hotfix = sb.hotfix()
    assert hotfix is not None
    rows = [
        e.payload for e in sb.journal(hotfix.id) if e.kind == "measurement" and e.phase == "monitor"
    ]
    windows = {r["window"] for r in rows}
    assert len(windows) == 1, f"the window was reopened after a crash: {windows}"
    numbers = [r["round"] for r in rows]
    assert len(numbers) == len(set(numbers)), f"a round was measured twice: {numbers}"
    assert numbers == sorted(numbers)


# A regression test: rounds missed while the driver was down are made up (analysis.Window).


def test_monitor_verdict_survives_a_long_crash_in_the_window(sandboxes: Factory) -> None:
    """The fix breaches its metrics in every round; the driver dies after the first round
    and is down for most of the window. The uninterrupted run rolls back (6 breaches > 5
    tolerated); the resumed one must not conclude that the fix is good."""
    sb = sandboxes("long-crash-window")
    prepare(sb, "monitor-rollback")
    proc = sb.spawn(*sb.start_args())
    assert _wait_for_rounds(sb, proc, 1)
    proc.power_cut()
    proc.finish()
    hotfix = sb.hotfix()
    assert hotfix is not None
    window = hotfix.context["monitor_window"]
    wait_for(lambda: time.time() > float(window["started_at"]) + 1.5, "most of the window to pass")
    run = drive(sb)
    record("trial", sb, run, scenario="monitor-rollback", mode="mid-window", extra_kills=1)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "rolled_back", f"ended {hotfix.state}: {hotfix.context.get('monitor')}"


def random_trials(first_seed: int, count: int) -> list[Trial]:
    """Seeded: every process of a trial may die at a random instant (up to RANDOM_KILLS)."""
    trials = []
    for seed in range(first_seed, first_seed + count):
        rng = random.Random(seed)
        scenario = "rollback" if seed % 4 == 3 else "happy"
        delays = tuple(round(rng.uniform(0.3, 3.5), 3) for _ in range(RANDOM_KILLS))
        trials.append(Trial(f"random-{seed}", scenario, delays=delays, mode="random", seed=seed))
    return trials


def test_random_instants(sandboxes: Factory) -> None:
    """Seeded random SIGKILLs: reproduce one with its seed (the failure names the trial)."""
    run_against_baselines(sandboxes, random_trials(SEED, RANDOM_TRIALS_CI), workers=3)


@pytest.mark.torture
def test_random_instants_torture(sandboxes: Factory) -> None:
    run_against_baselines(sandboxes, random_trials(SEED + 10_000, RANDOM_TRIALS_TORTURE), workers=3)


@pytest.mark.torture
def test_each_failpoint_alone(sandboxes: Factory) -> None:
    """One hotfix per (phase, point) of both paths, killed there once."""
    trials = [
        Trial(f"{p}-{pt}".replace(":", "_"), "happy", (f"{p}:{pt}",))
        for p in FORWARD_PHASES
        for pt in POINTS
    ]
    trials += [
        Trial(f"rb-{p}-{pt}", "rollback", (f"{p}:{pt}",)) for p in ROLLBACK_PHASES for pt in POINTS
    ]
    run_against_baselines(sandboxes, trials, workers=3)
