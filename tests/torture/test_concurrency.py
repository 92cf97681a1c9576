"""Concurrent drivers: many ``hotfix resume`` processes at once, and paused or frozen drivers
fenced out.

The command has no lease-TTL option, so these tests run the command's ``main()`` with a short
default lease (``harness.LEASE_SHIM``): a killed driver's lease then expires in
seconds instead of 30.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, Proc, assert_no_traceback, parallel, wait_for
from tests.torture.invariants import ZERO, check_trial, duplicates
from tests.torture.sandbox import FAILPOINT_LOG, ISSUE, Sandbox, monitor_rounds

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


def _stopped(proc: Proc) -> bool:
    """The process is stopped (SIGSTOP), as its parent sees it; its state stays reportable."""
    if proc.popen.returncode is not None:
        return False
    info = os.waitid(os.P_PID, proc.pid, os.WSTOPPED | os.WNOHANG | os.WNOWAIT)
    return info is not None and info.si_code == os.CLD_STOPPED


def _drivers(sb: Sandbox) -> int:
    """Drivers that took a step of the hotfix: distinct lease owners of its intent rows."""
    hotfix = sb.hotfix()
    if hotfix is None:
        return 0
    return len({e.payload.get("driver") for e in sb.journal(hotfix.id) if e.kind == "intent"})


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
    wait_for(lambda: _lease_free(sb), "the killed driver's lease to expire", timeout=TTL * 40)


def _races(sb: Sandbox, sizes: tuple[int, ...]) -> None:
    sb.configure({"monitor": {"duration": 120.0, "interval": 0.2}})
    start = sb.spawn(*sb.start_args(), lease_ttl=TTL)
    _in_monitor_window(sb, start).power_cut()
    start.finish()
    wait_for(lambda: _lease_free(sb), "the first driver's lease to expire", timeout=TTL * 40)
    for n in sizes:
        _race(sb, n)
    # The last round: a short window lets the winner finish the hotfix.
    sb.configure({"monitor": {"duration": 0.5}})
    # The hotfix pinned its configuration at start: take the shorter window explicitly.
    final = sb.cli("resume", ISSUE, "--reload-config", timeout=120)
    FIGURES.add("race", rounds=len(sizes), drivers=sum(sizes) + 2, duplicated=duplicates(sb))
    assert final.code == ExitCode.OK, str(final)
    check_trial(sb, None)


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
        wait_for(lambda: _stopped(paused), "the driver to stop")
        stops = int(_stopped(paused))  # as the kernel reports it
        stopped_at = time.monotonic()
        wait_for(lambda: _lease_free(sb), "the paused driver's lease to expire", timeout=TTL * 40)
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
    drivers = _drivers(sb)
    FIGURES.add(
        "race", rounds=drivers - 1, drivers=drivers, sigstop=stops, duplicated=duplicates(sb)
    )
    assert drivers == 2, f"{drivers} drivers took steps"
    assert result.code == ExitCode.OK, str(result)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.fencing_token == token  # nobody took the lease back
    assert hotfix.last_seq > seq
    check_trial(sb, None)


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
        wait_for(lambda: _stopped(first), "the driver to stop")
        stops = int(_stopped(first))  # as the kernel reports it
        wait_for(lambda: _lease_free(sb), "the frozen driver's lease to expire", timeout=TTL * 40)
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
    drivers = _drivers(sb)
    FIGURES.add(
        "race", rounds=drivers - 1, drivers=drivers, sigstop=stops, duplicated=duplicates(sb)
    )
    assert len(dispatched) == 1, dispatched
    check_trial(sb, None)


# The effects a frozen driver must not repeat, each counted as the rehearsal world shows it.
FROZEN_EFFECTS = ("deploy", "merge", "tag")


def _effect_counts(sb: Sandbox) -> dict[str, int]:
    """Deploy dispatches, merges and new tags the world shows."""
    effects = sb.effects()
    workflow = sb.read_config()["deploy"]["workflow"]
    refs = effects.get("refs", [])
    return {
        "deploy": sum(1 for d in effects.get("dispatches", []) if d["workflow"] == workflow),
        "merge": len(effects.get("merges", [])),
        "tag": sum(1 for r in refs if r["ref"].startswith("refs/tags/") and r["old"] == ZERO),
    }


def _frozen_at_a_boundary(sandboxes: Factory, phase: str, point: str) -> None:
    sb = sandboxes(f"frozen-{phase}-{point}")
    spec = f"{phase}:{point}=stop"
    env = {failpoints.ENV: spec, FAILPOINT_LOG: str(sb.failpoint_log)}
    first = sb.spawn(*sb.start_args(), env=env, lease_ttl=TTL)
    try:
        wait_for(lambda: _stopped(first) or not first.running(), f"the driver to freeze at {spec}")
        assert _stopped(first), f"never froze at {spec}:\n{first.finish()}"
        stops = int(_stopped(first))
        assert sb.fired_failpoints() == [f"{phase}:{point}@1=stop"]
        at_freeze = _effect_counts(sb)
        wait_for(lambda: _lease_free(sb), "the frozen driver's lease to expire", timeout=TTL * 40)
        second = sb.spawn("resume", ISSUE, lease_ttl=TTL)
        result = second.finish(timeout=180)
        hotfix = sb.hotfix()
        assert hotfix is not None
        token, seq = hotfix.fencing_token, hotfix.last_seq
    except BaseException:
        first.power_cut()  # never wake a driver the test gave up on
        first.finish()
        raise
    first.signal(signal.SIGCONT)
    woken = first.finish(timeout=60)
    hotfix = sb.hotfix()
    assert hotfix is not None
    counts = _effect_counts(sb)
    drivers = _drivers(sb)
    FIGURES.add(
        "race",
        rounds=drivers - 1,
        drivers=drivers,
        sigstop=stops,
        duplicated=duplicates(sb),
        frozen_at=f"{phase}:{point}",
    )
    # Frozen exactly where asked: its effect taken (after_effect) or not yet (before_effect).
    taken = 1 if point == "after_effect" else 0
    assert at_freeze[phase] == taken, (spec, at_freeze)
    assert counts == dict.fromkeys(FROZEN_EFFECTS, 1), counts
    assert result.code == ExitCode.OK, str(result)
    assert woken.code == ExitCode.LEASE_HELD, str(woken)
    assert_no_traceback(woken)
    assert "lost its lease" in woken.err, str(woken)
    assert "sent nothing" in woken.err, str(woken)
    assert (hotfix.last_seq, hotfix.fencing_token) == (seq, token), "the woken driver wrote"
    assert drivers == 2, f"{drivers} drivers took steps"
    check_trial(sb, None)


@pytest.mark.parametrize("point", ["after_effect", "before_effect"])
def test_driver_frozen_at_an_effect_boundary_sends_nothing_when_woken(
    sandboxes: Factory, point: str
) -> None:
    """A failpoint freezes the driver (SIGSTOP, ``<phase>:<point>=stop``) between the deploy
    dispatch, the merge or the tag and its done row — or just before the effect — until its
    lease expires; a second driver resumes to the end. Woken (SIGCONT), the first sends
    nothing and writes nothing: it exits 4 saying it lost its lease. The world shows one
    deploy dispatch, one merge and one tag."""
    parallel(lambda phase: _frozen_at_a_boundary(sandboxes, phase, point), list(FROZEN_EFFECTS))


def test_failpoint_specs_keep_their_meaning() -> None:
    """``<phase>:<point>[@<n>]`` still kills; ``=stop`` freezes; a typo is refused."""
    assert failpoints.parse("deploy:after_effect") == ("deploy", "after_effect", 1, "kill")
    assert failpoints.parse("gate:tests:after_done@2") == ("gate:tests", "after_done", 2, "kill")
    assert failpoints.parse("merge:*@3=stop") == ("merge", "*", 3, "stop")
    assert failpoints.parse("*:before_effect=kill") == ("*", "before_effect", 1, "kill")
    with pytest.raises(ValueError, match="unknown failpoint action 'stpo'"):
        failpoints.parse("tag:after_effect=stpo")
