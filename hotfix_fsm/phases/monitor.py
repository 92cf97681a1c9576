"""Monitor the deploy: an analysis over a window of measurement rounds (see ``analysis``).

Each round measures every configured metric — fields of the health endpoint's JSON body
(``source = "health"``), the client's own view of the health calls (``source = "client"``:
``latency_ms`` of this round's call, ``success_ratio`` of the window's calls so far) and
Prometheus instant queries (``source = "prometheus"``) — and is journaled as a
``measurement`` row *before* the analysis decides anything.

The window survives a crash. Its start is saved as the ``monitor_window`` fact when it
opens; a resumed monitor reads the rounds already journaled for that window and goes on
from the wall clock: time spent crashed counts toward the window and the rounds due in
that time are simply absent (never made up, never measured twice). A window closes when
the monitor reports a verdict (done, paused or failed); running the phase again after that
— ``hotfix resume`` after an inconclusive pause — opens a new window.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from typing import Any

from hotfix_fsm.adapters.http import (
    HealthExpectation,
    HealthResult,
    MeasurementError,
    PrometheusClient,
    fetch_health,
    judge_health,
)
from hotfix_fsm.core.analysis import Analysis, ConditionError, Rule, Window, analyse, judge
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import NeedsHuman, PermanentError, RollbackRequired
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import MonitorFacts, MonitorSummary, MonitorWindow
from hotfix_fsm.phases.verify import fix_versions, health_url

CLIENT_FIELDS = ("latency_ms", "success_ratio", "status_code")
END_KINDS = ("done", "paused", "failed")


class Monitor(BasePhase):
    """Measure the deploy for ``monitor.duration`` (or ``count`` rounds) and judge it."""

    name = "monitor"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("the analysis goes on from its journaled rounds")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        cfg = ctx.config.monitor
        if not cfg.enabled:
            skipped: MonitorFacts = {
                "monitor": {"verdict": "skipped", "reason": "monitor.enabled is false"}
            }
            return {**skipped}
        rules = _rules(cfg.metrics)
        sampler = Sampler(ctx, rules)
        state = self._open_window(ctx)
        window = Window(
            started_at=float(state["started_at"]),
            initial_delay=cfg.initial_delay,
            interval=cfg.interval,
            duration=cfg.duration,
            count=cfg.count,
        )
        rounds = _journaled_rounds(ctx, state)
        sampler.history = [
            bool(r.get("health", {}).get("healthy")) for r in rounds if "health" in r
        ]
        analysis = analyse(rules, [r["verdicts"] for r in rounds], finished=False)
        while not analysis.decided:
            last = int(rounds[-1]["round"]) if rounds else None
            k = window.next_round(time.time(), last)
            if k is None:
                break
            due = window.due_after(k, float(rounds[-1]["at"]) if rounds else None)
            ctx.progress(
                f"monitoring: round {k + 1} of {window.slots}",
                due_in=round(max(0.0, due - time.time()), 2),
            )
            ctx.wait(due - time.time())
            payload = {"window": state["id"], "round": k, "at": time.time(), **sampler.measure()}
            ctx.record("measurement", payload)
            rounds.append(payload)
            analysis = analyse(rules, [r["verdicts"] for r in rounds], finished=False)
        early = analysis.decided
        if not early:
            analysis = analyse(rules, [r["verdicts"] for r in rounds], finished=True)
        summary = _summary(analysis, rules, rounds, window, state, early=early)
        return self._decide(ctx, analysis, rules, summary)

    # -- the window ----------------------------------------------------------------------

    def _open_window(self, ctx: PhaseContext) -> MonitorWindow:
        """The open window of this monitor, or a new one (saved before the first round)."""
        state = ctx.facts.get("monitor_window")
        if isinstance(state, dict) and not _closed(ctx, state):
            return state
        state = {
            "id": secrets.token_hex(4),
            "started_at": time.time(),
            "after_seq": ctx.hotfix.last_seq,
            # The thresholds the window is judged with, for the report's charts.
            "rules": {
                m.name: {"success": redact(m.success), "failure": redact(m.failure)}
                for m in ctx.config.monitor.metrics
            },
        }
        ctx.save(monitor_window=state)
        return state

    # -- the verdict ---------------------------------------------------------------------

    def _decide(
        self,
        ctx: PhaseContext,
        analysis: Analysis,
        rules: list[Rule],
        summary: MonitorSummary,
    ) -> dict[str, Any]:
        verdict = analysis.verdict
        reason = summary.get("reason", "")
        policy = ctx.config.monitor.inconclusive
        if verdict == "successful" or (verdict == "inconclusive" and policy == "pass"):
            passed: MonitorFacts = {"monitor": summary}
            return {**passed}
        ctx.save(monitor=summary)
        hid = ctx.hotfix.id
        if verdict in ("failed", "error") or policy == "fail":
            what = {
                "failed": "a metric breached its limit",
                "error": "measurements kept failing",
                "inconclusive": "the analysis was inconclusive and monitor.inconclusive = 'fail'",
            }[verdict]
            raise RollbackRequired(
                f"monitoring failed after {analysis.rounds} rounds: {what} ({reason})",
                hint=f"the rollback policy ({ctx.config.rollback.policy}) decides what follows; "
                f"`hotfix status {hid}` shows every measurement",
            )
        raise NeedsHuman(
            f"monitoring was inconclusive after {analysis.rounds} rounds ({reason})",
            hint=f"look at production; `hotfix resume {hid}` runs the analysis again over a new "
            f"window, `hotfix rollback {hid}` rolls back",
        )


def _rules(metrics: list[Any]) -> list[Rule]:
    rules = []
    for metric in metrics:
        try:
            rules.append(Rule.from_config(metric))
        except ConditionError as exc:
            raise PermanentError(
                f"monitor.metrics: {exc}",
                hint='fix the condition in hotfix.toml (for example success = "< 5"), then '
                "`hotfix resume`",
            ) from None
        if metric.source == "client" and metric.field not in CLIENT_FIELDS:
            raise PermanentError(
                f"monitor.metrics {metric.name}: client field {metric.field!r} is not one of "
                f"{', '.join(CLIENT_FIELDS)}",
                hint="fix the metric in hotfix.toml, then `hotfix resume`",
            )
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise PermanentError(
            "monitor.metrics has two metrics with the same name",
            hint="give every metric its own name, then `hotfix resume`",
        )
    return rules


def _closed(ctx: PhaseContext, state: Mapping[str, Any]) -> bool:
    """A window is closed once the monitor reported a verdict after it opened."""
    after = int(state.get("after_seq", 0))
    rows = ctx.journal(phase="monitor", kinds=END_KINDS, after_seq=after, limit=1)
    return bool(rows)


def _journaled_rounds(ctx: PhaseContext, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = ctx.journal(
        kinds=("measurement",), phase="monitor", after_seq=int(state.get("after_seq", 0))
    )
    by_round: dict[int, dict[str, Any]] = {}
    for row in rows:
        payload = row.payload
        if payload.get("window") == state["id"] and isinstance(payload.get("verdicts"), dict):
            by_round.setdefault(int(payload["round"]), payload)
    return [by_round[k] for k in sorted(by_round)]


class Sampler:
    """Takes one round of measurements of every metric."""

    def __init__(self, ctx: PhaseContext, rules: list[Rule]) -> None:
        self.ctx = ctx
        self.rules = {r.name: r for r in rules}
        self.metrics = {m.name: m for m in ctx.config.monitor.metrics}
        sources = {m.source for m in self.metrics.values()}
        self.url = health_url(ctx) if sources & {"health", "client"} else ""
        self.expect = HealthExpectation.from_config(ctx.config.verify, fix_versions(ctx))
        self.prometheus: PrometheusClient | None = None
        if "prometheus" in sources:
            base = ctx.config.monitor.prometheus_url.strip()
            if not base:
                raise PermanentError(
                    "a monitor metric reads Prometheus but monitor.prometheus_url is not set",
                    hint="set monitor.prometheus_url (the server's base URL), then `hotfix resume`",
                )
            self.prometheus = PrometheusClient(
                ctx.services.http, base, timeout=ctx.config.verify.request_timeout
            )
        self.history: list[bool] = []  # healthy or not, per health call of the window

    def measure(self) -> dict[str, Any]:
        """Values, verdicts and errors of every metric, plus the health call's outline."""
        out: dict[str, Any] = {"values": {}, "verdicts": {}, "errors": {}}
        health: HealthResult | None = None
        if self.url:
            health = fetch_health(
                self.ctx.services.http, self.url, timeout=self.ctx.config.verify.request_timeout
            )
            judgement = judge_health(health, self.expect)
            self.history.append(judgement.ok)
            out["health"] = {
                "status": health.status,
                "latency_ms": health.latency_ms,
                "healthy": judgement.ok,
                "reason": redact(judgement.reason),
            }
        for name, metric in self.metrics.items():
            value, error = self._value(metric, health)
            value = _storable(value)
            out["values"][name] = value
            out["verdicts"][name] = judge(self.rules[name], value, error=error)
            if error is not None:
                out["errors"][name] = error
        if not out["errors"]:
            del out["errors"]
        return out

    def _value(self, metric: Any, health: HealthResult | None) -> tuple[Any, str | None]:
        if metric.source == "prometheus":
            if self.prometheus is None:  # pragma: no cover - built whenever a metric needs it
                return None, "prometheus is not configured"
            try:
                return self.prometheus.query(metric.query), None
            except MeasurementError as exc:
                return None, redact(str(exc))
        if health is None:  # pragma: no cover - fetched whenever a metric needs it
            return None, "no health call was made"
        if metric.source == "client":
            if metric.field == "success_ratio":
                return sum(self.history) / len(self.history), None
            if health.error is not None:
                return None, health.error
            if metric.field == "latency_ms":
                return health.latency_ms, None
            return health.status, None
        if health.error is not None:
            return None, health.error
        return health.field(metric.field), None


def _storable(value: Any) -> Any:
    """A JSON-safe scalar for the journal: NaN becomes None, long text is cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return redact(value)[:200]  # mask first: a cut must not split a secret
    if isinstance(value, bool | int | float) or value is None:
        return value
    return None  # objects and lists are not metric values


def _summary(
    analysis: Analysis,
    rules: list[Rule],
    rounds: list[dict[str, Any]],
    window: Window,
    state: Mapping[str, Any],
    *,
    early: bool,
) -> MonitorSummary:
    """Facts about the analysis; rounds due but never measured (a crash) count as missed."""
    tallies = analysis.summary()
    last = int(rounds[-1]["round"]) if rounds else -1
    due = last + 1 if early else window.slots
    summary: MonitorSummary = {
        "verdict": tallies["verdict"],
        "rounds": tallies["rounds"],
        "metrics": tallies["metrics"],
    }
    summary["reason"] = analysis.reason({r.name: r for r in rules})
    summary["window"] = {
        "id": state["id"],
        "started_at": window.started_at,
        "planned_rounds": window.slots,
        "missed_rounds": max(0, due - len(rounds)),
        "ended_early": early,
    }
    if rounds:
        summary["last_values"] = {k: v for k, v in rounds[-1]["values"].items() if v is not None}
    return summary
