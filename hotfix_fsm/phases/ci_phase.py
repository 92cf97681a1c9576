"""Wait for CI on the fix sha: check runs and commit statuses, required checks, a deadline.

Polling is conditional (the client sends ``If-None-Match``; an unchanged answer is a 304
that costs no rate limit) and notices a verdict within one poll interval. Which checks
count:

* ``ci.required_checks`` set: those names must pass (others are reported, not waited on);
  a required check that never reports keeps the phase waiting until the deadline.
* empty: every reported check run and status must pass. A repository whose CI reports
  nothing at all within ``ci.no_checks_grace`` seconds passes with a note, since many
  repositories have no CI on their production branch; set ``required_checks`` to forbid it.
* ``ci.enabled = false`` skips the wait altogether (recorded as skipped).

A failed check fails the phase with its name and link; ``hotfix resume`` after re-running
the check waits again. The deadline (``ci.timeout``) fails it with what was still pending.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hotfix_fsm.errors import PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.deploy_phase import require
from hotfix_fsm.phases.workflow_runs import github

if TYPE_CHECKING:
    from hotfix_fsm.adapters.github import GitHubClient

SUCCESSFUL = frozenset({"success", "neutral", "skipped"})
STATE_RANK = {"passed": 0, "pending": 1, "failed": 2}


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # passed | pending | failed
    conclusion: str | None
    url: str


def _from_run(run: dict[str, Any]) -> Check:
    conclusion = run.get("conclusion")
    if run.get("status") != "completed" or conclusion in (None, "stale"):
        state = "pending"
    elif conclusion in SUCCESSFUL:
        state = "passed"
    else:
        state = "failed"
    url = str(run.get("html_url") or run.get("details_url") or "")
    return Check(str(run.get("name")), state, conclusion, url)


def _from_status(status: dict[str, Any]) -> Check:
    raw = str(status.get("state"))
    state = {"success": "passed", "pending": "pending"}.get(raw, "failed")
    return Check(str(status.get("context")), state, raw, str(status.get("target_url") or ""))


def collect(gh: GitHubClient, sha: str) -> list[Check]:
    """Check runs and statuses of ``sha``, one per name (the worst state wins)."""
    found: dict[str, Check] = {}
    runs = sorted(gh.check_runs(sha), key=lambda r: int(r.get("id") or 0))
    latest = {str(r.get("name")): r for r in runs}  # a re-run replaces the earlier run
    statuses = gh.combined_status(sha).get("statuses") or []
    for check in [*map(_from_run, latest.values()), *map(_from_status, statuses)]:
        seen = found.get(check.name)
        if seen is None or STATE_RANK[check.state] > STATE_RANK[seen.state]:
            found[check.name] = check
    return sorted(found.values(), key=lambda c: c.name)


def evaluate(checks: list[Check], required: list[str]) -> tuple[str, list[Check], str]:
    """``(verdict, the checks that decide it, status text)``.

    verdict: passed | failed | pending | none (nothing reported yet).
    """
    by_name = {c.name: c for c in checks}
    if required:
        relevant = [by_name[n] for n in required if n in by_name]
        missing = [n for n in required if n not in by_name]
    else:
        relevant, missing = list(checks), []
    failed = [c for c in relevant if c.state == "failed"]
    if failed:
        return "failed", failed, f"{failed[0].name} failed"
    if not checks and not required:
        return "none", [], "no checks reported yet"
    pending = [c for c in relevant if c.state == "pending"]
    if pending or missing:
        names = [c.name for c in pending] + [f"{n} (not reported)" for n in missing]
        return "pending", pending, f"waiting for {', '.join(names)}"
    return "passed", relevant, f"{len(relevant)} check(s) passed"


class WaitForCI(BasePhase):
    """Pass when CI on the fix sha passed (or the repository has no CI, after a grace)."""

    name = "wait_ci"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:wait_ci:{ctx.facts.get('fix_sha', '')}"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("waiting for CI changes nothing; it is simply checked again")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        config = ctx.config.ci
        (sha,) = require(ctx, "fix_sha")
        if not config.enabled:
            return {"ci": {"status": "skipped", "sha": sha, "note": "ci.enabled = false"}}
        interval = max(0.01, config.poll_interval)
        start = ctx.clock()
        outcome: dict[str, Any] = {}

        with github(ctx) as gh:

            def check() -> tuple[bool, str]:
                checks = collect(gh, sha)
                verdict, deciding, text = evaluate(checks, config.required_checks)
                elapsed = ctx.clock() - start
                outcome.update(verdict=verdict, deciding=deciding, checks=checks, text=text)
                if verdict in ("passed", "failed"):
                    return True, text
                if verdict == "none" and elapsed >= config.no_checks_grace:
                    return True, "no CI reported"
                if elapsed >= config.timeout:
                    outcome["verdict"] = "timeout"
                    return True, text
                return False, text

            # The phase's own deadline decides; wait_until's is only a backstop.
            ctx.wait_until(
                check,
                timeout=config.timeout + 10 * interval + 60,
                interval=interval,
                what=f"CI on {sha[:12]}",
            )
        verdict = outcome["verdict"]
        checks = [asdict(c) for c in outcome["checks"]]
        if verdict == "failed":
            bad = outcome["deciding"][0]
            more = len(outcome["deciding"]) - 1
            raise PermanentError(
                f"CI check {bad.name!r} failed ({bad.conclusion}) on {sha[:12]}: {bad.url}"
                + (f" (and {more} more)" if more > 0 else ""),
                hint="fix the cause and commit, or re-run the check; then "
                f"`hotfix resume {ctx.hotfix.id}`",
            )
        if verdict == "timeout":
            raise PermanentError(
                f"CI on {sha[:12]} did not finish within {config.timeout:.0f}s: {outcome['text']}",
                hint=f"look at the checks; `hotfix resume {ctx.hotfix.id}` waits again "
                "(ci.required_checks names the checks that must pass)",
            )
        if verdict == "none":
            return {
                "ci": {
                    "status": "no_checks",
                    "sha": sha,
                    "checks": [],
                    "note": f"no check or status reported within "
                    f"{config.no_checks_grace:.0f}s; treated as a repository "
                    "without CI",
                }
            }
        return {"ci": {"status": "passed", "sha": sha, "checks": checks}}
