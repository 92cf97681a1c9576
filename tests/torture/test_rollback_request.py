"""``hotfix rollback`` from a second terminal while another process drives the hotfix."""

from __future__ import annotations

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, assert_no_traceback, wait_for
from tests.torture.invariants import check_trial
from tests.torture.sandbox import ISSUE, Sandbox, monitor_rounds

TTL = 3.0


def test_rollback_from_another_terminal_while_the_driver_monitors(sandbox: Sandbox) -> None:
    """The driver waits out a long monitoring window; a second terminal asks for a rollback
    with a reason. The request is journaled, the driver acts on it within one poll (no
    --take-over), production gets exactly one rollback dispatch, the reason is in the log
    and the status, and the rollback command exits 0 once production runs the target."""
    sb = sandbox
    sb.configure({"monitor": {"duration": 300.0, "interval": 0.2}})
    driver = sb.spawn(*sb.start_args(), lease_ttl=TTL)
    wait_for(lambda: monitor_rounds(sb) >= 1 or not driver.running(), "monitoring")
    assert driver.running(), driver.finish()
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.lease_live()
    before = len(sb.effects().get("dispatches", []))
    asked = sb.cli("rollback", ISSUE, "--reason", "error budget burning", timeout=180)
    assert asked.code == ExitCode.OK, str(asked)
    assert_no_traceback(asked)
    assert "rolled_back" in asked.out, str(asked)
    drove = driver.finish(timeout=120)
    assert drove.code == ExitCode.FAILED, str(drove)  # its hotfix ended rolled back
    assert_no_traceback(drove)
    hotfix = sb.hotfix()
    assert hotfix is not None
    assert hotfix.state == "rolled_back"
    journal = sb.journal(hotfix.id)
    requests = [e for e in journal if e.kind == "rollback_request"]
    assert len(requests) == 1
    assert requests[0].payload["reason"] == "error budget burning"
    started = [e for e in journal if e.kind == "transition" and e.phase == "start_rollback"]
    assert len(started) == 1
    assert started[0].payload["request_seq"] == requests[0].seq
    assert started[0].payload["reason"] == "error budget burning"
    shown = sb.cli("log", hotfix.id, timeout=60)
    assert "error budget burning" in shown.out, str(shown)
    status = sb.cli("status", hotfix.id, timeout=60)
    assert "rollback: error budget burning, asked by" in status.out, str(status)
    report = sb.cli("report", hotfix.id, timeout=60)
    assert "error budget burning" in report.out, str(report)
    dispatched = sb.effects().get("dispatches", [])
    rollbacks = len(dispatched) - before  # every dispatch after the deploy's is a rollback's
    assert rollbacks == 1, dispatched
    check_trial(sb, None)
    FIGURES.add("race", rounds=1, drivers=2, duplicated=max(0, rollbacks - 1))
