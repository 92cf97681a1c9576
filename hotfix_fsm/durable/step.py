"""THE step protocol: how any external effect is taken, exactly once.

Every effect — a phase, each gate, a dispatch inside a phase, abort's clean-up — goes
through ``run_step``::

    lease confirmed → intent row → effect → done row (with the transition, if any)

* A step whose last row is an *intent* with nothing after it is **in doubt** (a crash, a
  frozen or killed driver, maybe another machine): the world is **probed** first. A done
  effect is adopted (``done`` marked inferred), one that did not happen is redone, and one
  that cannot be told pauses for a person. Nothing is sent before that look.
* The effect runs **fenced**: ``core.fence`` carries the lease check into the adapters, so
  every HTTP write and each of its retries, and every push, first confirms the lease with a
  fenced renewal; a driver that lost it (or was frozen past it) sends nothing.
* Failures are judged by the step's ``RetryPolicy``: transient ones are retried with the one
  backoff rule (``core.backoff``) up to its attempts; the rest end the step.

The caller decides what an ended step means (fail the hotfix, pause it, roll back).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hotfix_fsm.core import machine
from hotfix_fsm.core.fence import fenced_by
from hotfix_fsm.core.machine import Graph
from hotfix_fsm.core.retry import RetryPolicy
from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import (
    HotfixError,
    LeaseLost,
    NeedsHuman,
    PermanentError,
    RollbackRequested,
    RollbackRequired,
    TransientError,
)
from hotfix_fsm.log import get_logger
from hotfix_fsm.phases.base import Phase, PhaseContext, Probe
from hotfix_fsm.store import Entry, Hotfix, JournalEntry

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.durable.journal import JournalWriter
    from hotfix_fsm.durable.lease import LeaseGuard
    from hotfix_fsm.phases.services import Services
    from hotfix_fsm.store import Store

log = get_logger(__name__)

END_KINDS = ("done", "failed", "paused")  # rows that end an intent


@dataclass(frozen=True)
class StepResult:
    """How a step ended: ``done`` (with its facts), or the error that ended it."""

    status: Literal["done", "paused", "failed", "rollback"]
    facts: dict[str, Any] = field(default_factory=dict)
    error: HotfixError | None = None
    inferred: bool = False


@dataclass
class Driver:
    """What one drive of one hotfix shares between its steps."""

    store: Store
    writer: JournalWriter
    guard: LeaseGuard
    config: Config
    services: Services
    policy: RetryPolicy
    graph: Graph = machine.DEFAULT

    @property
    def hotfix_id(self) -> str:
        return self.guard.hotfix_id

    def hotfix(self) -> Hotfix:
        return self.store.get(self.hotfix_id)

    def context(
        self, hotfix: Hotfix, phase: str, attempt: int, intent: dict[str, Any] | None = None
    ) -> PhaseContext:
        return PhaseContext(
            hotfix=hotfix,
            phase=phase,
            attempt=attempt,
            config=self.config,
            services=self.services,
            data=dict(hotfix.context),
            recorder=_Recorder(self),
            intent=dict(intent or {}),
            stop_event=self.guard.lost,
            fence=self.after_wait,
        )

    def after_wait(self) -> None:
        """After every wait: still the driver? a rollback asked for from another terminal?"""
        self.guard.check()
        request = pending_rollback(self.store, self.hotfix_id)
        if request is not None:
            raise RollbackRequested(
                f"rollback requested by {request.payload.get('by', 'someone')}: "
                f"{request.payload.get('reason', '')}",
                by=str(request.payload.get("by", "")),
                reason=str(request.payload.get("reason", "")),
                request_seq=request.seq,
            )

    def write(self, hotfix: Hotfix, entries: list[Entry], **changes: Any) -> int:
        return self.writer.write(hotfix, entries, guard=self.guard, **changes)


Complete = Callable[[Hotfix, list[Entry], dict[str, Any]], None]


def run_step(
    driver: Driver,
    phase: Phase,
    name: str,
    *,
    complete: Complete,
    key: str | None = None,
    writes_context: bool = True,
) -> StepResult:
    """Take the effect of ``phase`` once, by the protocol above.

    Args:
        complete: commits the ``done`` row given to it (with the transition and context
            changes the caller wants in the same transaction).
        key: the idempotency key; by default ``phase.key(ctx)``. An in-doubt intent with
            another key (a gate of an older fix commit) is not this step's.
        writes_context: False for steps that run beside others (the gates), which must not
            replace the shared facts.
    """
    hotfix = driver.hotfix()
    doubt = in_doubt(driver.store, hotfix.id, name, key)
    if doubt is not None:
        ended = _settle_doubt(driver, phase, name, hotfix, doubt, complete)
        if ended is not None:
            return ended
    policy = getattr(phase, "retry", None) or driver.policy
    while True:
        hotfix = driver.hotfix()
        attempt, budget_used = _attempts(driver.store, hotfix.id, name)
        ctx = driver.context(hotfix, name, attempt)
        try:
            step_key = key if key is not None else phase.key(ctx)
            prepared = phase.prepare(ctx)
        except LeaseLost:
            raise
        except NeedsHuman as exc:
            return StepResult("paused", error=exc)
        except Exception as exc:  # nothing happened yet: end the step cleanly
            return StepResult("failed", error=_as_permanent(exc, f"preparing {name}"))
        ctx.intent = dict(prepared)
        intent = {**prepared, "driver": driver.guard.lease.owner}
        driver.write(hotfix, [Entry("intent", name, attempt, step_key, intent)])
        failpoints.reach(name, "before_effect")
        try:
            driver.guard.check()
            with fenced_by(driver.guard.confirm):
                facts = phase.run(ctx)
        except LeaseLost:
            raise
        except NeedsHuman as exc:
            _record_end(driver, ctx, step_key, exc, writes_context)
            return StepResult("paused", error=exc)
        except policy.transient as raised:
            transient = _as_transient(raised)
            _record_end(driver, ctx, step_key, transient, writes_context)
            if budget_used + 1 >= policy.attempts:
                return StepResult(
                    "failed",
                    error=PermanentError(
                        f"{transient.message} (gave up after {budget_used + 1} attempts)",
                        hint=transient.hint,
                    ),
                )
            delay = policy.delay(attempt, transient)
            log.info(
                "step_retry",
                hotfix=hotfix.id,
                phase=name,
                attempt=attempt,
                delay=round(delay, 2),
                error=transient.message,
            )
            ctx.wait(delay)
            continue
        except RollbackRequired as exc:
            _record_end(driver, ctx, step_key, exc, writes_context)
            return StepResult("rollback", error=exc)
        except HotfixError as exc:
            error = exc if isinstance(exc, PermanentError) else _as_permanent(exc, name)
            _record_end(driver, ctx, step_key, error, writes_context)
            return StepResult("failed", error=error)
        except Exception as exc:  # a bug or an adapter's surprise: end cleanly, keep state
            log.error(
                "step_crashed", hotfix=hotfix.id, phase=name, traceback=traceback.format_exc()
            )
            error = PermanentError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="this is likely a bug in hotfix_fsm or a phase plug-in; the traceback is "
                "in the hotfix's JSON log; fix the cause and `hotfix resume`",
            )
            _record_end(driver, ctx, step_key, error, writes_context)
            return StepResult("failed", error=error)
        failpoints.reach(name, "after_effect")
        done = Entry("done", name, attempt, step_key, {"facts": facts})
        complete(driver.hotfix(), [done], {**ctx.data, **facts} if writes_context else {})
        failpoints.reach(name, "after_done")
        return StepResult("done", facts)


def _settle_doubt(
    driver: Driver,
    phase: Phase,
    name: str,
    hotfix: Hotfix,
    doubt: JournalEntry,
    complete: Complete,
) -> StepResult | None:
    """Probe an in-doubt intent; a result when that ends the step, None to redo it."""
    intent = {k: v for k, v in doubt.payload.items() if k != "driver"}
    ctx = driver.context(hotfix, name, doubt.attempt, intent)
    owner = doubt.payload.get("driver")
    if owner != driver.guard.lease.owner:
        ctx.intent_by = str(owner or "an earlier driver")
    probe = _probe(driver, phase, ctx)
    row = {"status": probe.status, "reason": probe.reason, "facts": probe.facts}
    if owner and owner != driver.guard.lease.owner:
        row["intent_of"] = owner
    driver.write(hotfix, [Entry("probe", name, doubt.attempt, doubt.key, row)])
    if probe.status == "done":
        done = Entry(
            "done",
            name,
            doubt.attempt,
            doubt.key,
            {"facts": probe.facts, "inferred": True},
        )
        latest = driver.hotfix()
        complete(latest, [done], {**latest.context, **probe.facts})
        failpoints.reach(name, "after_done")
        return StepResult("done", probe.facts, inferred=True)
    if probe.status == "unknown":
        return StepResult(
            "paused",
            error=NeedsHuman(
                f"cannot tell whether {name} took effect: {probe.reason}",
                hint="check the world by hand, then `hotfix resume` to probe again",
            ),
        )
    return None


def _probe(driver: Driver, phase: Phase, ctx: PhaseContext) -> Probe:
    try:
        with fenced_by(driver.guard.confirm):
            return phase.probe(ctx)
    except LeaseLost:
        raise
    except TransientError as exc:
        return Probe.unknown(f"the probe could not reach the world: {exc.message}")
    except HotfixError as exc:
        return Probe.unknown(exc.message)


def in_doubt(
    store: Store, hotfix_id: str, phase: str, key: str | None = None
) -> JournalEntry | None:
    """The phase's last intent, when nothing ended it (and it carries ``key``, if given)."""
    rows = store.journal(
        hotfix_id, phase=phase, kinds=("intent", *END_KINDS), limit=1, newest_first=True
    )
    if rows and rows[0].kind == "intent" and (key is None or rows[0].key == key):
        return rows[0]
    return None


def _attempts(store: Store, hotfix_id: str, phase: str) -> tuple[int, int]:
    """(the next attempt number, attempts spent since the state was last entered)."""
    intents = store.journal(hotfix_id, phase=phase, kinds=("intent",))
    moved = store.journal(hotfix_id, kinds=("transition",), limit=1, newest_first=True)
    since = moved[0].seq if moved else 0
    return len(intents) + 1, sum(1 for e in intents if e.seq > since)


def _record_end(
    driver: Driver,
    ctx: PhaseContext,
    key: str | None,
    exc: HotfixError,
    writes_context: bool,
) -> None:
    kind = "paused" if isinstance(exc, NeedsHuman) else "failed"
    payload = {
        "error": exc.message,
        "hint": exc.hint,
        "code": exc.code,
        "transient": isinstance(exc, TransientError),
    }
    changes: dict[str, Any] = {"context": ctx.data} if writes_context else {}
    driver.write(driver.hotfix(), [Entry(kind, ctx.phase, ctx.attempt, key, payload)], **changes)


def _as_transient(exc: Exception) -> TransientError:
    if isinstance(exc, TransientError):
        return exc
    return TransientError(f"{type(exc).__name__}: {exc}")


def _as_permanent(exc: Exception, doing: str) -> PermanentError:
    if isinstance(exc, PermanentError):
        return exc
    if isinstance(exc, HotfixError):
        return PermanentError(exc.message, hint=exc.hint)
    return PermanentError(f"unexpected {type(exc).__name__} {doing}: {exc}")


class _Recorder:
    """The fenced write path a PhaseContext uses."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    def record(self, ctx: PhaseContext, kind: str, payload: dict[str, Any]) -> None:
        self.driver.write(ctx.hotfix, [Entry(kind, ctx.phase, ctx.attempt, None, payload)])

    def save_facts(self, ctx: PhaseContext, facts: dict[str, Any]) -> None:
        self.driver.write(
            ctx.hotfix,
            [Entry("note", ctx.phase, ctx.attempt, None, {"facts": facts})],
            context=ctx.data,
        )

    def journal(self, hotfix_id: str, **filters: Any) -> list[JournalEntry]:
        return self.driver.store.journal(hotfix_id, **filters)

    def emit_progress(self, ctx: PhaseContext, message: str, fields: dict[str, Any]) -> None:
        self.driver.writer.progress(ctx.hotfix.id, ctx.phase, message, **fields)


def pending_rollback(store: Store, hotfix_id: str) -> JournalEntry | None:
    """The latest ``rollback_request`` row no rollback has answered yet, if any."""
    asked = store.journal(hotfix_id, kinds=("rollback_request",), limit=1, newest_first=True)
    if not asked:
        return None
    answered = store.journal(
        hotfix_id, phase="start_rollback", kinds=("transition",), after_seq=asked[0].seq, limit=1
    )
    return None if answered else asked[0]


def started_at(store: Store, hotfix_id: str, phase: str) -> float | None:
    """When the phase's first intent was written (for its duration)."""
    rows = store.journal(hotfix_id, phase=phase, kinds=("intent",), limit=1)
    return rows[0].at if rows else None


__all__ = [
    "END_KINDS",
    "Driver",
    "RetryPolicy",
    "StepResult",
    "in_doubt",
    "pending_rollback",
    "run_step",
    "started_at",
]
