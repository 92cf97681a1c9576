"""What a drive returns (``Outcome``), what subscribers receive (``Event``), and the one
thing a person should do next."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hotfix_fsm.errors import ExitCode


@dataclass(frozen=True)
class Event:
    """What subscribers receive: a journal row just committed, or progress of a wait."""

    hotfix_id: str
    kind: str
    phase: str | None
    payload: Mapping[str, Any]
    seq: int | None = None
    state: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Where a drive stopped and why."""

    hotfix_id: str
    state: str
    paused_reason: str | None = None
    paused_gate: str | None = None
    error: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.state == "done":
            return ExitCode.OK
        if self.paused_reason:
            return ExitCode.PAUSED
        if self.state in ("rolled_back", "failed", "rollback_failed", "cancelled"):
            return ExitCode.FAILED
        return ExitCode.OK

    @property
    def next_action(self) -> str:
        return next_action(self.hotfix_id, self.state, self.paused_gate, self.paused_reason)


def next_action(hotfix_id: str, state: str, gate: str | None, reason: str | None) -> str:
    """The one thing a person should do next, as a command line."""
    if state == "done":
        return f"nothing: the hotfix is done (`hotfix report {hotfix_id}` for the post-mortem)"
    if state == "rolled_back":
        return f"production runs the rollback target; see `hotfix report {hotfix_id}`"
    if state == "cancelled":
        return "nothing: the hotfix was cancelled"
    if gate == "fix":
        return f"edit the hotfix work tree, then `hotfix resume {hotfix_id}`"
    if gate:
        return f"`hotfix approve {hotfix_id} {gate}` (or `hotfix abort {hotfix_id}`)"
    if reason:
        return f"check what the pause says, then `hotfix resume {hotfix_id}`"
    if state in ("failed", "rollback_failed"):
        return f"fix the cause shown, then `hotfix resume {hotfix_id}` (or `hotfix abort`)"
    return f"`hotfix resume {hotfix_id}`"
