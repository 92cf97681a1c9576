"""Alerts: a Slack incoming-webhook message, a generic JSON webhook and PagerDuty incidents.

The runner calls ``Alerter.send`` when a hotfix waits for a human, fails, starts or ends a
rollback, breaches the time target, and completes — through its outbox (``durable.outbox``):
each alert is journaled as owed with the change that causes it and sent after, by any later
driver if a crash came in between. ``send`` never raises; a target that cannot be reached is
logged and reported in the returned dict, which the runner journals. Webhook URLs are secrets:
they are registered with the redactor, and neither they nor error texts that could contain them
leave this module — targets are named ``slack``, ``webhook`` and ``pagerduty`` only.

A delivery that fails for a reason that may pass is tried again, a few times within a bounded
budget, waiting with the project's backoff (or the ``Retry-After`` the receiver asked for):
a connection refused (nothing was sent), a 429 (the receiver did not take it), and a 502,
503 or 504 (a gateway that did not reach it). To PagerDuty, whose ``dedup_key`` makes a
repeat harmless, also a 500 and a timeout, as its Events API documentation asks of senders.
Slack and webhook messages are not repeated after a timeout or a 500, which they may have
taken: a duplicate chat message would be the cost. A 4xx other than 429 is never retried.

PagerDuty (Events API v2) is an incident, not a message: the hotfix id is the ``dedup_key``,
so every trigger of one hotfix (a pause, then a failure, an alert sent again after a crash)
lands on the same incident, and it is resolved when the hotfix ends (done, rolled back,
cancelled) — whatever ``alerts.events`` says, so no incident is left open. The routing key
is a secret like the webhook URLs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core import machine
from hotfix_fsm.core.redact import redact, redact_obj, register_secret
from hotfix_fsm.core.retry import backoff
from hotfix_fsm.log import get_logger

if TYPE_CHECKING:
    import requests

    from hotfix_fsm.config import Config
    from hotfix_fsm.store import Hotfix

log = get_logger("hotfix_fsm.alerts")

EVENTS: tuple[str, ...] = (
    "paused",
    "failed",
    "rollback_started",
    "rollback_finished",
    "time_target_breached",
    "completed",
    "cancelled",
)
# PagerDuty: the events that open (or update) the hotfix's incident, and those that close it.
PAGERDUTY_TRIGGER: frozenset[str] = frozenset({"paused", "failed", "rollback_started"})
PAGERDUTY_RESOLVE: frozenset[str] = frozenset({"completed", "rollback_finished", "cancelled"})
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY: dict[str, str] = {
    "failed": "critical",
    "rollback_started": "critical",
    "paused": "warning",
    "time_target_breached": "warning",
    "rollback_finished": "warning",
    "completed": "info",
    "cancelled": "info",
}
# Statuses that say the receiver did not take the alert, and may take it if asked again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# PagerDuty also: a 500 (its documentation asks to retry it) — a repeat is deduplicated.
RETRY_STATUSES_IDEMPOTENT = RETRY_STATUSES | {500}
RETRY_AFTER_CAP = 10.0  # seconds: a longer Retry-After ends the attempts instead
EMOJI = {"critical": "🚨", "warning": "⚠️", "info": "✅"}
COLOR = {"critical": "danger", "warning": "warning", "info": "good"}
TITLES: dict[str, str] = {
    "paused": "Hotfix waiting for a human",
    "failed": "Hotfix failed",
    "rollback_started": "Rollback started",
    "rollback_finished": "Rollback finished",
    "time_target_breached": "Time target breached",
    "completed": "Hotfix completed",
    "cancelled": "Hotfix cancelled",
}
# Metric fields shown when known: label, keys looked up (alert fields, then monitor values).
METRICS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Error Rate", ("error_rate", "errorRate"), "%"),
    ("Response Time", ("response_time", "responseTime", "response_time_ms"), " ms"),
    ("Uptime", ("uptime",), "%"),
)


@dataclass(frozen=True)
class Target:
    """One destination: its public name (``slack``/``webhook``/``pagerduty``), its URL (a
    secret for webhooks) and, for PagerDuty, the secret routing key."""

    name: str
    url: str
    routing_key: str = ""


class Alerter:
    """Sends alert payloads to the configured targets, for the configured events."""

    def __init__(
        self,
        targets: list[Target],
        session: requests.Session | Callable[[], requests.Session],
        *,
        events: tuple[str, ...] | list[str] = EVENTS,
        timeout: float = 5.0,
        attempts: int = 3,
        retry_budget: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.targets = list(targets)
        # Per target and alert: at most ``attempts`` tries, and no new try once
        # ``retry_budget`` seconds have passed since the first (the driver is waiting).
        self.attempts = max(1, attempts)
        self.retry_budget = retry_budget
        self._sleep = sleep
        # A session, or a function making one on the first delivery: an alerter with nothing
        # configured never loads requests (~50 ms of every driver's start-up).
        self._session = session
        self.events = frozenset(events)
        self.timeout = timeout
        for target in self.targets:
            # PagerDuty's URL is public; its routing key is the secret.
            register_secret(target.routing_key if target.name == "pagerduty" else target.url)

    @property
    def session(self) -> requests.Session:
        if callable(self._session):
            self._session = self._session()
        return self._session

    @classmethod
    def from_config(
        cls, config: Config, http_session: requests.Session | Callable[[], requests.Session]
    ) -> Alerter:
        alerts = config.alerts
        targets = []
        slack = config.secret(alerts.slack_webhook, alerts.slack_webhook_env)
        if slack:
            targets.append(Target("slack", slack))
        hook = config.secret(alerts.webhook_url, alerts.webhook_url_env)
        if hook:
            targets.append(Target("webhook", hook))
        routing_key = config.secret(alerts.pagerduty_routing_key, alerts.pagerduty_routing_key_env)
        if routing_key:
            url = alerts.pagerduty_url.strip() or PAGERDUTY_URL
            targets.append(Target("pagerduty", url, routing_key))
        return cls(
            targets,
            http_session,
            events=list(alerts.events),
            timeout=min(alerts.timeout, 30.0) or 5.0,
        )

    @property
    def configured(self) -> bool:
        return bool(self.targets)

    def send(
        self, event: str, hotfix: Hotfix, message: str, fields: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Deliver ``event`` to every target; None when nothing is configured for it."""
        try:
            wanted = [t for t in self.targets if self._wants(t, event)]
            if not wanted:
                return None
            alert = build_alert(event, hotfix, message, dict(fields or {}))
            delivered: list[str] = []
            failed: list[dict[str, str]] = []
            for target in wanted:
                if target.name == "pagerduty":
                    payload = pagerduty_payload(alert, target.routing_key)
                elif target.name == "slack":
                    payload = slack_payload(alert)
                else:
                    payload = webhook_payload(alert)
                error = self._post(target, payload)
                if error is None:
                    delivered.append(target.name)
                else:
                    failed.append({"target": target.name, "error": error})
                    log.warning(
                        "alert_not_delivered",
                        hotfix=hotfix.id,
                        alert_event=event,
                        target=target.name,
                        error=error,
                    )
            return {"severity": alert.severity, "delivered": delivered, "failed": failed}
        except Exception as exc:  # alerting must never break the hotfix
            error = f"{type(exc).__name__}: {redact(str(exc))}"[:300]
            log.warning("alert_crashed", alert_event=event, error=error)
            return {"delivered": [], "failed": [{"target": "alerter", "error": error}]}

    def hears(self, event: str) -> bool:
        """Whether any target would be sent ``event`` (the runner owes only those alerts)."""
        return any(self._wants(t, event) for t in self.targets)

    def _wants(self, target: Target, event: str) -> bool:
        """Whether ``target`` hears ``event``: PagerDuty always hears the end of a hotfix."""
        if target.name == "pagerduty":
            if event in PAGERDUTY_RESOLVE:
                return True
            return event in PAGERDUTY_TRIGGER and event in self.events
        return event in self.events

    def _post(self, target: Target, payload: dict[str, Any]) -> str | None:
        """POST the payload, trying again while the failure may pass (see the module's text);
        None on success, else an error text without the URL."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            error, retry, after = self._post_once(target, payload)
            if error is None:
                if attempt > 1:
                    log.info("alert_delivered_after_retry", target=target.name, attempts=attempt)
                return None
            wait = after if after is not None else backoff(attempt, base=0.5, cap=4.0)
            spent = time.monotonic() - started
            if not retry or attempt >= self.attempts or spent + wait > self.retry_budget:
                return error if attempt == 1 else f"{error} ({attempt} attempts)"
            log.info("alert_retry", target=target.name, attempt=attempt, error=error, wait=wait)
            self._sleep(wait)

    def _post_once(
        self, target: Target, payload: dict[str, Any]
    ) -> tuple[str | None, bool, float | None]:
        """One POST: (error or None, whether trying again may help, Retry-After seconds)."""
        import requests

        idempotent = target.name == "pagerduty"
        try:
            response = self.session.post(
                target.url, json=payload, timeout=self.timeout, allow_redirects=False
            )
        except requests.ConnectTimeout:
            return f"no connection within {self.timeout:g}s", True, None
        except requests.Timeout:
            return f"no answer within {self.timeout:g}s", idempotent, None
        except requests.ConnectionError:
            return "cannot connect to the webhook", True, None
        except requests.RequestException as exc:
            return f"request failed ({type(exc).__name__})", False, None
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return None, False, None
            statuses = RETRY_STATUSES_IDEMPOTENT if idempotent else RETRY_STATUSES
            after = _retry_after(response.headers.get("Retry-After"))
            retry = status in statuses and (after is None or after <= RETRY_AFTER_CAP)
            return f"the webhook answered HTTP {status}", retry, after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (a date is ignored)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


@dataclass(frozen=True)
class Alert:
    """Everything a payload shows, already redacted."""

    event: str
    severity: str
    title: str
    message: str
    hotfix_id: str
    issue: str
    description: str
    state: str
    phase: str
    metrics: dict[str, str]
    links: dict[str, str]
    fields: dict[str, Any]
    at: float


def build_alert(event: str, hotfix: Hotfix, message: str, fields: dict[str, Any]) -> Alert:
    context = hotfix.context or {}
    phase = _phase(hotfix, fields)
    links = {}
    if context.get("pr_url"):
        number = context.get("pr_number")
        links["pr"] = str(context["pr_url"])
        links["pr_label"] = f"PR #{number}" if number else "pull request"
    rolling = event.startswith("rollback") or hotfix.state.startswith(("rolling", "rollback"))
    run_url = context.get("rollback_run_url") if rolling else None
    run_url = run_url or context.get("deploy_run_url")
    if run_url:
        links["run"] = str(run_url)
    severity = SEVERITY.get(event, "warning")
    return Alert(
        event=event,
        severity=severity,
        title=TITLES.get(event, event.replace("_", " ").capitalize()),
        message=redact(message),
        hotfix_id=hotfix.id,
        issue=hotfix.issue,
        description=redact(hotfix.description),
        state=hotfix.state,
        phase=phase,
        metrics=_metrics(fields, context),
        links=redact_obj(links),
        fields=redact_obj({k: v for k, v in fields.items() if k != "phase"}),
        at=time.time(),
    )


def _phase(hotfix: Hotfix, fields: Mapping[str, Any]) -> str:
    """The phase the alert is about: given, else the one that failed, else the current one."""
    if fields.get("phase"):
        return str(fields["phase"])
    for state in (hotfix.failed_from, hotfix.state):
        if state and state in machine.PHASE_OF_STATE:
            return machine.PHASE_OF_STATE[state]
    return ""


def _metrics(fields: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, str]:
    """Error rate, response time and uptime from the alert fields or the last measurements."""
    sources: list[Mapping[str, Any]] = [fields]
    for fact in ("monitor", "verify", "rollback_verify"):
        summary = context.get(fact)
        if isinstance(summary, dict) and isinstance(summary.get("last_values"), dict):
            sources.append(summary["last_values"])
    found: dict[str, str] = {}
    for label, keys, unit in METRICS:
        for source in sources:
            value = next((source[k] for k in keys if source.get(k) is not None), None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found[label] = f"{value:g}{unit}"
                break
    return found


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: text, then an attachment with fields and links."""
    emoji = EMOJI.get(alert.severity, "⚠️")
    text = f"{emoji} {alert.severity.upper()}: {alert.title} — {alert.hotfix_id}: {alert.message}"
    fields: list[dict[str, Any]] = [
        {"title": "Hotfix", "value": alert.hotfix_id, "short": True},
        {"title": "Issue", "value": alert.issue, "short": True},
        {"title": "State", "value": alert.state, "short": True},
    ]
    if alert.phase:
        fields.append({"title": "Phase", "value": alert.phase, "short": True})
    fields += [{"title": k, "value": v, "short": True} for k, v in alert.metrics.items()]
    links = []
    if "pr" in alert.links:
        links.append(f"<{alert.links['pr']}|{alert.links.get('pr_label', 'pull request')}>")
    if "run" in alert.links:
        links.append(f"<{alert.links['run']}|workflow run>")
    if links:
        fields.append({"title": "Links", "value": " · ".join(links), "short": False})
    return {
        "text": text,
        "attachments": [
            {
                "color": COLOR.get(alert.severity, "warning"),
                "title": f"{alert.title}: {alert.description}",
                "text": alert.message,
                "fields": fields,
                "footer": "hotfix_fsm",
                "ts": int(alert.at),
            }
        ],
    }


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The generic JSON webhook body: flat, stable keys for any receiver."""
    return {
        "event": alert.event,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "hotfix": {
            "id": alert.hotfix_id,
            "issue": alert.issue,
            "description": alert.description,
            "state": alert.state,
            "phase": alert.phase,
        },
        "metrics": alert.metrics,
        "links": {k: v for k, v in alert.links.items() if k in ("pr", "run")},
        "fields": alert.fields,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(alert.at)),
    }


PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def pagerduty_payload(alert: Alert, routing_key: str) -> dict[str, Any]:
    """An Events API v2 event: trigger (or update) or resolve the hotfix's incident.

    ``dedup_key`` is the hotfix id, so one hotfix is never more than one incident.
    """
    base: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": alert.hotfix_id,
        "client": "hotfix_fsm",
    }
    if alert.event in PAGERDUTY_RESOLVE:
        return {**base, "event_action": "resolve"}
    summary = f"{alert.title}: {alert.hotfix_id} ({alert.issue}) — {alert.message}"
    links = []
    if "pr" in alert.links:
        links.append({"href": alert.links["pr"], "text": alert.links.get("pr_label", "PR")})
    if "run" in alert.links:
        links.append({"href": alert.links["run"], "text": "workflow run"})
    return {
        **base,
        "event_action": "trigger",
        "payload": {
            "summary": summary[:1024],
            "source": "hotfix_fsm",
            "severity": PAGERDUTY_SEVERITY.get(alert.severity, "warning"),
            "component": alert.phase or None,
            "group": alert.issue,
            "class": alert.event,
            "custom_details": {
                "hotfix": alert.hotfix_id,
                "description": alert.description,
                "state": alert.state,
                "metrics": alert.metrics,
                **{k: v for k, v in alert.fields.items() if isinstance(v, str | int | float)},
            },
        },
        "links": links,
    }
