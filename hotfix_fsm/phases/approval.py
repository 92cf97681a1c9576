"""The deploy approval gate: a durable pause bound to the fix sha, and who may approve it.

Four eyes, when configured: with ``deploy.distinct_approver`` the person who started the hotfix
(``options["started_by"]``) cannot approve its deploy, and with ``deploy.approvers`` only the
users listed can. Either setting also stops ``--yes`` from passing the deploy gate (that would
be the starter approving their own deploy in advance); ``deploy.approval = "auto"`` is a policy
written in the configuration and still passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe

if TYPE_CHECKING:
    from hotfix_fsm.config import DeployConfig


def latest_approval(ctx: PhaseContext, gate: str) -> dict[str, Any] | None:
    rows = ctx.journal(kinds=("approval",), newest_first=True)
    for row in rows:
        if row.payload.get("gate") == gate:
            return row.payload
    return None


def four_eyes(deploy: DeployConfig) -> bool:
    """Whether who approves a deploy is restricted by the configuration."""
    return deploy.distinct_approver or bool(deploy.approvers)


def who_may_approve(deploy: DeployConfig, started_by: str | None) -> str:
    """The people who may approve a deploy, in words."""
    if deploy.approvers:
        allowed = [
            a for a in deploy.approvers if not (deploy.distinct_approver and a == started_by)
        ]
        return ", ".join(allowed) if allowed else "nobody (every listed approver started it)"
    if deploy.distinct_approver and started_by:
        return f"anyone but {started_by}"
    return "anyone"


def deploy_approver_problem(deploy: DeployConfig, started_by: str | None, by: str) -> str | None:
    """Why ``by`` may not approve a deploy of a hotfix ``started_by`` started; None when they
    may."""
    if deploy.distinct_approver and started_by and by == started_by:
        return (
            f"{by} started this hotfix and cannot approve its own deploy "
            "(deploy.distinct_approver = true)"
        )
    if deploy.approvers and by not in deploy.approvers:
        return f"{by} is not in deploy.approvers"
    return None


class ApproveDeploy(BasePhase):
    """Pass when an approval for the current fix sha exists (or policy/--yes allows)."""

    name = "approve_deploy"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("an approval check has no effect to repeat")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        sha = ctx.facts.get("fix_sha")
        if not sha:
            raise PermanentError("no fix commit is recorded, so there is nothing to approve")
        deploy = ctx.config.deploy
        restricted = four_eyes(deploy)
        if deploy.approval == "auto" or (ctx.options.get("yes") and not restricted):
            return {"deploy_approval": {"by": "policy", "sha": sha, "auto": True}}
        started_by = ctx.options.get("started_by")
        starter = str(started_by) if started_by else None
        approval = latest_approval(ctx, "deploy")
        refused = ""
        if approval and approval.get("sha") == sha:
            problem = (
                deploy_approver_problem(deploy, starter, str(approval.get("by")))
                if restricted
                else None
            )
            if problem is None:
                return {"deploy_approval": approval}
            refused = f" (the approval given does not count: {problem})"
        lapsed = ""
        if approval and not refused and approval.get("sha") != sha:
            lapsed = " (an earlier approval was for another commit and lapsed)"
        who = f" by {who_may_approve(deploy, starter)}" if restricted else ""
        yes = (
            " (--yes does not pass it: four eyes are configured)" if ctx.options.get("yes") else ""
        )
        raise NeedsHuman(
            f"deploying {sha[:12]} to production needs an approval{who}{lapsed}{refused}{yes}",
            gate="deploy",
            hint=f"review the PR, then `hotfix approve {ctx.hotfix.id} deploy`"
            + (f" (run by {who_may_approve(deploy, starter)})" if restricted else ""),
        )
