"""The facts an adopted hotfix records, rebuilt from the evidence (see ``adopt``).

Names and types are the phases' own (``phases.facts.Facts``), so the phases that follow read
them as if they had run; the deploy ledger lets the deploy phase follow a run found in the
world instead of dispatching again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.phases.deploy_phase import LEDGER
from hotfix_fsm.phases.facts import (
    DispatchEntry,
    FactKey,
    Facts,
    RollbackTarget,
    as_facts,
    commit_refs,
)
from hotfix_fsm.phases.github_phases import pr_facts
from hotfix_fsm.recovery.adopt_evidence import Evidence, correlation_id, run_time

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.config import Config

__all__ = ["LEDGER", "context_facts", "phase_facts_for"]


def _ledger(ev: Evidence, config: Config) -> list[DispatchEntry]:
    entries: list[DispatchEntry] = []
    for run in ev.deploy_runs:
        entries.append(
            {
                "correlation_id": correlation_id(run, ev.hotfix_id) or f"run-{run.get('id')}",
                "workflow": config.deploy.workflow,
                "ref": ev.branch,
                "sha": ev.fix_sha or "",
                "at": run_time(run) or time.time(),
                "run_id": run.get("id"),
                "run_url": run.get("html_url"),
                "inferred": True,
            }
        )
    return entries


def _rollback_target(ev: Evidence, config: Config, git: GitRepo) -> RollbackTarget | None:
    """Production before the deploy: the merge's first parent, else production's head now."""
    production = config.production_branch
    sha = ev.merge_parent or git.resolve_commit(f"refs/remotes/{git.remote}/{production}")
    if not sha:
        return None
    pattern = f"{config.tag.prefix}[0-9]*" if config.tag.scheme == "patch" else None
    args = ["describe", "--tags", "--abbrev=0", *(["--match", pattern] if pattern else []), sha]
    tag = git.run(*args, check=False).stdout.strip() or None
    how = "the merge commit's first parent" if ev.merge_parent else "production's head"
    return {
        "sha": sha,
        "tag": tag,
        "branch": production,
        "recorded_at": time.time(),
        "inferred": True,
        "note": f"inferred by adopt: {how}",
    }


def _phase_facts(ev: Evidence, config: Config, git: GitRepo, path: Path) -> dict[str, Facts]:
    fix = ev.fix_sha or ""
    facts: dict[str, Facts] = {
        "branch": {"branch": ev.branch, "base_sha": ev.base_sha, "work_tree": str(path)},
    }
    if fix:
        facts["commit_fix"] = {
            "fix_sha": fix,
            "fix_commits": commit_refs(git.commits_between(ev.base_sha, fix)),
            "fix_mode": "adopted",
            "diffstat": git.diffstat(ev.base_sha, fix),
        }
        facts["push"] = {"pushed_sha": fix, "branch": ev.branch, "remote": git.remote}
        facts["approve_deploy"] = {
            "deploy_approval": {"by": "inferred by adopt", "sha": fix, "inferred": True}
        }
    if ev.pr:
        facts["open_pr"] = {**as_facts(pr_facts(ev.pr)), "pr_created": False}
    if ev.ci:  # read from GitHub: "passed" only on a passing verdict there
        verdict = ev.ci["verdict"]
        facts["wait_ci"] = {
            "ci": {
                "status": "passed" if verdict == "passed" else "inferred",
                "sha": fix,
                "checks": ev.ci["checks"],
                "verdict": verdict,
                "text": ev.ci["text"],
            }
        }
    elif fix and not config.ci.enabled:  # as the phase records it: skipped, not passed
        facts["wait_ci"] = {"ci": {"status": "skipped", "sha": fix, "note": "ci.enabled = false"}}
    if ev.deploy_runs:
        run = ev.deploy_runs[-1]
        facts["deploy"] = {
            "deploy_correlation_id": correlation_id(run, ev.hotfix_id),
            "deploy_run_id": run["id"],
            "deploy_run_url": run.get("html_url"),
            "deploy_conclusion": run.get("conclusion"),
            "deployed_sha": fix,
        }
    if ev.merge_sha:
        facts["merge"] = {
            "merge_sha": ev.merge_sha,
            "merge_method": config.merge.method,
            "merged_head_sha": (ev.pr or {}).get("head", {}).get("sha"),
        }
    if ev.tag and ev.merge_sha:
        facts["tag"] = {"release_tag": ev.tag, "release_tag_sha": ev.merge_sha}
    elif not config.tag.enabled:
        facts["tag"] = {"release_tag": None, "tag_note": "tag.enabled = false"}
    if ev.backport_pr:
        pr = ev.backport_pr
        status = (
            "merged"
            if pr.get("merged_at")
            else "open"
            if pr.get("state") == "open"
            else str(pr.get("state"))
        )
        facts["backport"] = {
            "backport_branch": f"backport/{ev.branch}",
            "backport_pr_number": pr["number"],
            "backport_pr_url": pr.get("html_url"),
            "backport_status": status,
        }
    facts["cleanup"] = {"cleaned": {"remote": ev.remote_sha is None, "local": not ev.local_sha}}
    return facts


def context_facts(
    ev: Evidence,
    config: Config,
    git: GitRepo,
    steps: list[tuple[str, str, str]],
    path: Path,
) -> Facts:
    url = git.remote_url()
    context: Facts = {
        "timestamp": ev.timestamp,
        "remote_url": redact(url) if url else None,
        "remote": git.remote,
        "production_branch": config.production_branch,
        "base_sha": ev.base_sha,
        "branch": ev.branch,
        "work_tree": str(path),
    }
    per_phase = _phase_facts(ev, config, git, path)
    for phase, _src, _dst in steps:
        context.update(per_phase.get(phase, {}))
    if ev.fix_sha and not any(p == "commit_fix" for p, _s, _d in steps):
        context["fix_sha"] = ev.fix_sha  # found but not adoptable as done: keep it known
    if ev.deploy_runs:
        context[LEDGER] = _ledger(ev, config)  # the deploy phase follows these, never redoes
        target = _rollback_target(ev, config, git)
        if target:
            context["rollback_target"] = target
    elif ev.merge_sha:
        target = _rollback_target(ev, config, git)
        if target:
            context["rollback_target"] = target
    if ev.tag and ev.merge_sha:
        context["release_tag_planned"] = {"tag": ev.tag, "sha": ev.merge_sha}
    return context


_FACT_KEYS: dict[str, tuple[FactKey, ...]] = {
    "branch": ("branch", "base_sha", "work_tree"),
    "commit_fix": ("fix_sha", "fix_commits", "fix_mode", "diffstat"),
    "push": ("pushed_sha", "branch", "remote"),
    "open_pr": ("pr_number", "pr_url", "pr_head_sha", "pr_labels"),
    "wait_ci": ("ci",),
    "approve_deploy": ("deploy_approval",),
    "deploy": (
        "deploy_correlation_id",
        "deploy_run_id",
        "deploy_run_url",
        "deploy_conclusion",
        "deployed_sha",
    ),
    "merge": ("merge_sha", "merge_method", "merged_head_sha"),
    "tag": ("release_tag", "release_tag_sha"),
    "backport": ("backport_branch", "backport_pr_number", "backport_pr_url", "backport_status"),
    "cleanup": ("cleaned",),
}


def phase_facts_for(phase: str, context: Facts) -> dict[str, Any]:
    return {k: context[k] for k in _FACT_KEYS.get(phase, ()) if k in context}
