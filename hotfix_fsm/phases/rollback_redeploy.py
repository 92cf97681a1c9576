"""Redeploy the rollback target through a workflow, tracked exactly like the deploy.

The shared ``workflow_runs`` helpers do the tracking: the intent carries a fresh
correlation id (workflow input ``correlation_id``, which the workflow puts in its
``run-name``); every dispatch is written to the ``rollback_dispatches`` ledger before it is
sent; a later attempt adopts the run of an earlier dispatch instead of sending a second
one; only a run whose failure was reported is replaced by a new dispatch (``hotfix resume``
after ``rollback_failed`` means "dispatch the rollback again").

What is dispatched: ``rollback.workflow`` (default ``rollback.yml``) with inputs
``rollback.inputs`` + ``target_sha``, ``correlation_id``, ``hotfix_id``; or, when
``rollback.workflow`` is empty, ``deploy.workflow`` with ``deploy.inputs`` + ``sha`` (the
deploy's own input names). The ref is the target's tag when it has one (workflow_dispatch
needs a branch or tag), else the production branch — which after a revert holds the
target's content, and before the merge never left it.
"""

from __future__ import annotations

from typing import Any

from hotfix_fsm.errors import PermanentError
from hotfix_fsm.phases.base import PhaseContext, Probe
from hotfix_fsm.phases.facts import DispatchEntry, LedgerName, RollbackFacts, RollbackTarget
from hotfix_fsm.phases.workflow_runs import WorkflowPhase, github, new_correlation_id, run_failed

LEDGER: LedgerName = "rollback_dispatches"


def rollback_target(ctx: PhaseContext) -> RollbackTarget:
    """The target the deploy phase recorded: ``{"sha", "tag", ...}``."""
    target = ctx.facts.get("rollback_target")
    if not isinstance(target, dict) or not target.get("sha"):
        raise PermanentError(
            "no rollback target was recorded before the deploy, so nothing is known to be "
            "safe to redeploy",
            hint="redeploy the last good release by hand with your deploy workflow and check "
            "production's health; without a recorded target this rollback cannot finish (a "
            "rollback cannot be aborted), so the hotfix stays rollback_failed as the record",
        )
    return target


def workflow_and_ref(ctx: PhaseContext) -> tuple[str, str]:
    """(workflow file, ref to dispatch on)."""
    target = rollback_target(ctx)
    workflow = ctx.config.rollback.workflow or ctx.config.deploy.workflow
    return workflow, str(target.get("tag") or ctx.config.production_branch)


def manual_command(ctx: PhaseContext) -> str:
    """The ``gh`` command a person runs to redeploy the target by hand."""
    workflow, ref = workflow_and_ref(ctx)
    sha = rollback_target(ctx)["sha"]
    name = "target_sha" if ctx.config.rollback.workflow else "sha"
    return f"gh workflow run {workflow} --ref {ref} -f {name}={sha}"


def _inputs(ctx: PhaseContext, sha: str) -> dict[str, str]:
    if ctx.config.rollback.workflow:
        return {**ctx.config.rollback.inputs, "target_sha": sha, "hotfix_id": ctx.hotfix.id}
    return {**ctx.config.deploy.inputs, "sha": sha, "hotfix_id": ctx.hotfix.id}


def _facts(entry: DispatchEntry, run: dict[str, Any], workflow: str, ref: str) -> RollbackFacts:
    return {
        "rollback_workflow": workflow,
        "rollback_ref": ref,
        "rollback_correlation_id": entry.get("correlation_id"),
        "rollback_run_id": run.get("id"),
        "rollback_run_url": run.get("html_url"),
        "rollback_run_sha": run.get("head_sha"),
        "rollback_run_conclusion": run.get("conclusion"),
    }


class RollbackRedeploy(WorkflowPhase):
    """Dispatch the rollback workflow at the target and wait for its run to succeed.

    ``run_search_grace``: how long a just-dispatched run may take to be listed;
    ``find_timeout``: how long to look for it when GitHub answers without run details.
    """

    name = "rollback_redeploy"
    ledger = LEDGER
    purpose = "rollback"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:rollback_redeploy:{rollback_target(ctx)['sha']}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        workflow, ref = workflow_and_ref(ctx)
        return {
            "correlation_id": new_correlation_id(ctx, "rollback"),
            "workflow": workflow,
            "ref": ref,
            "sha": rollback_target(ctx)["sha"],
        }

    def probe(self, ctx: PhaseContext) -> Probe:
        workflow, ref = workflow_and_ref(ctx)
        return self.probe_run(
            ctx, branch=None, facts=lambda entry, run: _facts(entry, run, workflow, ref)
        )

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        sha = str(rollback_target(ctx)["sha"])
        workflow, ref = workflow_and_ref(ctx)
        with github(ctx):
            entry, final = self.dispatch_and_wait(
                ctx,
                workflow=workflow,
                ref=ref,
                inputs=_inputs(ctx, sha),
                sha=sha,
                branch=None,
                what=lambda run: f"rollback run {run['id']} ({run.get('html_url')})",
            )
            facts = _facts(entry, final, workflow, ref)
            if final.get("conclusion") != "success":
                ctx.save(**facts)
                raise run_failed(
                    ctx,
                    LEDGER,
                    final,
                    f"the rollback workflow {workflow} (redeploying {ref}, {sha[:12]})",
                    hint=f"production may still run the hotfix. Read the run's log "
                    f"(`gh run view {final.get('id')} --log-failed`) and fix the cause, then "
                    f"`hotfix resume {ctx.hotfix.id}` to dispatch the rollback again — or "
                    f"redeploy by hand: `{manual_command(ctx)}`, check production's health, and "
                    "`hotfix resume` to verify",
                )
            return {**facts}
