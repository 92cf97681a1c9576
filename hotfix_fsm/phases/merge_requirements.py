"""What a protected production branch requires before the merge, read from GitHub.

Branch protection (``GET /branches/{b}/protection``) and the rulesets that apply to the
branch (``GET /rules/branches/{b}``: ``pull_request`` and ``required_status_checks`` rules)
name the approving reviews, the status checks and the merge methods a merge needs; the
strictest of them holds; the PR's reviews (``GET /pulls/{n}/reviews``) say who
approved. A requirement not met yet is a **durable wait** (``NeedsHuman`` without a gate,
so ``hotfix resume`` looks again), never a failure. A token that may not read the
protection (404/403) gets ``None``: the merge's 405 then says what is missing, and
:func:`wait_from_refusal` turns it into the same wait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hotfix_fsm.errors import NeedsHuman
from hotfix_fsm.phases.facts import ReviewRecord

_GREEN = {"success", "neutral", "skipped"}


def review_records(reviews: Sequence[Mapping[str, Any]]) -> list[ReviewRecord]:
    """The PR's reviews as facts (who, what, on which commit, when)."""
    out: list[ReviewRecord] = []
    for review in reviews:
        user = review.get("user") or {}
        out.append(
            {
                "user": str(user.get("login") or "unknown"),
                "state": str(review.get("state") or ""),
                "commit_id": str(review.get("commit_id") or ""),
                "submitted_at": str(review.get("submitted_at") or ""),
            }
        )
    return out


def approvers(reviews: Sequence[ReviewRecord]) -> list[str]:
    """Reviewers whose latest approving-or-rejecting review approves (GitHub's rule)."""
    latest: dict[str, str] = {}
    for review in reviews:
        if review["state"] in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review["user"]] = review["state"]
    return sorted(user for user, state in latest.items() if state == "APPROVED")


def required_reviews(rules: Mapping[str, Any] | None) -> int:
    """Approving reviews the protection requires (0 without protection)."""
    reviews = (rules or {}).get("required_pull_request_reviews") or {}
    try:
        return int(reviews.get("required_approving_review_count") or 0)
    except (TypeError, ValueError):
        return 0


def required_checks(rules: Mapping[str, Any] | None) -> list[str]:
    """Status check names the protection requires."""
    checks = (rules or {}).get("required_status_checks") or {}
    names = [str(c) for c in checks.get("contexts") or []]
    names += [str(c.get("context")) for c in checks.get("checks") or [] if isinstance(c, dict)]
    return sorted(set(names))


def ruleset_reviews(rules: Sequence[Mapping[str, Any]]) -> int:
    """Approving reviews the rulesets' ``pull_request`` rules require (the highest)."""
    counts = [0]
    for rule in rules:
        if rule.get("type") == "pull_request":
            params = rule.get("parameters") or {}
            try:
                counts.append(int(params.get("required_approving_review_count") or 0))
            except (TypeError, ValueError):
                continue
    return max(counts)


def ruleset_checks(rules: Sequence[Mapping[str, Any]]) -> list[str]:
    """Status check names the rulesets' ``required_status_checks`` rules require."""
    names: set[str] = set()
    for rule in rules:
        if rule.get("type") == "required_status_checks":
            for check in (rule.get("parameters") or {}).get("required_status_checks") or []:
                if isinstance(check, dict) and check.get("context"):
                    names.add(str(check["context"]))
    return sorted(names)


def ruleset_methods(rules: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """Merge methods every ``pull_request`` rule allows; None when no rule restricts them."""
    allowed: set[str] | None = None
    for rule in rules:
        methods = (rule.get("parameters") or {}).get("allowed_merge_methods")
        if rule.get("type") == "pull_request" and isinstance(methods, list):
            names = {str(m) for m in methods}
            allowed = names if allowed is None else allowed & names
    return None if allowed is None else sorted(allowed)


def check_states(
    names: Sequence[str], check_runs: Sequence[Mapping[str, Any]], combined: Mapping[str, Any]
) -> dict[str, str]:
    """Each required check's state on the head: success, pending, failure or missing."""
    states: dict[str, str] = {}
    for name in names:
        state = "missing"
        for run in check_runs:
            if run.get("name") == name:
                if run.get("status") != "completed":
                    state = "pending"
                else:
                    state = "success" if run.get("conclusion") in _GREEN else "failure"
        for status in combined.get("statuses") or []:
            if status.get("context") == name and state in ("missing", "pending"):
                state = str(status.get("state") or "pending")
                if state == "error":
                    state = "failure"
        states[name] = state
    return states


def awaiting_review(
    hotfix_id: str, number: int, url: str | None, required: int, given: Sequence[str]
) -> NeedsHuman:
    """The pause while the PR lacks approving reviews."""
    by = f" (approved by {', '.join(given)})" if given else ""
    return NeedsHuman(
        f"awaiting an approving review of PR #{number} ({required} required, {len(given)} "
        f"given{by}) — {url}",
        hint=f"ask a reviewer with write access to approve {url}, then "
        f"`hotfix resume {hotfix_id}` merges it",
    )


def awaiting_checks(
    hotfix_id: str, number: int, url: str | None, states: Mapping[str, str]
) -> NeedsHuman:
    """The pause while required status checks are pending, failing or missing."""
    waiting = ", ".join(f"{name} ({state})" for name, state in sorted(states.items()))
    return NeedsHuman(
        f"awaiting required status checks on PR #{number}: {waiting} — {url}",
        hint=f"let them finish (or re-run the failed ones), then `hotfix resume {hotfix_id}`",
    )


def wait_from_refusal(
    hotfix_id: str, number: int, url: str | None, message: str
) -> NeedsHuman | None:
    """The wait a merge's 405 stands for, when it names a review or a status check."""
    lowered = message.lower()
    if "review" in lowered:
        return NeedsHuman(
            f"awaiting an approving review of PR #{number} — {url} (GitHub: {message})",
            hint=f"ask a reviewer with write access to approve {url}, then "
            f"`hotfix resume {hotfix_id}` merges it",
        )
    if "status check" in lowered or "required check" in lowered:
        return NeedsHuman(
            f"awaiting required status checks on PR #{number} — {url} (GitHub: {message})",
            hint=f"let them finish (or re-run the failed ones), then `hotfix resume {hotfix_id}`",
        )
    return None


__all__ = [
    "approvers",
    "awaiting_checks",
    "awaiting_review",
    "check_states",
    "required_checks",
    "required_reviews",
    "review_records",
    "ruleset_checks",
    "ruleset_methods",
    "ruleset_reviews",
    "wait_from_refusal",
]
