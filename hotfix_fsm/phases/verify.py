"""Verify the deploy: poll production's health until it is healthy and runs the fix, or roll back.

Also the health polling the rollback's own verification reuses. Every health call is
journaled as a ``measurement`` row (``check``: verify | rollback_verify).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from hotfix_fsm.adapters.http import (
    HealthExpectation,
    HealthJudgement,
    HealthResult,
    fetch_health,
    judge_health,
)
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import PermanentError, RollbackRequired, TransientError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import HealthSummary, VerifyFacts

# Health body fields copied into summaries (and so into alerts) when present.
REPORTED_FIELDS = ("errorRate", "responseTime", "uptime")
LAST_VALUE_NAMES = {"errorRate": "error_rate", "responseTime": "response_time", "uptime": "uptime"}


def health_url(ctx: PhaseContext) -> str:
    """``verify.url``, or a PermanentError telling the user to set it."""
    url = ctx.config.verify.url.strip()
    if not url:
        raise PermanentError(
            "verify.url is not set, so production's health cannot be checked after the deploy",
            hint="set verify.url (for example https://api.example.com/health) in hotfix.toml or "
            "[tool.hotfix] in pyproject.toml, then `hotfix resume`; hotfix_fsm never treats "
            "an unchecked deploy as verified",
        )
    if not url.startswith(("http://", "https://")):
        raise PermanentError(
            f"verify.url {redact(url)!r} is not an http(s) URL",
            hint="set verify.url to the full URL of the health endpoint, then `hotfix resume`",
        )
    return url


def fix_versions(ctx: PhaseContext) -> list[str]:
    """The shas production may report once the fix is deployed."""
    facts = ctx.facts
    shas = (facts.get("deployed_sha"), facts.get("fix_sha"), facts.get("pushed_sha"))
    return list(dict.fromkeys(sha for sha in shas if sha))


@dataclass
class HealthPoll:
    """The outcome of polling health until healthy or a deadline."""

    ok: bool
    checks: int
    judgement: HealthJudgement | None = None
    result: HealthResult | None = None
    elapsed: float = 0.0

    def summary(self, url: str) -> HealthSummary:
        result, judgement = self.result, self.judgement
        out: HealthSummary = {
            "url": redact(url),
            "healthy": self.ok,
            "checks": self.checks,
            "elapsed_s": round(self.elapsed, 2),
        }
        if result is not None:
            out["status"] = result.status
            out["latency_ms"] = result.latency_ms
            values = {
                LAST_VALUE_NAMES[f]: result.field(f)
                for f in REPORTED_FIELDS
                if isinstance(result.field(f), int | float)
            }
            if values:
                out["last_values"] = values
        if judgement is not None:
            out["version"] = judgement.version
            out["reason"] = judgement.reason
        return out


def poll_health(
    ctx: PhaseContext,
    url: str,
    expect: HealthExpectation,
    *,
    check: str,
    timeout: float,
    interval: float,
) -> HealthPoll:
    """Call the health endpoint until it is healthy or ``timeout`` passes (no fixed sleep)."""
    poll = HealthPoll(ok=False, checks=0)
    started = ctx.clock()
    request_timeout = ctx.config.verify.request_timeout

    def attempt() -> tuple[bool, str]:
        result = fetch_health(ctx.services.http, url, timeout=request_timeout)
        judgement = judge_health(result, expect)
        poll.checks += 1
        poll.result, poll.judgement = result, judgement
        poll.elapsed = ctx.clock() - started
        ctx.record(
            "measurement",
            {
                "check": check,
                "n": poll.checks,
                "at": time.time(),
                "status": result.status,
                "latency_ms": result.latency_ms,
                "healthy": judgement.ok,
                "version": judgement.version,
                "reason": redact(judgement.reason),
            },
        )
        return judgement.ok, judgement.reason

    try:
        ctx.wait_until(attempt, timeout=timeout, interval=interval, what=f"{check} health")
        poll.ok = True
    except TransientError:
        poll.ok = False
    poll.elapsed = ctx.clock() - started
    return poll


class Verify(BasePhase):
    """Production answers healthy and reports the fix's version, within ``verify.timeout``."""

    name = "verify"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("a health check changes nothing; it simply runs again")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        url = health_url(ctx)
        cfg = ctx.config.verify
        expect = HealthExpectation.from_config(cfg, fix_versions(ctx))
        poll = poll_health(
            ctx, url, expect, check="verify", timeout=cfg.timeout, interval=cfg.interval
        )
        summary = poll.summary(url)
        if poll.ok:
            verified: VerifyFacts = {"verify": summary}
            return {**verified}
        ctx.save(verify=summary)
        reason = summary.get("reason", "no answer")
        raise RollbackRequired(
            f"production at {redact(url)} was not healthy within {cfg.timeout:g}s after the "
            f"deploy ({poll.checks} checks; last: {reason})",
            hint=f"the rollback policy ({ctx.config.rollback.policy}) decides what follows; "
            f"`hotfix status {ctx.hotfix.id}` shows every measurement",
        )
