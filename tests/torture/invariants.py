"""What every trial must leave behind: a gapless journal consistent with the world, no
duplicated effect, no force push, a clean work tree, and the uninterrupted run's outcome."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hotfix_fsm.adapters.alerts import PAGERDUTY_RESOLVE, PAGERDUTY_TRIGGER
from hotfix_fsm.core import machine
from hotfix_fsm.store import Hotfix, JournalEntry
from tests.torture.sandbox import Sandbox

ZERO = "0" * 40


def _norm(text: str, hotfix: Hotfix) -> str:
    return text.replace(hotfix.id, "<id>")


def duplicated_effects(effects: dict[str, Any]) -> dict[str, int]:
    """Effects beyond the first for their idempotency key (all must be 0), and force pushes."""
    heads = [pr["head"] for pr in effects.get("pull_requests", [])]
    merged = [m["pr"] for m in effects.get("merges", [])]
    tags = [
        r["ref"]
        for r in effects.get("refs", [])
        if r["ref"].startswith("refs/tags/") and r["old"] == ZERO
    ]
    per_workflow: dict[str, int] = {}
    for d in effects.get("dispatches", []):
        per_workflow[d["workflow"]] = per_workflow.get(d["workflow"], 0) + 1
    return {
        "pull_requests": len(heads) - len(set(heads)),
        "merges": len(merged) - len(set(merged)),
        "tags": len(tags) - len(set(tags)),
        "dispatches": sum(n - 1 for n in per_workflow.values() if n > 1),
        "force_updates": len(effects.get("force_updates", [])),
    }


def duplicates(sb: Sandbox) -> int:
    """Effects the rehearsal world shows beyond the first per idempotency key, plus force
    pushes: the ``duplicated`` figure, measured (never written as 0 after an assertion)."""
    return sum(duplicated_effects(sb.effects()).values())


def failures(sb: Sandbox, *, phase: str | None = None, containing: str = "") -> int:
    """``failed`` journal rows (of ``phase``, whose error mentions ``containing``): how many
    times an injected fault was met, as the journal recorded it."""
    hotfix = sb.hotfix()
    if hotfix is None:
        return 0
    return sum(
        1
        for e in sb.journal(hotfix.id)
        if e.kind == "failed"
        and (phase is None or e.phase == phase)
        and containing in str(e.payload.get("error", ""))
    )


def signature(sb: Sandbox, hotfix: Hotfix) -> dict[str, Any]:
    """What an interrupted run must share with the uninterrupted one (ids normalised)."""
    effects = sb.effects()
    facts = hotfix.context
    version = sb.running.production.version
    fix = {facts.get(k) for k in ("deployed_sha", "pushed_sha", "fix_sha")} - {None}
    running = (
        "fix" if version in fix else "release" if version == sb.info.production_sha else version
    )
    dispatched = [d["workflow"] for d in effects.get("dispatches", [])]
    remote = sorted(
        _norm(line.split("\t")[1], hotfix)
        for line in sb.git("ls-remote", "--heads", "--tags", "origin").splitlines()
        if line.strip()
    )
    return {
        "state": hotfix.state,
        "pull_requests": sorted(
            _norm(pr["head"], hotfix) for pr in effects.get("pull_requests", [])
        ),
        "dispatches": sorted(dispatched),
        "merges": len(effects.get("merges", [])),
        "tags": sorted(
            r["ref"]
            for r in effects.get("refs", [])
            if r["ref"].startswith("refs/tags/") and r["old"] == ZERO
        ),
        "force_updates": len(effects.get("force_updates", [])),
        "production_runs": running,
        "remote_refs": remote,
        "checked_out": _norm(sb.git("rev-parse", "--abbrev-ref", "HEAD").strip(), hotfix),
        "facts": sorted(k for k in facts if not k.startswith("_") and k not in VOLATILE_FACTS),
    }


# Facts whose presence depends on where a crash landed (an adopted PR has no pr_created).
VOLATILE_FACTS = frozenset({"monitor_window", "time_to_production", "pr_created"})


def check_journal(journal: list[JournalEntry], hotfix: Hotfix) -> None:
    """Gapless, every intent resolved, and the state is the last transition's."""
    seqs = [e.seq for e in journal]
    assert seqs == list(range(1, len(journal) + 1)), f"journal has gaps: {seqs}"
    assert hotfix.last_seq == len(journal), (hotfix.last_seq, len(journal))
    for i, entry in enumerate(journal):
        if entry.kind != "intent" or (entry.phase or "").startswith("gate:"):
            continue
        later = [e for e in journal[i + 1 :] if e.phase == entry.phase]
        assert any(e.kind in ("done", "failed", "paused", "probe") for e in later), (
            f"intent #{entry.seq} of {entry.phase} was never resolved (no done/failed/probe)"
        )
    transitions = [e for e in journal if e.kind == "transition"]
    assert transitions
    assert transitions[-1].payload.get("to") == hotfix.state, transitions[-1:]
    fix = hotfix.context.get("fix_sha")
    if fix and any(
        e.kind == "transition" and e.payload.get("to") == "gates_passed" for e in journal
    ):
        for gate in ("tests", "build", "audit"):
            assert any(
                e.kind == "done" and e.phase == f"gate:{gate}" and e.key == f"{gate}:{fix}"
                for e in journal
            ), f"gate {gate} passed without a done row for {fix}"


def incidents(effects: dict[str, Any]) -> dict[str, list[str]]:
    """PagerDuty events the rehearsal world received: dedup key -> actions, in order."""
    out: dict[str, list[str]] = {}
    for event in effects.get("pagerduty_events", []):
        out.setdefault(str(event["dedup_key"]), []).append(str(event["event_action"]))
    return out


def check_incidents(effects: dict[str, Any], hotfix: Hotfix) -> None:
    """One hotfix is at most one PagerDuty incident, and an ended hotfix leaves none open."""
    found = incidents(effects)
    assert set(found) <= {hotfix.id}, f"incidents of other keys (duplicates): {found}"
    if hotfix.state in machine.TERMINAL:
        assert found.get(hotfix.id, ["resolve"])[-1] == "resolve", (
            f"{hotfix.id} ended {hotfix.state} but its incident is open: {found}"
        )


def check_world(sb: Sandbox, hotfix: Hotfix) -> None:
    """The journal's facts are what the world shows, nothing was done twice, the tree is clean."""
    effects = sb.effects()
    dup = duplicated_effects(effects)
    assert not any(dup.values()), (
        f"duplicated effects: {dup}\n{json.dumps(effects, indent=1)[:3000]}"
    )
    facts = hotfix.context
    prs = {pr["head"]: pr["number"] for pr in effects.get("pull_requests", [])}
    if "pr_number" in facts:
        assert prs.get(facts["branch"]) == facts["pr_number"], (prs, facts.get("pr_number"))
    if "merge_sha" in facts:
        shas = [m["merge_commit_sha"] for m in effects["merges"]]
        assert shas.count(facts["merge_sha"]) == 1, (shas, facts["merge_sha"])
    if "release_tag" in facts:
        tags = [
            r["ref"]
            for r in effects["refs"]
            if r["ref"].startswith("refs/tags/") and r["old"] == ZERO
        ]
        assert tags == [f"refs/tags/{facts['release_tag']}"], tags
    if "deploy_run_id" in facts:
        runs = [
            d["run_id"] for d in effects["dispatches"] if d["workflow"] == "deploy-production.yml"
        ]
        assert runs == [facts["deploy_run_id"]], (runs, facts["deploy_run_id"])
    check_incidents(effects, hotfix)
    status = sb.git("status", "--porcelain", "--untracked-files=all")
    assert status == "", f"the work tree is not clean:\n{status}"
    trees = [
        ln
        for ln in sb.git("worktree", "list", "--porcelain").splitlines()
        if ln.startswith("worktree ")
    ]
    assert len(trees) == 1, f"left-over git worktrees: {trees}"


def check_outbox(journal: list[JournalEntry], effects: dict[str, Any]) -> None:
    """Every owed alert was answered exactly once; each page was tried on PagerDuty, and each
    one the journal calls delivered is in the rehearsal world's record."""
    owed = {e.seq: e for e in journal if e.kind == "alert_owed"}
    answers = Counter(e.payload.get("owed") for e in journal if e.kind == "alert")
    assert answers == Counter(list(owed)), f"owed alerts {sorted(owed)} answered {dict(answers)}"
    heard = PAGERDUTY_TRIGGER | PAGERDUTY_RESOLVE
    delivered = 0
    for e in journal:
        if e.kind != "alert" or owed[e.payload["owed"]].payload.get("event") not in heard:
            continue
        failed = [f.get("target") for f in e.payload.get("failed", [])]
        tried = [*e.payload.get("delivered", []), *failed]
        assert "pagerduty" in tried, e.payload  # a production app refused for good fails it
        delivered += "pagerduty" in e.payload.get("delivered", [])
    # A crash between sending and answering may have sent one twice, never none.
    assert len(effects.get("pagerduty_events", [])) >= delivered, (delivered, effects)


def check_trial(sb: Sandbox, expected: dict[str, Any] | None) -> dict[str, Any]:
    """Every invariant of a finished trial; returns its signature (equal to ``expected``)."""
    hotfix = sb.hotfix()
    assert hotfix is not None
    check_journal(sb.journal(hotfix.id), hotfix)
    check_outbox(sb.journal(hotfix.id), sb.effects())
    check_world(sb, hotfix)
    sig = signature(sb, hotfix)
    if expected is not None:
        assert sig == expected, f"diverged from the uninterrupted run:\n{sig}\n!=\n{expected}"
    return sig
