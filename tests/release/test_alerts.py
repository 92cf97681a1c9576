"""Alerts to a local receiver: Slack and generic payloads, filtering, failures, secrecy."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import requests

from hotfix_fsm.adapters.alerts import Alerter, Target, build_alert, slack_payload, webhook_payload
from hotfix_fsm.config import config_from_mapping
from hotfix_fsm.core.redact import redact
from hotfix_fsm.store import Hotfix

from .conftest import Receiver, free_port


def hotfix(**context: Any) -> Hotfix:
    now = time.time()
    return Hotfix(
        id="INC-7-20260101-000000",
        issue="INC-7",
        description="Fix token expiry",
        repo="/tmp/repo",
        state="verified",
        failed_from=None,
        paused_reason=None,
        paused_gate=None,
        error=None,
        context=context,
        options={},
        graph_hash="g",
        created_at=now,
        updated_at=now,
        last_seq=1,
        lease_owner=None,
        lease_acquired_at=None,
        lease_expires_at=None,
        fencing_token=1,
    )


CONTEXT = {
    "pr_url": "http://github.local/acme/shop/pull/3",
    "pr_number": 3,
    "deploy_run_url": "http://github.local/acme/shop/actions/runs/9",
    "monitor": {"last_values": {"error_rate": 12.5, "response_time": 1800, "uptime": 99.5}},
}


def test_slack_and_webhook_payloads_are_delivered(
    receiver: Receiver, session: requests.Session
) -> None:
    config = config_from_mapping(
        {
            "alerts": {
                "slack_webhook": receiver.url + "/slack/T0/B0/sec",
                "webhook_url": receiver.url + "/generic/sec",
            }
        }
    )
    alerter = Alerter.from_config(config, session)
    result = alerter.send(
        "rollback_started",
        hotfix(**CONTEXT),
        "rolling back: error_rate",
        {"reason": "error_rate breached"},
    )
    assert result == {"severity": "critical", "delivered": ["slack", "webhook"], "failed": []}
    (slack,) = receiver.bodies("/slack/T0/B0/sec")
    assert slack["text"].startswith("🚨 CRITICAL: Rollback started — INC-7-20260101-000000")
    attachment = slack["attachments"][0]
    assert attachment["color"] == "danger"
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["Hotfix"] == "INC-7-20260101-000000"
    assert fields["Issue"] == "INC-7"
    assert fields["State"] == "verified"
    assert fields["Phase"] == "monitor"
    assert fields["Error Rate"] == "12.5%"
    assert fields["Response Time"] == "1800 ms"
    assert fields["Uptime"] == "99.5%"
    assert "<http://github.local/acme/shop/pull/3|PR #3>" in fields["Links"]
    assert "<http://github.local/acme/shop/actions/runs/9|workflow run>" in fields["Links"]
    (generic,) = receiver.bodies("/generic/sec")
    assert generic["event"] == "rollback_started"
    assert generic["severity"] == "critical"
    assert generic["hotfix"]["issue"] == "INC-7"
    assert generic["links"] == {"pr": CONTEXT["pr_url"], "run": CONTEXT["deploy_run_url"]}
    assert generic["metrics"]["Error Rate"] == "12.5%"
    assert generic["fields"] == {"reason": "error_rate breached"}
    assert "sec" not in json.dumps(result)


def test_only_configured_events_are_sent(receiver: Receiver, session: requests.Session) -> None:
    config = config_from_mapping(
        {"alerts": {"webhook_url": receiver.url + "/hook", "events": ["failed"]}}
    )
    alerter = Alerter.from_config(config, session)
    assert alerter.send("completed", hotfix(), "done", {}) is None
    assert alerter.send("failed", hotfix(), "boom", {"phase": "deploy"}) is not None
    assert [b["event"] for b in receiver.bodies("/hook")] == ["failed"]
    assert receiver.bodies("/hook")[0]["hotfix"]["phase"] == "deploy"


def test_nothing_configured_sends_nothing(session: requests.Session) -> None:
    alerter = Alerter.from_config(config_from_mapping({}), session)
    assert not alerter.configured
    assert alerter.send("failed", hotfix(), "boom", {}) is None


def test_undeliverable_alerts_are_reported_never_raised(
    receiver: Receiver, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/services/T1/B1/very-secret-path"
    receiver.status = 500
    alerter = Alerter(
        [Target("slack", dead), Target("webhook", receiver.url + "/x")], session, timeout=1
    )
    with caplog.at_level(logging.WARNING, logger="hotfix_fsm"):
        result = alerter.send("failed", hotfix(), "boom", {})
    logs = [r.event_dict for r in caplog.records if r.name == "hotfix_fsm.alerts"]
    assert result is not None
    assert result["delivered"] == []
    assert result["failed"] == [
        # Refused: nothing was sent, so it was tried again (three tries in all).
        {"target": "slack", "error": "cannot connect to the webhook (3 attempts)"},
        # A 500 may have been taken: a chat message is not repeated.
        {"target": "webhook", "error": "the webhook answered HTTP 500"},
    ]
    assert len(receiver.bodies("/x")) == 1
    assert [entry["target"] for entry in logs if entry["event"] == "alert_not_delivered"] == [
        "slack",
        "webhook",
    ]
    assert "very-secret-path" not in json.dumps(result) + json.dumps(logs) + caplog.text


def test_a_broken_session_does_not_escape(session: requests.Session) -> None:
    class Broken:
        def post(self, *_a: object, **_k: object) -> None:
            raise RuntimeError("https://hooks.slack.com/services/T/B/leak exploded")

    alerter = Alerter([Target("slack", "http://127.0.0.1:9/hook")], Broken())  # type: ignore[arg-type]
    result = alerter.send("failed", hotfix(), "boom", {})
    assert result is not None
    assert result["failed"][0]["target"] == "alerter"
    assert "leak" not in json.dumps(result)


def test_webhook_urls_from_the_environment_are_secrets(
    receiver: Receiver, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = receiver.url + "/env-hook-0123456789"
    monkeypatch.setenv("HOTFIX_TEST_HOOK", url)
    config = config_from_mapping({"alerts": {"webhook_url_env": "HOTFIX_TEST_HOOK"}})
    alerter = Alerter.from_config(config, session)
    assert alerter.send("completed", hotfix(), f"posted to {url}", {}) == {
        "severity": "info",
        "delivered": ["webhook"],
        "failed": [],
    }
    assert redact(f"see {url}") == "see ***"
    (body,) = receiver.bodies("/env-hook-0123456789")
    assert url not in json.dumps(body)
    assert body["message"] == "posted to ***"


def test_payload_builders_without_links_or_metrics() -> None:
    alert = build_alert("paused", hotfix(), "waiting", {"gate": "deploy"})
    slack = slack_payload(alert)
    assert slack["text"].startswith("⚠️ WARNING: Hotfix waiting for a human")
    titles = [f["title"] for f in slack["attachments"][0]["fields"]]
    assert titles == ["Hotfix", "Issue", "State", "Phase"]
    generic = webhook_payload(alert)
    assert generic["links"] == {}
    assert generic["metrics"] == {}
    assert generic["fields"] == {"gate": "deploy"}
    rollback = build_alert(
        "rollback_finished",
        hotfix(rollback_run_url="http://r/1", deploy_run_url="http://d/1"),
        "ok",
        {},
    )
    assert rollback.links["run"] == "http://r/1"


def _pagerduty(receiver: Receiver, session: requests.Session, waits: list[float]) -> Alerter:
    return Alerter(
        [Target("pagerduty", receiver.url + "/v2/enqueue", "routing-key-0123456789")],
        session,
        timeout=1,
        sleep=waits.append,  # the waits asked for, recorded instead of slept
    )


def test_pagerduty_is_asked_again_after_a_server_error_and_a_rate_limit(
    receiver: Receiver, session: requests.Session
) -> None:
    receiver.script = [(503, {}, 0.0), (429, {"Retry-After": "2"}, 0.0)]
    receiver.status = 202
    waits: list[float] = []
    result = _pagerduty(receiver, session, waits).send("failed", hotfix(), "boom", {})
    assert result == {"severity": "critical", "delivered": ["pagerduty"], "failed": []}
    events = receiver.bodies("/v2/enqueue")
    assert len(events) == 3
    assert {e["dedup_key"] for e in events} == {"INC-7-20260101-000000"}  # one incident
    assert 0.0 < waits[0] <= 0.5  # the backoff's first step
    assert waits[1] == 2.0  # what the receiver asked for


def test_pagerduty_is_asked_again_after_a_timeout_a_chat_message_is_not(
    receiver: Receiver, session: requests.Session
) -> None:
    receiver.script = [(202, {}, 2.0)]  # answers after the client's 1 s timeout
    receiver.status = 202
    waits: list[float] = []
    result = _pagerduty(receiver, session, waits).send("failed", hotfix(), "boom", {})
    assert result is not None
    assert result["delivered"] == ["pagerduty"]
    assert len(receiver.bodies("/v2/enqueue")) == 2  # deduplicated by PagerDuty

    receiver.script = [(200, {}, 2.0)]
    slack = Alerter(
        [Target("slack", receiver.url + "/slack")], session, timeout=1, sleep=waits.append
    )
    result = slack.send("failed", hotfix(), "boom", {})
    assert result is not None
    assert result["failed"] == [{"target": "slack", "error": "no answer within 1s"}]
    assert len(receiver.bodies("/slack")) == 1  # it may have been posted: never twice


@pytest.mark.parametrize(
    ("answer", "headers"),
    [(400, {}), (403, {}), (429, {"Retry-After": "3600"})],
    ids=["bad-request", "forbidden", "retry-after-beyond-the-budget"],
)
def test_what_will_not_pass_is_not_retried(
    receiver: Receiver, session: requests.Session, answer: int, headers: dict[str, str]
) -> None:
    receiver.script = [(answer, headers, 0.0)]
    receiver.status = 202
    waits: list[float] = []
    result = _pagerduty(receiver, session, waits).send("paused", hotfix(), "waiting", {})
    assert result is not None
    assert result["failed"] == [
        {"target": "pagerduty", "error": f"the webhook answered HTTP {answer}"}
    ]
    assert len(receiver.bodies("/v2/enqueue")) == 1
    assert waits == []


def test_retries_stop_at_the_budget(receiver: Receiver, session: requests.Session) -> None:
    receiver.status = 503
    waits: list[float] = []
    alerter = Alerter(
        [Target("webhook", receiver.url + "/hook")],
        session,
        timeout=1,
        attempts=10,
        retry_budget=0.0,  # no time to wait at all: one try
        sleep=waits.append,
    )
    result = alerter.send("failed", hotfix(), "boom", {})
    assert result is not None
    assert result["failed"] == [{"target": "webhook", "error": "the webhook answered HTTP 503"}]
    assert len(receiver.bodies("/hook")) == 1
    assert waits == []
