"""Abort: cancel a hotfix that has not reached production, then clean up through a step.

The ``cancel`` edge is written first (under the lease, through the journal writer); the
clean-up — closing the emergency PR, returning the work tree to the production branch — is
an effect like any other and goes through the step protocol, fenced by the same lease.
Branches are kept: they may hold the only copy of the work; the ``abort_cleanup`` facts say
what is left and how to remove it.
"""

from __future__ import annotations

import getpass
import os
from typing import Any

from hotfix_fsm.core.outcome import next_action_for, possible_commands
from hotfix_fsm.durable import outbox
from hotfix_fsm.durable.runner import Runner
from hotfix_fsm.durable.step import run_step
from hotfix_fsm.errors import HotfixError, IllegalTransition
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import CleanupFacts, facts_of
from hotfix_fsm.store import Entry, Hotfix


class AbortCleanup(BasePhase):
    """Close the PR and leave the work tree on the production branch; best effort."""

    name = "abort_cleanup"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("clean-up is safe to repeat")  # closing a closed PR is a no-op

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        notes: list[str] = []
        facts = facts_of(ctx.hotfix)
        services, config = ctx.services, ctx.config
        number = facts.get("pr_number")
        if number:
            try:
                services.github.close_pull(int(number))
                notes.append(f"closed PR #{number}")
            except HotfixError as exc:
                if isinstance(exc, IllegalTransition):
                    raise
                notes.append(f"could not close PR #{number}: {exc.message}")
        branch = facts.get("branch")
        if branch:
            try:
                git = services.git
                if git.current_branch() == branch and git.is_clean(untracked=False):
                    git.checkout(config.production_branch)
                    notes.append(f"switched the work tree back to {config.production_branch}")
                remote_too = (
                    f" and `git push {config.remote} --delete {branch}`"
                    if facts.get("pushed_sha")
                    else ""
                )
                notes.append(
                    f"kept branch {branch}; remove it with `git branch -D {branch}`" + remote_too
                )
            except (HotfixError, OSError) as exc:
                notes.append(f"left the work tree as it is: {exc}")
        recorded: CleanupFacts = {"abort_cleanup": notes}
        return {**recorded}


def abort_hotfix(runner: Runner, hotfix: Hotfix, *, reason: str, clean_up: bool) -> None:
    """Cancel ``hotfix`` under a lease, then run the clean-up step."""
    graph = runner.graph
    if graph.next_state(hotfix.state, "cancel", failed_from=hotfix.failed_from) is None:
        rollback = possible_commands(
            hotfix.state,
            failed_from=hotfix.failed_from,
            rollback_target="rollback_target" in hotfix.context,
        )["rollback"]
        deployed = graph.deployed_states
        if hotfix.state in deployed or hotfix.failed_from in deployed:
            raise IllegalTransition(
                f"abort refused in state {hotfix.state}: production may already run the fix, "
                "and aborting would strand it there",
                hotfix_id=hotfix.id,
                hint=f"roll back to the recorded target: `hotfix rollback {hotfix.id}`"
                if rollback
                else next_action_for(hotfix),
            )
        raise IllegalTransition(
            f"a hotfix in state {hotfix.state} cannot be aborted",
            hotfix_id=hotfix.id,
            hint=next_action_for(hotfix),
        )
    guard = runner.acquire(hotfix.id, ttl=30.0)
    try:
        hotfix = runner.store.get(hotfix.id)  # as of the lease
        config = runner.config_for(hotfix)
        services = runner.services_for(hotfix)
        try:
            driver = runner.driver(guard, config, services)
            # The hotfix ends: alert targets hear it (PagerDuty resolves its incident), owed
            # in the same transaction as the cancel and sent after it.
            runner.writer.transition(
                hotfix,
                "cancel",
                guard=guard,
                before=outbox.owe(
                    driver, "cancelled", f"hotfix cancelled: {reason}", {"reason": reason}
                ),
                payload={"reason": reason, "by": _user()},
                paused_reason=None,
                paused_gate=None,
            )
            outbox.deliver(driver)
            if clean_up:

                def complete(latest: Hotfix, rows: list[Entry], _data: dict[str, Any]) -> None:
                    facts = rows[-1].payload.get("facts", {})
                    note = Entry("note", "cancel", 0, None, facts)
                    driver.write(latest, [*rows, note])

                run_step(
                    driver,
                    AbortCleanup(),
                    AbortCleanup.name,
                    complete=complete,
                    key=f"{hotfix.id}:abort_cleanup",
                    writes_context=False,
                )
        finally:
            services.close()
    finally:
        runner.release(guard)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
