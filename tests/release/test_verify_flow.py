"""Verify and the automatic rollback, driven through the engine in the rehearsal world."""

from __future__ import annotations

import json
from typing import Any

from hotfix_fsm.durable.runner import Event
from hotfix_fsm.errors import ExitCode

from .conftest import Receiver
from .world import World


def measurements(engine: Any, hid: str, check: str) -> list[dict[str, Any]]:
    return [
        e.payload
        for e in engine.journal(hid)
        if e.kind == "measurement" and e.payload.get("check") == check
    ]


def test_healthy_deploy_is_verified_monitored_and_done(world: World, receiver: Receiver) -> None:
    world.settings = {
        "alerts": {"webhook_url": receiver.url + "/hook/secret-token-123"},
        "monitor": {
            "prometheus_url": world.prod.base_url,
            "metrics": [
                {"name": "error_rate", "field": "errorRate", "success": "< 5", "failure": ">= 10"},
                {"name": "latency", "source": "client", "field": "latency_ms", "success": "< 1000"},
                {
                    "name": "ok_ratio",
                    "source": "client",
                    "field": "success_ratio",
                    "success": ">= 0.95",
                },
                {
                    "name": "prom_uptime",
                    "source": "prometheus",
                    "query": "hotfix_uptime",
                    "success": ">= 99",
                    "failure": "< 95",
                },
            ],
        },
    }
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "done", outcome
    assert outcome.exit_code == ExitCode.OK
    facts = engine.get(hid).context
    assert facts["verify"]["healthy"] is True
    assert facts["verify"]["version"] == world.fix_sha
    monitor = facts["monitor"]
    assert monitor["verdict"] == "successful"
    assert monitor["window"]["planned_rounds"] == 11
    done = monitor["rounds"]
    assert 6 <= done <= 11  # a round is skipped, never made up, if one ran very late
    assert set(monitor["metrics"]) == {"error_rate", "latency", "ok_ratio", "prom_uptime"}
    assert all(m["successful"] == done for m in monitor["metrics"].values())
    assert monitor["last_values"]["prom_uptime"] == 99.99
    rows = [
        e.payload for e in engine.journal(hid) if e.kind == "measurement" and e.phase == "monitor"
    ]
    numbers = [r["round"] for r in rows]
    assert numbers[0] == 0
    assert numbers == sorted(set(numbers))
    assert len(numbers) == done
    assert measurements(engine, hid, "verify")[-1]["healthy"] is True
    assert world.prod.counters()["query 200"] == done
    assert not world.dispatches("rollback.yml")
    # time to production is noted; the completion alert reached the receiver
    notes = [e.payload for e in engine.journal(hid) if e.kind == "note" and e.phase == "verify"]
    assert notes
    assert notes[-1]["breached"] is False
    assert [b["event"] for b in receiver.bodies("/hook/secret-token-123")] == ["completed"]
    assert "secret-token-123" not in json.dumps([e.payload for e in engine.journal(hid)])


def test_unhealthy_deploy_rolls_back_automatically(world: World, receiver: Receiver) -> None:
    world.prod.set_mode("failing", for_version=world.fix_sha)
    world.settings = {"alerts": {"slack_webhook": receiver.url + "/slack/T/B/xyz"}}
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "rolled_back", outcome
    facts = engine.get(hid).context
    assert facts["rollback_revert"] == "not needed (not merged)"
    assert facts["rollback_run_conclusion"] == "success"
    assert facts["rollback_ref"] == "v1.0.0"
    assert facts["rollback_verify"]["version"] == world.base_sha
    assert world.prod.version == world.base_sha
    (dispatch,) = world.dispatches("rollback.yml")
    assert dispatch["ref"] == "v1.0.0"
    assert dispatch["inputs"]["target_sha"] == world.base_sha
    assert dispatch["inputs"]["hotfix_id"] == hid
    assert dispatch["inputs"]["correlation_id"] == facts["rollback_correlation_id"]
    verify_checks = measurements(engine, hid, "verify")
    assert len(verify_checks) >= 2
    assert all(not m["healthy"] for m in verify_checks)
    assert verify_checks[-1]["reason"] == "HTTP 503, expected 200"
    events = [b["text"] for b in receiver.bodies("/slack/T/B/xyz")]
    assert len(events) == 2
    assert "Rollback started" in events[0]
    assert "Rollback finished" in events[1]
    alerts = [e.payload for e in engine.journal(hid) if e.kind == "alert"]
    assert [a["event"] for a in alerts] == ["rollback_started", "rollback_finished"]
    assert "xyz" not in json.dumps(alerts)


def test_verify_waits_for_the_new_version_to_roll_out(world: World) -> None:
    """The deploy finished but production still reports the old version for a moment."""

    def deploy(ctx: Any) -> dict[str, Any]:
        ctx.save(rollback_target={"sha": world.base_sha, "tag": "v1.0.0"})
        return {"deployed_sha": world.fix_sha}

    def roll_out(event: Event) -> None:
        if event.kind == "measurement" and event.payload.get("n") == 3:
            world.prod.set_version(world.fix_sha)

    from .world import StandIn

    world.settings = {"monitor": {"enabled": False}, "verify": {"timeout": 5.0}}
    engine = world.engine(phases=world.phases(deploy=StandIn("deploy", deploy)), on_event=roll_out)
    hid = world.start(engine)
    assert engine.drive(hid).state == "done"
    checks = measurements(engine, hid, "verify")
    assert [c["healthy"] for c in checks] == [False, False, False, True]
    assert "reports version" in checks[0]["reason"]
    assert engine.get(hid).context["monitor"] == {
        "verdict": "skipped",
        "reason": "monitor.enabled is false",
    }


def test_verify_without_a_url_fails_with_a_hint(world: World) -> None:
    world.settings = {"verify": {"url": ""}}
    engine = world.engine()
    hid = world.start(engine)
    outcome = engine.drive(hid)
    assert outcome.state == "failed"
    assert outcome.error is not None
    assert "verify.url is not set" in outcome.error
    assert "What to do: set verify.url" in outcome.error
    assert engine.get(hid).failed_from == "deployed"
