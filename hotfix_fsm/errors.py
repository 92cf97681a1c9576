"""Every error hotfix_fsm raises on purpose.

Each carries what happened, which hotfix and phase it concerns, and what to do next, so
the command can print it without a traceback and internal tooling can branch on ``code``::

    HotfixError
    ├── UsageError                  bad argument, configuration or input     (exit 2)
    │   ├── ConfigError             a configuration key is wrong
    │   └── InvalidInput            an issue id, ref name or path is refused
    ├── StoreError                  the database cannot be used
    │   ├── SchemaTooNew            the database was written by a newer hotfix_fsm
    │   └── UnknownGraph            the hotfix was started under a graph this code does not know
    ├── LeaseHeld                   another driver holds the hotfix          (exit 4)
    ├── LeaseLost                   this driver's lease was taken; its writes are refused (exit 4)
    ├── NotFound                    no such hotfix
    ├── IllegalTransition           the graph does not allow what was asked
    └── PhaseError                  raised by a phase; the runner decides what follows
        ├── TransientError          retry with backoff (network blips, 5xx, timeouts)
        ├── PermanentError          the hotfix moves to ``failed``; resumable once fixed
        │   └── RollbackRequired    production is unhealthy: roll back per policy
        │       └── RollbackRequested  a person asked for a rollback (from any terminal)
        └── NeedsHuman              pause at a durable gate until a person acts (exit 3)
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the ``hotfix`` command: the one source of them (the README's table
    says which each command returns and what it answers)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    PAUSED = 3
    LEASE_HELD = 4
    INTERRUPTED = 130


class HotfixError(Exception):
    """Base of every deliberate error; ``str()`` gives the full user-facing message."""

    exit_code: ExitCode = ExitCode.FAILED
    code: str = "hotfix_error"

    def __init__(
        self,
        message: str,
        *,
        hotfix_id: str | None = None,
        phase: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hotfix_id = hotfix_id
        self.phase = phase
        self.hint = hint

    def __str__(self) -> str:
        where = []
        if self.hotfix_id:
            where.append(f"hotfix {self.hotfix_id}")
        if self.phase:
            where.append(f"phase {self.phase}")
        text = f"[{', '.join(where)}] {self.message}" if where else self.message
        if self.hint:
            text += f"\n  What to do: {self.hint}"
        return text

    def located(self, *, hotfix_id: str | None = None, phase: str | None = None) -> HotfixError:
        """Fill in the hotfix and phase when the raiser did not know them."""
        self.hotfix_id = self.hotfix_id or hotfix_id
        self.phase = self.phase or phase
        return self


class UsageError(HotfixError):
    exit_code = ExitCode.USAGE
    code = "usage"


class ConfigError(UsageError):
    code = "config"


class InvalidInput(UsageError):
    code = "invalid_input"


class ApprovalRefused(UsageError):
    """This person may not give this approval (four eyes, the approvers list)."""

    code = "approval_refused"


class StoreError(HotfixError):
    exit_code = ExitCode.USAGE
    code = "store"


class SchemaTooNew(StoreError):
    code = "schema_too_new"


class UnknownGraph(StoreError):
    code = "unknown_graph"


class LeaseHeld(HotfixError):
    exit_code = ExitCode.LEASE_HELD
    code = "lease_held"


class LeaseLost(HotfixError):
    exit_code = ExitCode.LEASE_HELD
    code = "lease_lost"


class NotFound(HotfixError):
    exit_code = ExitCode.USAGE
    code = "not_found"


class IllegalTransition(HotfixError):
    exit_code = ExitCode.USAGE
    code = "illegal_transition"


class PhaseError(HotfixError):
    code = "phase_error"


class TransientError(PhaseError):
    code = "transient"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class PermanentError(PhaseError):
    code = "permanent"


class RollbackRequired(PermanentError):
    code = "rollback_required"


class RollbackRequested(RollbackRequired):
    """A person asked for a rollback (``hotfix rollback`` from another terminal): the driver
    stops what it waits for and rolls back, whatever the automatic rollback policy says."""

    code = "rollback_requested"

    def __init__(self, message: str, *, by: str, reason: str, request_seq: int) -> None:
        super().__init__(message)
        self.by = by
        self.reason = reason
        self.request_seq = request_seq


class NeedsHuman(PhaseError):
    """Pause the hotfix; ``gate`` names what ``hotfix approve`` accepts, if anything."""

    exit_code = ExitCode.PAUSED
    code = "needs_human"

    def __init__(self, message: str, *, gate: str | None = None, **kw: str | None) -> None:
        super().__init__(message, **kw)
        self.gate = gate
