"""The deploy approval gate: a durable pause bound to the fix sha."""

from __future__ import annotations

from typing import Any

from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe


def latest_approval(ctx: PhaseContext, gate: str) -> dict[str, Any] | None:
    rows = ctx.journal(kinds=("approval",), newest_first=True)
    for row in rows:
        if row.payload.get("gate") == gate:
            return row.payload
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
        if ctx.config.deploy.approval == "auto" or ctx.options.get("yes"):
            return {"deploy_approval": {"by": "policy", "sha": sha, "auto": True}}
        approval = latest_approval(ctx, "deploy")
        if approval and approval.get("sha") == sha:
            return {"deploy_approval": approval}
        lapsed = " (an earlier approval was for another commit and lapsed)" if approval else ""
        raise NeedsHuman(
            f"deploying {sha[:12]} to production needs an approval{lapsed}",
            gate="deploy",
            hint=f"review the PR, then `hotfix approve {ctx.hotfix.id} deploy`",
        )
