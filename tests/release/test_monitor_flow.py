"""Monitoring through the engine: flapping, a breach mid-window, inconclusive, a crash."""

from __future__ import annotations

from typing import Any

import pytest

from hotfix_fsm.durable.runner import Event
from hotfix_fsm.errors import ExitCode

from .world import Crash, World

ERROR_RATE = {"name": "error_rate", "field": "errorRate", "success": "< 5", "failure": ">= 10"}


def rounds(engine: Any, hid: str) -> list[dict[str, Any]]:
    return [
        e.payload for e in engine.journal(hid) if e.kind == "measurement" and e.phase == "monitor"
    ]


def flapping(world: World, failure_limit: int) -> tuple[Any, str, Any]:
    world.prod.set_mode("flapping", for_version=world.fix_sha)
    world.settings = {
        # verify retries until it sees the healthy half of the flap
        "verify": {"timeout": 2.0},
        "monitor": {
            "count": 8,
            "interval": 0,
            "metrics": [{**ERROR_RATE, "failure_limit": failure_limit}],
        },
    }
    engine = world.engine()
    hid = world.start(engine)
    return engine, hid, engine.drive(hid)


def test_flapping_within_the_failure_limit_passes(world: World) -> None:
    engine, hid, outcome = flapping(world, failure_limit=4)
    assert outcome.state == "done", outcome
    monitor = engine.get(hid).context["monitor"]
    assert monitor["rounds"] == 8  # interval 0: the count's rounds back to back
    assert monitor["metrics"]["error_rate"]["failed"] == 4
    assert monitor["metrics"]["error_rate"]["successful"] == 4


def test_flapping_beyond_the_failure_limit_rolls_back(world: World) -> None:
    engine, hid, outcome = flapping(world, failure_limit=1)
    assert outcome.state == "rolled_back", outcome
    hotfix = engine.get(hid)
    monitor = hotfix.context["monitor"]
    assert monitor["verdict"] == "failed"
    assert monitor["metrics"]["error_rate"]["failed"] == 2
    assert monitor["window"]["ended_early"] is True
    assert monitor["rounds"] < 8  # decided as soon as the limit was exceeded
    (failed,) = [
        e.payload for e in engine.journal(hid) if e.kind == "failed" and e.phase == "monitor"
    ]
    assert (
        "error_rate: 2 failed measurements (limit 1), failure condition >= 10" in (failed["error"])
    )
    assert world.prod.version == world.base_sha


def test_a_metric_breach_mid_window_rolls_back_before_the_window_ends(world: World) -> None:
    def degrade(event: Event) -> None:
        if event.kind == "measurement" and event.payload.get("round") == 3:
            world.prod.set_mode("degraded", for_version=world.fix_sha)  # error rate 12 %

    world.settings = {"monitor": {"duration": 1.0}}  # 21 rounds planned, default metrics
    engine = world.engine(on_event=degrade)
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "rolled_back", outcome
    measured = rounds(engine, hid)
    numbers = [r["round"] for r in measured]
    assert numbers[:4] == [0, 1, 2, 3]
    assert len(numbers) == 5  # the first round after the breach decided
    assert all(r["verdicts"]["error_rate"] == "success" for r in measured[:4])
    assert measured[4]["verdicts"]["error_rate"] == "failure"
    assert measured[4]["values"]["error_rate"] == 12.0
    monitor = engine.get(hid).context["monitor"]
    assert monitor["verdict"] == "failed"
    assert monitor["window"]["planned_rounds"] == 21
    assert monitor["last_values"]["error_rate"] == 12.0
    transitions = [e.payload for e in engine.journal(hid) if e.kind == "transition"]
    assert {"from": "verified", "to": "rolling_back"} in [
        {k: t[k] for k in ("from", "to")} for t in transitions
    ]


@pytest.mark.parametrize("policy", ["pause", "pass", "fail"])
def test_inconclusive_follows_the_policy(world: World, policy: str) -> None:
    world.prod.set_mode("degraded", for_version=world.fix_sha)  # response time 1800 ms
    world.settings = {
        "monitor": {
            "count": 3,
            "inconclusive": policy,
            "metrics": [
                {
                    "name": "response_time",
                    "field": "responseTime",
                    "success": "< 1000",
                    "failure": ">= 3000",
                }
            ],
        }
    }
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    if policy == "pass":
        assert outcome.state == "done"
        assert engine.get(hid).context["monitor"]["verdict"] == "inconclusive"
        return
    if policy == "fail":
        assert outcome.state == "rolled_back"
        return
    assert outcome.state == "verified"
    assert outcome.exit_code == ExitCode.PAUSED
    assert outcome.paused_gate is None
    assert outcome.paused_reason is not None
    assert "monitoring was inconclusive after 3 rounds" in outcome.paused_reason
    assert "response_time: 3 inconclusive measurements" in outcome.paused_reason
    assert f"`hotfix rollback {hid}`" in outcome.paused_reason
    # a person looks, production recovers, and resume runs the analysis over a new window
    world.prod.clear_mode(world.fix_sha)
    outcome = engine.resume(hid)
    assert outcome.state == "done", outcome
    windows = {r["window"] for r in rounds(engine, hid)}
    assert len(windows) == 2
    assert len(rounds(engine, hid)) == 6


def test_a_crash_mid_window_resumes_the_same_window(world: World) -> None:
    def crash(event: Event) -> None:
        if event.kind == "measurement" and event.payload.get("round", 0) >= 4:
            raise Crash

    world.settings = {"monitor": {"duration": 1.0, "interval": 0.05}}  # 21 rounds
    engine = world.engine(on_event=crash)
    hid = world.start(engine)
    with pytest.raises(Crash):
        engine.drive(hid)
    before = [r["round"] for r in rounds(engine, hid)]
    assert before[0] == 0
    assert before[-1] >= 4
    engine.close()
    # a new process on the same store
    engine = world.engine()
    outcome = engine.drive(hid, take_over=True)
    assert outcome.state == "done", outcome
    after = rounds(engine, hid)
    numbers = [r["round"] for r in after]
    assert len({r["window"] for r in after}) == 1, "the window restarted"
    assert numbers == sorted(set(numbers)), "a round was measured twice"
    assert numbers[: len(before)] == before, "journaled rounds were lost"
    assert len(after) > len(before), "the window was skipped instead of continued"
    assert len(after) <= 21
    monitor = engine.get(hid).context["monitor"]
    assert monitor["rounds"] == len(after)
    assert monitor["window"]["missed_rounds"] == 21 - len(after)
    probes = [e for e in engine.journal(hid) if e.kind == "probe" and e.phase == "monitor"]
    assert len(probes) == 1


@pytest.mark.parametrize(
    ("metric", "message"),
    [
        ({"name": "e", "field": "errorRate", "success": "<< 5"}, "monitor.metrics: metric e"),
        ({"name": "c", "source": "client", "field": "cpu"}, "client field 'cpu'"),
        ({"name": "p", "source": "prometheus", "query": "up"}, "prometheus_url is not set"),
    ],
)
def test_a_bad_metric_fails_the_monitor_with_a_hint(
    world: World, metric: dict[str, Any], message: str
) -> None:
    world.settings = {"monitor": {"metrics": [metric]}}
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "failed"
    assert message in str(outcome.error)
    assert "What to do:" in str(outcome.error)
    assert engine.get(hid).failed_from == "verified"
