"""A deploy dispatch still in flight when its driver froze: the next driver waits for it."""

from __future__ import annotations

import signal

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, assert_no_traceback, wait_for
from tests.torture.invariants import check_trial
from tests.torture.sandbox import ISSUE, Sandbox

TTL = 3.0
HELD = 5.0  # GitHub holds the dispatch this long before it acts: longer than the lease


def _deploys(sb: Sandbox) -> list[dict[str, object]]:
    return [
        d for d in sb.effects().get("dispatches", []) if d["workflow"] == "deploy-production.yml"
    ]


def _dispatch_requests(sb: Sandbox) -> int:
    counts = sb.running.github.request_counts()
    return sum(c["count"] for key, c in counts.items() if key.endswith("/dispatches"))


def test_a_dispatch_held_in_the_network_is_found_not_repeated(sandbox: Sandbox) -> None:
    """The driver sends the deploy dispatch; GitHub holds it for longer than the lease lives,
    and the driver is frozen meanwhile. A second driver resumes once the lease expired: the
    intent is another driver's and in doubt, so it looks for that dispatch's run for as long
    as a request can be in flight, finds it when GitHub acts, and adopts it — it sends no
    dispatch of its own. The woken first driver writes nothing and exits 4."""
    sb = sandbox
    gh = sb.running.github
    gh.set_fault("POST */dispatches", latency=HELD)
    first = sb.spawn(*sb.start_args(), lease_ttl=TTL)
    wait_for(lambda: _dispatch_requests(sb) >= 1, "the deploy dispatch to reach GitHub")
    first.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _lease_free(sb), "the frozen driver's lease to expire", timeout=TTL * 40)
        gh.clear_faults()
        second = sb.spawn("resume", ISSUE, lease_ttl=TTL)
        result = second.finish(timeout=180)
        assert result.code == ExitCode.OK, str(result)
    finally:
        first.signal(signal.SIGCONT)
    woken = first.finish(timeout=60)
    assert woken.code == ExitCode.LEASE_HELD, str(woken)
    assert_no_traceback(woken)
    assert "lost its lease" in woken.err, str(woken)
    hotfix = sb.hotfix()
    assert hotfix is not None
    probes = [e for e in sb.journal(hotfix.id) if e.kind == "probe" and e.phase == "deploy"]
    assert [p.payload["status"] for p in probes] == ["done"], probes
    assert probes[0].payload.get("intent_of"), probes[0].payload
    dispatched = _deploys(sb)
    check_trial(sb, None)
    FIGURES.add("race", rounds=1, drivers=2, sigstop=1, duplicated=max(0, len(dispatched) - 1))
    assert len(dispatched) == 1, dispatched


def _lease_free(sb: Sandbox) -> bool:
    hotfix = sb.hotfix()
    return hotfix is not None and not hotfix.lease_live()
