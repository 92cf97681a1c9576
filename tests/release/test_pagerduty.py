"""The PagerDuty Events API v2 target against the rehearsal world's stand-in (``/v2/enqueue``,
validated as PagerDuty does): trigger on pause, failure and rollback, resolve at the end, one
dedup key per hotfix, the routing key never logged nor recorded."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
import requests

from hotfix_fsm.adapters.alerts import PAGERDUTY_RESOLVE, PAGERDUTY_TRIGGER, Alerter
from hotfix_fsm.config import config_from_mapping
from hotfix_fsm.sandbox.production_app import ProductionApp

from .test_alerts import CONTEXT, hotfix

KEY_ENV = "HOTFIX_TEST_PAGERDUTY_KEY"
ROUTING_KEY = "R0ut1ngK3y" + "f" * 22


@pytest.fixture
def pagerduty(prod: ProductionApp) -> ProductionApp:
    """The rehearsal production app, which also plays PagerDuty's Events API."""
    return prod


def _alerter(app: ProductionApp, session: requests.Session, **alerts: object) -> Alerter:
    config = config_from_mapping(
        {
            "alerts": {
                "pagerduty_routing_key_env": KEY_ENV,
                "pagerduty_url": app.base_url + "/v2/enqueue",
                **alerts,
            }
        }
    )
    return Alerter.from_config(config, session)


def test_trigger_on_pause_failure_rollback_and_resolve_at_the_end_under_one_dedup_key(
    pagerduty: ProductionApp,
    session: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(KEY_ENV, ROUTING_KEY)
    caplog.set_level(logging.DEBUG)
    alerter = _alerter(pagerduty, session)
    fix = hotfix(**CONTEXT)
    sent = ["paused", "time_target_breached", "failed", "rollback_started", "rollback_finished"]
    results = [alerter.send(event, fix, f"{event} happened", {}) for event in sent]
    heard = [e for e in sent if e in PAGERDUTY_TRIGGER | PAGERDUTY_RESOLVE]
    assert [r["delivered"] if r else None for r in results] == [
        ["pagerduty"] if e in heard else None for e in sent
    ]
    events = pagerduty.snapshot()["pagerduty_events"]
    assert [e["event_action"] for e in events] == [
        "resolve" if e in PAGERDUTY_RESOLVE else "trigger" for e in heard
    ]
    assert {e["dedup_key"] for e in events} == {fix.id}
    assert events[0]["severity"] in ("warning", "critical")
    assert fix.id in events[0]["summary"]
    # A second hotfix is a second incident.
    other = replace(fix, id="INC-8-20260101-000000")
    alerter.send("failed", other, "failed", {})
    assert {e["dedup_key"] for e in pagerduty.snapshot()["pagerduty_events"]} == {fix.id, other.id}
    assert ROUTING_KEY not in caplog.text
    assert ROUTING_KEY not in str(pagerduty.snapshot())
    assert ROUTING_KEY not in str(results)


def test_the_end_resolves_even_when_alerts_events_leaves_it_out(
    pagerduty: ProductionApp, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, ROUTING_KEY)
    alerter = _alerter(pagerduty, session, events=["failed"])
    fix = hotfix()
    assert alerter.send("paused", fix, "waiting", {}) is None  # not paged: not in events
    for event in ("failed", "cancelled"):
        result = alerter.send(event, fix, event, {})
        assert result is not None
        assert result["delivered"] == ["pagerduty"]
    actions = [e["event_action"] for e in pagerduty.snapshot()["pagerduty_events"]]
    assert actions == ["trigger", "resolve"]


def test_no_routing_key_no_target_and_a_rejected_event_is_reported_not_raised(
    pagerduty: ProductionApp, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert not _alerter(pagerduty, session).configured
    monkeypatch.setenv(KEY_ENV, ROUTING_KEY)
    broken = _alerter(pagerduty, session)
    result = broken.send("failed", replace(hotfix(), id=""), "failed", {})
    # An empty dedup key is still a valid trigger for PagerDuty; a resolve without one is not.
    assert result is not None
    result = broken.send("completed", replace(hotfix(), id=""), "done", {})
    assert result is not None
    assert result["delivered"] == []
    assert result["failed"][0]["target"] == "pagerduty"
    assert "400" in result["failed"][0]["error"]
