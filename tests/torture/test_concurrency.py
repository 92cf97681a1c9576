"""Concurrent drivers: many ``hotfix resume`` processes at once, and a paused driver fenced out.

The command has no lease-TTL option, so these tests run the command's ``main()`` with a short
default lease (``harness.LEASE_SHIM``): a killed driver's lease then expires in
seconds instead of 30.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, Proc, assert_no_traceback, wait_for
from tests.torture.invariants import check_trial
from tests.torture.sandbox import ISSUE, Sandbox, monitor_rounds

Factory = Callable[..., Sandbox]
TTL = 3.0
RACES_CI = (2, 4, 8)
RACES_TORTURE = (2, 3, 4, 5, 6, 7, 8) * 4


def _lease_free(sb: Sandbox) -> bool:
    hotfix = sb.hotfix()
    return hotfix is not None and not hotfix.lease_live()


def _holder_pid(sb: Sandbox) -> int | None:
    hotfix = sb.hotfix()
    if hotfix is None or not hotfix.lease_live() or not hotfix.lease_owner:
        return None
    return int(hotfix.lease_owner.split(":")[1])


def _in_monitor_window(sb: Sandbox, proc: Proc) -> Proc:
    """Start the hotfix and return once its driver is inside a long monitoring window."""
    wait_for(lambda: monitor_rounds(sb) >= 1 or not proc.running(), "monitoring")
    assert proc.running(), proc.finish()
    return proc


def _race(sb: Sandbox, n: int) -> None:
    """``n`` drivers at once: one drives (it is SIGKILLed afterwards), n-1 exit 4 naming it."""
    procs = [sb.spawn("resume", ISSUE, lease_ttl=TTL) for _ in range(n)]
    wait_for(
        lambda: sum(not p.running() for p in procs) >= n - 1,
        f"{n - 1} of {n} drivers to give up",
    )
    running = [p for p in procs if p.running()]
    assert len(running) == 1, f"{len(running)} drivers run at once"
    driver = running[0]
    assert _holder_pid(sb) == driver.pid
    driver.power_cut()
    driver.finish()
    for proc in procs:
        if proc is driver:
            continue
        result = proc.finish()
        assert result.code == ExitCode.LEASE_HELD, str(result)
        assert_no_traceback(result)
        assert f":{driver.pid}:" in result.err, f"the holder is not named:\n{result}"
        assert "another driver holds this hotfix" in result.err, str(result)
    wait_for(lambda: _lease_free(sb), "the killed driver's lease to expire", timeout=TTL * 10)


def _races(sb: Sandbox, sizes: tuple[int, ...]) -> None:
    sb.configure({"monitor": {"duration": 120.0, "interval": 0.2}})
    start = sb.spawn(*sb.start_args(), lease_ttl=TTL)
    _in_monitor_window(sb, start).power_cut()
    start.finish()
    wait_for(lambda: _lease_free(sb), "the first driver's lease to expire", timeout=TTL * 10)
    for n in sizes:
        _race(sb, n)
    # The last round: a short window lets the winner finish the hotfix.
    sb.configure({"monitor": {"duration": 0.5}})
    final = sb.cli("resume", ISSUE, timeout=120)
    assert final.code == ExitCode.OK, str(final)
    check_trial(sb, None)
    FIGURES.add("race", rounds=len(sizes), drivers=sum(sizes) + 2, duplicated=0)


def test_many_drivers_race_one_drives(sandbox: Sandbox) -> None:
    """Rounds of 2 to 8 simultaneous ``hotfix resume``: each time exactly one drives and the
    others exit 4 naming it; the driver is then killed and the next round races again."""
    _races(sandbox, RACES_CI)


@pytest.mark.torture
def test_many_drivers_race_one_drives_torture(sandbox: Sandbox) -> None:
    _races(sandbox, RACES_TORTURE)


def test_paused_driver_loses_its_lease_and_exits_cleanly(sandbox: Sandbox) -> None:
    """A driver SIGSTOPped past its lease: another resumes; on SIGCONT the paused one finds
    its writes refused (fencing) and exits 4 with a message, no traceback; the second driver
    finishes the hotfix with nothing done twice."""
    sb = sandbox
    sb.configure({"monitor": {"duration": 8.0, "interval": 0.2}})
    paused = _in_monitor_window(sb, sb.spawn(*sb.start_args(), lease_ttl=TTL))
    paused.signal(signal.SIGSTOP)
    try:
        stopped_at = time.monotonic()
        wait_for(lambda: _lease_free(sb), "the paused driver's lease to expire", timeout=TTL * 10)
        assert time.monotonic() - stopped_at >= TTL - 1
        second = sb.spawn("resume", ISSUE, lease_ttl=TTL)
        wait_for(lambda: _holder_pid(sb) == second.pid, "the second driver to take the lease")
        hotfix = sb.hotfix()
        assert hotfix is not None
        token, seq = hotfix.fencing_token, hotfix.last_seq
    finally:
        paused.signal(signal.SIGCONT)
    woken = paused.finish(timeout=60)
    assert woken.code == ExitCode.LEASE_HELD, str(woken)
    assert_no_traceback(woken)
    assert "lease" in woken.err, str(woken)
    assert "taken over" in woken.err or "lost" in woken.err, str(woken)
    result = second.finish(timeout=120)
    assert result.code == ExitCode.OK, str(result)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.fencing_token == token  # nobody took the lease back
    assert hotfix.last_seq > seq
    check_trial(sb, None)
    FIGURES.add("race", rounds=1, drivers=2, sigstop=1, duplicated=0)


def _deploy_dispatches(sb: Sandbox) -> list[dict[str, object]]:
    return [
        d for d in sb.effects().get("dispatches", []) if d["workflow"] == "deploy-production.yml"
    ]


@pytest.mark.parametrize("frozen_in", ["retry-wait", "request-in-flight"])
def test_driver_frozen_while_retrying_a_dispatch_sends_nothing_when_woken(
    sandbox: Sandbox, frozen_in: str
) -> None:
    """The deploy dispatch is refused (503) again and again; its driver is frozen (SIGSTOP)
    past its lease — between two attempts, or with a request held in the network — the
    network recovers, a second driver resumes and deploys. Woken, the first driver sends no
    dispatch and writes nothing: it exits 4 saying it lost its lease. The world shows
    exactly one deploy dispatch."""
    sb = sandbox
    gh = sb.running.github
    latency = 1.5 if frozen_in == "request-in-flight" else 0.0
    gh.set_fault("POST */dispatches", error_rate=1.0, status=503, latency=latency)
    sb.configure({"retry_limit": 50, "github": {"max_backoff": 0.3}})
    first = sb.spawn(*sb.start_args(), lease_ttl=TTL)

    def refused_twice() -> bool:
        hotfix = sb.hotfix()
        if hotfix is None:
            return False
        return sum(e.kind == "failed" and e.phase == "deploy" for e in sb.journal(hotfix.id)) >= 2

    wait_for(refused_twice, "two refused deploy dispatches")
    assert first.running(), first.finish()
    # With latency, the driver spends most of its time waiting for an answer: it is frozen
    # with a request in flight; without, between two attempts.
    first.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _lease_free(sb), "the frozen driver's lease to expire", timeout=TTL * 10)
        gh.clear_faults()
        second = sb.spawn("resume", ISSUE, lease_ttl=TTL)
        result = second.finish(timeout=180)
        assert result.code == ExitCode.OK, str(result)
        assert len(_deploy_dispatches(sb)) == 1
    finally:
        first.signal(signal.SIGCONT)
    woken = first.finish(timeout=60)
    assert woken.code == ExitCode.LEASE_HELD, str(woken)
    assert_no_traceback(woken)
    assert "lost its lease" in woken.err, str(woken)
    assert "sent nothing" in woken.err, str(woken)
    dispatched = _deploy_dispatches(sb)
    check_trial(sb, None)
    FIGURES.add("race", rounds=1, drivers=2, sigstop=1, duplicated=max(0, len(dispatched) - 1))
    assert len(dispatched) == 1, dispatched
