"""``hotfix approve ID deploy`` on a deploy run waiting for an environment's reviewers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotfix_fsm.engine import HotfixEngine


def approve_environment(engine: HotfixEngine, hotfix_id: str, comment: str | None) -> None:
    """Approve the deploy run's pending deployment on GitHub and say what was recorded."""
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.core.outcome import next_action_for

    done = engine.approve_environment(hotfix_id, comment=comment)
    record = (done.entry.payload.get("facts") or {}).get("environment_approval") or {}
    envs = ", ".join(record.get("environments") or []) or "?"
    how = "was already approved" if done.already else "approved"
    echo(
        f"{hotfix_id}: deploy run {record.get('run_id')} to environment {envs} {how} on "
        f"GitHub by {record.get('approved_by')} (journal #{done.entry.seq})"
    )
    if record.get("run_url"):
        echo(f"  run: {record['run_url']}")
    if record.get("comment"):
        echo(f"  comment: {record['comment']}")
    echo(f"  next: {next_action_for(engine.get(hotfix_id))}")


__all__ = ["approve_environment"]
