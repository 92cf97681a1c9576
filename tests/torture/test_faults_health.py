"""Production's health endpoint misbehaving: flapping, slow, garbage, connection refused.

Every version but the release misbehaves (the release stays healthy), so a fix that cannot
be verified is rolled back and the rollback verifies.
"""

from __future__ import annotations

from collections.abc import Callable

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, assert_no_traceback, parallel, wait_for
from tests.torture.invariants import check_trial, duplicates, failures
from tests.torture.sandbox import ISSUE, Sandbox, drive, monitor_rounds

Factory = Callable[..., Sandbox]

MODES = {"flapping": "rolled_back", "slow": "rolled_back", "garbage": "rolled_back"}


def _health_calls(sb: Sandbox) -> int:
    return sum(n for key, n in sb.running.production.counters().items() if key.startswith("health"))


def _mode(sandboxes: Factory, mode: str) -> None:
    sb = sandboxes(f"health-{mode}")
    sb.running.production.set_mode(mode, slow_seconds=2.0)
    sb.running.production.set_mode("healthy", for_version=sb.info.production_sha)
    run = drive(sb)
    FIGURES.add(
        "fault", scenario=f"health:{mode}", injected=_health_calls(sb), duplicated=duplicates(sb)
    )
    sig = check_trial(sb, None)
    assert sig["state"] == MODES[mode], f"{mode}: {sig['state']}\n{run.last}"
    assert sig["production_runs"] == "release"
    assert "rollback.yml" in sig["dispatches"]
    hotfix = sb.hotfix()
    assert hotfix is not None
    why = [
        e.payload
        for e in sb.journal(hotfix.id)
        if e.kind == "transition" and e.phase == "start_rollback"
    ]
    assert len(why) == 1, why


def test_unhealthy_fix_is_rolled_back(sandboxes: Factory) -> None:
    """Flapping (a breach in the window), slow (beyond the request timeout) and garbage
    bodies after the deploy: verify or monitor fails and the release is redeployed."""
    parallel(lambda mode: _mode(sandboxes, mode), list(MODES), workers=3)


def _refused_briefly(sandboxes: Factory) -> None:
    """The app is down for two rounds of the monitoring window, then back: errors are
    tolerated (consecutive_error_limit) and the hotfix completes."""
    sb = sandboxes("refused-briefly")
    sb.configure({"monitor": {"duration": 2.0, "interval": 0.2}})
    proc = sb.spawn(*sb.start_args())
    wait_for(lambda: monitor_rounds(sb) >= 1 or not proc.running(), "the monitoring window")
    sb.running.production.stop()
    try:
        wait_for(lambda: monitor_rounds(sb) >= 3 or not proc.running(), "two refused rounds")
    finally:
        sb.running.production.start()
    result = proc.finish()
    assert result.code == ExitCode.OK, str(result)
    hotfix = sb.hotfix()
    assert hotfix is not None
    rows = [
        e.payload for e in sb.journal(hotfix.id) if e.kind == "measurement" and e.phase == "monitor"
    ]
    refused = [r for r in rows if r.get("errors")]
    FIGURES.add(
        "fault",
        scenario="health:refused-briefly",
        injected=len(refused),
        duplicated=duplicates(sb),
    )
    assert refused, "no monitoring round saw the refused connection"
    check_trial(sb, None)


def _refused_for_good(sandboxes: Factory) -> None:
    """The app goes down as the deploy starts and stays down: verify fails, the rollback
    cannot be verified either → ``rollback_failed`` (exit 1, a clear message); once the app
    is back, ``hotfix resume`` verifies the rollback → ``rolled_back``."""
    sb = sandboxes("refused-for-good")

    def deploying() -> bool:
        hotfix = sb.hotfix()
        return hotfix is not None and hotfix.state == "deploying"

    proc = sb.spawn(*sb.start_args())
    wait_for(lambda: deploying() or not proc.running(), "the deploy")
    sb.running.production.stop()
    try:
        result = proc.finish()
        assert_no_traceback(result)
        assert result.code == ExitCode.FAILED, str(result)
        hotfix = sb.hotfix()
        assert hotfix is not None
        assert hotfix.state == "rollback_failed", str(result)
        text = result.out + result.err
        assert "rollback" in text
        assert "hotfix resume" in text or "What to do" in text, str(result)
    finally:
        sb.running.production.start()
    resumed = sb.cli("resume", ISSUE)
    # The verifications that met the refused connection, as the journal recorded them.
    refused = failures(sb, phase="verify") + failures(sb, phase="rollback_verify")
    FIGURES.add(
        "fault", scenario="health:refused-for-good", injected=refused, duplicated=duplicates(sb)
    )
    assert refused >= 1, "no verification failed on the refused connection"
    assert resumed.code == ExitCode.FAILED, str(resumed)  # rolled_back exits 1
    sig = check_trial(sb, None)
    assert sig["state"] == "rolled_back"
    assert sig["production_runs"] == "release"
    assert sig["dispatches"] == ["deploy-production.yml", "rollback.yml"]


def test_connection_refused(sandboxes: Factory) -> None:
    parallel(lambda f: f(sandboxes), [_refused_briefly, _refused_for_good], workers=2)
