"""Deploy: record the rollback target, dispatch the deploy workflow once, follow its run.

Dispatching and waiting live in one phase on purpose. The dispatch is the effect; its
idempotency key is the correlation id stored in the intent (and, before the request, in
the ``deploy_dispatches`` ledger). After a crash the probe finds the run by that id and
only waits for it; after a timeout or a transient failure the next attempt adopts the same
run from the ledger. So however the phase is interrupted, one approved fix sha gets one
deploy run — a new dispatch happens only after a failed run was reported and the hotfix is
resumed (a deliberate "deploy again").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hotfix_fsm.errors import PermanentError
from hotfix_fsm.phases.base import PhaseContext, Probe
from hotfix_fsm.phases.facts import DeployFacts, DispatchEntry, LedgerName, RollbackTarget, TextFact
from hotfix_fsm.phases.workflow_runs import WorkflowPhase, github, new_correlation_id, run_failed

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo

LEDGER: LedgerName = "deploy_dispatches"


def _missing(ctx: PhaseContext, names: list[str]) -> PermanentError:
    return PermanentError(
        f"phase {ctx.phase} needs {', '.join(names)}, which no earlier phase recorded",
        hint="the hotfix's facts are incomplete; check `hotfix status` and the journal",
    )


def require(ctx: PhaseContext, *names: TextFact) -> list[str]:
    """The text facts ``names`` earlier phases recorded; a clear error when one is missing."""
    found: list[str] = []
    missing: list[str] = []
    for name in names:
        value = ctx.facts.get(name)
        if value:
            found.append(value)
        else:
            missing.append(name)
    if missing:
        raise _missing(ctx, missing)
    return found


def require_pr_number(ctx: PhaseContext) -> int:
    """The emergency PR's number (``open_pr`` recorded it); a clear error when missing."""
    number = ctx.facts.get("pr_number")
    if not number:
        raise _missing(ctx, ["pr_number"])
    return int(number)


def release_tag_pattern(ctx: PhaseContext) -> str | None:
    prefix = ctx.config.tag.prefix
    return f"{prefix}[0-9]*" if ctx.config.tag.scheme == "patch" else None


def rollback_target(ctx: PhaseContext, git: GitRepo) -> RollbackTarget:
    """Production's current head on the remote and the last release tag reachable from it.

    Recorded once, before the first dispatch (a later attempt keeps it: production's head
    does not move when the hotfix branch is deployed). Both are checked on the remote.
    """
    recorded = ctx.facts.get("rollback_target")
    if isinstance(recorded, dict) and recorded.get("sha"):
        return recorded
    production = ctx.config.production_branch
    sha = git.fetch_branch(production, tags=True)
    if not sha:
        raise PermanentError(
            f"the production branch {production!r} does not exist on {git.remote}, so there "
            "is no rollback target",
            hint="check production_branch in hotfix.toml",
        )
    tag = git.describe(sha, match=release_tag_pattern(ctx)) or git.describe(sha)
    note = ""
    if tag and git.remote_tag_commit(tag) is None:
        note = f"tag {tag} exists only locally; not used as the rollback tag"
        tag = None
    base = ctx.facts.get("base_sha")
    if base and base != sha:
        note = (note + "; " if note else "") + (
            f"production moved from {str(base)[:12]} since the hotfix branch was cut"
        )
    target: RollbackTarget = {
        "sha": sha,
        "tag": tag,
        "branch": production,
        "recorded_at": time.time(),
    }
    if note:
        target["note"] = note
    ctx.save(rollback_target=target)
    return target


def _facts(entry: DispatchEntry, run: dict[str, Any], sha: str) -> DeployFacts:
    return {
        "deploy_correlation_id": entry.get("correlation_id"),
        "deploy_run_id": run["id"],
        "deploy_run_url": run.get("html_url"),
        "deploy_conclusion": run.get("conclusion"),
        "deployed_sha": sha,
    }


class Deploy(WorkflowPhase):
    """Dispatch ``deploy.workflow`` on the hotfix branch and wait for its run to succeed.

    ``run_search_grace`` is how long a just-dispatched run may take to be listed, and
    ``find_timeout`` how long to look for it when GitHub answers 204 without details.
    """

    name = "deploy"
    ledger = LEDGER
    purpose = "deploy"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:deploy:{ctx.facts.get('fix_sha', '')}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        return {
            "correlation_id": new_correlation_id(ctx, "deploy"),
            "workflow": ctx.config.deploy.workflow,
            "sha": ctx.facts.get("fix_sha"),
        }

    def probe(self, ctx: PhaseContext) -> Probe:
        sha, branch = require(ctx, "fix_sha", "branch")
        return self.probe_run(ctx, branch=branch, facts=lambda entry, run: _facts(entry, run, sha))

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        sha, branch = require(ctx, "fix_sha", "branch")
        approval = ctx.facts.get("deploy_approval")
        if isinstance(approval, dict) and approval.get("sha") not in (None, sha):
            raise PermanentError(
                f"the deploy approval is for {str(approval.get('sha'))[:12]}, not the fix "
                f"{sha[:12]}",
                hint=f"`hotfix approve {ctx.hotfix.id} deploy` again",
            )
        config = ctx.config.deploy
        git = ctx.services.git

        def branch_still_at_fix() -> None:
            remote = git.ls_remote(f"refs/heads/{branch}")
            if remote != sha:
                raise PermanentError(
                    f"the hotfix branch {branch} on {git.remote} is at "
                    f"{(remote or 'nothing')[:12]}, not the approved fix {sha[:12]}",
                    hint="someone pushed to (or deleted) the branch; restore it to the "
                    "approved commit or start a new hotfix",
                )

        with github(ctx):
            rollback_target(ctx, git)
            entry, final = self.dispatch_and_wait(
                ctx,
                workflow=config.workflow,
                ref=branch,
                inputs={**config.inputs, "hotfix_id": ctx.hotfix.id, "sha": sha},
                sha=sha,
                branch=branch,
                what=lambda run: f"deploy run {run['id']}",
                before_dispatch=branch_still_at_fix,
            )
            if final.get("conclusion") != "success":
                raise run_failed(
                    ctx,
                    LEDGER,
                    final,
                    f"the deploy workflow {config.workflow}",
                    hint="read the run's log; production may be partly deployed — roll back "
                    f"with `hotfix rollback {ctx.hotfix.id}`, or fix and `hotfix resume` to "
                    "deploy again",
                )
            return {**_facts(entry, final, sha)}
