"""Drive one hotfix: take the lease, then step through the graph until done, paused or failed.

For the phase of the current state the runner calls the one step protocol
(``durable.step.run_step``) and decides what its end means: ``done`` moves the hotfix along
its edge (in the same transaction as the ``done`` row), a pause becomes a durable pause, a
failure moves it to ``failed`` (resumable), ``RollbackRequired`` starts a rollback by policy.
Every write goes through the one journal writer (``durable.journal``); every effect is
fenced by the lease (``durable.lease``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from hotfix_fsm.config import Config
from hotfix_fsm.core import machine
from hotfix_fsm.core.machine import Graph
from hotfix_fsm.core.outcome import Event, Outcome, next_action
from hotfix_fsm.core.retry import RetryPolicy
from hotfix_fsm.durable import outbox
from hotfix_fsm.durable.gates import gate_results, run_gates
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.durable.lease import LeaseGuard
from hotfix_fsm.durable.step import (
    END_KINDS,
    Driver,
    StepResult,
    pending_rollback,
    run_step,
    started_at,
)
from hotfix_fsm.errors import (
    HotfixError,
    LeaseLost,
    NeedsHuman,
    PermanentError,
    RollbackRequested,
    RollbackRequired,
    UnknownGraph,
)
from hotfix_fsm.log import get_logger
from hotfix_fsm.phases.base import Phase
from hotfix_fsm.phases.registry import PhaseTable, Registry
from hotfix_fsm.phases.services import Services
from hotfix_fsm.store import Entry, Hotfix, Store, new_owner

log = get_logger(__name__)

# The alert each terminal state owes (journaled with the transition; see durable.outbox).
END_ALERTS: dict[str, str] = {
    "done": "completed",
    "rolled_back": "rollback_finished",
    "cancelled": "cancelled",
}
END_MESSAGES: dict[str, str] = {
    "completed": "hotfix completed",
    "rollback_finished": "rollback finished: production runs the rollback target",
    "cancelled": "hotfix cancelled",
}
# Event, Outcome and next_action live in core.outcome; they stay importable from here.
__all__ = ["END_KINDS", "Event", "Outcome", "Runner", "next_action"]


class Runner:
    """Drives hotfixes in one store with a set of phase implementations."""

    def __init__(
        self,
        store: Store,
        phases: Mapping[str, Phase],
        *,
        services_for: Callable[[Hotfix], Services],
        config_for: Callable[[Hotfix], Config],
        lease_ttl: float = 30.0,
        owner: str | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        writer: JournalWriter | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.store = store
        self.registry = registry or Registry.default()
        self.graph = self.registry.graph
        # A registry's table makes each phase when first asked for; keep it, not a copy.
        self.phases = phases if isinstance(phases, PhaseTable) else dict(phases)
        self.services_for = services_for
        self.config_for = config_for
        self.lease_ttl = lease_ttl
        self.owner = owner or new_owner()
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.writer = writer or JournalWriter(store, self.graph)

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` for every committed journal row and progress message."""
        return self.writer.subscribe(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        self.writer.unsubscribe(callback)

    # -- driving -------------------------------------------------------------------------

    def drive(self, hotfix_id: str, *, take_over: bool = False) -> Outcome:
        """Advance the hotfix until it is done, paused, failed or rolled back."""
        hotfix = self.store.get(hotfix_id)
        check_graph(hotfix, self.graph)
        guard = self.acquire(hotfix_id, take_over=take_over)
        stop = threading.Event()
        beat = threading.Thread(
            target=guard.heartbeat, args=(stop,), name=f"lease-{hotfix_id}", daemon=True
        )
        beat.start()
        config = self.config_for(hotfix)
        services = self.services_for(hotfix)
        driver = self.driver(guard, config, services)
        try:
            return self._loop(driver)
        finally:
            stop.set()
            beat.join()
            services.close()
            self.release(guard)

    def acquire(
        self, hotfix_id: str, *, take_over: bool = False, ttl: float | None = None
    ) -> LeaseGuard:
        lease = self.store.acquire_lease(
            hotfix_id, self.owner, ttl=ttl or self.lease_ttl, take_over=take_over
        )
        return LeaseGuard(self.store, lease)

    def release(self, guard: LeaseGuard) -> None:
        if guard.lost.is_set():
            return
        try:
            self.store.release_lease(guard.lease)
        except HotfixError:
            log.warning("lease_release_failed", hotfix=guard.hotfix_id)

    def driver(self, guard: LeaseGuard, config: Config, services: Services) -> Driver:
        policy = RetryPolicy(
            attempts=config.retry_limit, base=self.backoff_base, cap=self.backoff_cap
        )
        return Driver(self.store, self.writer, guard, config, services, policy, self.graph)

    def _loop(self, driver: Driver) -> Outcome:
        outbox.deliver(driver, late=True)  # alerts a crash kept from their targets
        hotfix = driver.hotfix()
        graph = self.graph
        if hotfix.state in machine.STOPPED and hotfix.failed_from:
            trigger = "retry" if hotfix.state == "failed" else "retry_rollback"
            self.writer.transition(hotfix, trigger, guard=driver.guard, payload={"note": "resumed"})
        elif hotfix.paused_reason:
            driver.write(
                hotfix,
                [Entry("note", payload={"resumed": True})],
                paused_reason=None,
                paused_gate=None,
            )
        while True:
            if driver.guard.lost.is_set():
                raise LeaseLost(
                    "this driver lost its lease; it sent nothing more and wrote nothing more "
                    "— another driver continues",
                    hotfix_id=driver.hotfix_id,
                    hint=f"run `hotfix status {driver.hotfix_id}` to see who drives it now",
                )
            hotfix = driver.hotfix()
            state = hotfix.state
            if self._requested_rollback(driver, hotfix):
                continue
            if state in machine.TERMINAL:
                return _outcome(hotfix)
            if state in machine.STOPPED or hotfix.paused_reason:
                return _outcome(hotfix)
            if state == "gating":
                self._gates(driver)
                continue
            name = graph.phase_of_state[state]
            if name in graph.bookkeeping:
                self.writer.transition(
                    hotfix,
                    name,
                    guard=driver.guard,
                    before=self.end_alert(driver, hotfix, name),
                    paused_reason=None,
                    paused_gate=None,
                )
                self._after_transition(driver)
                continue
            self._phase_step(driver, name)

    # -- one phase -----------------------------------------------------------------------

    def phase(self, name: str, hotfix_id: str | None = None) -> Phase:
        try:
            return self.phases[name]
        except KeyError:
            raise PermanentError(
                f"no implementation is registered for phase {name!r}",
                hotfix_id=hotfix_id,
                phase=name,
                hint="register one with HotfixEngine(phases={...})",
            ) from None

    def _phase_step(self, driver: Driver, name: str) -> None:
        try:
            phase = self.phase(name, driver.hotfix_id)
        except PermanentError as exc:
            self.fail(driver, name, exc)
            return

        def complete(hotfix: Hotfix, rows: list[Entry], data: dict[str, Any]) -> None:
            done = rows[-1]
            checklist = self.registry.checklist_row(name, done.payload.get("facts") or {})
            if checklist is not None:  # the evidence travels with the row that carries it
                rows = [
                    *rows[:-1],
                    Entry(
                        done.kind,
                        done.phase,
                        done.attempt,
                        done.key,
                        {**done.payload, "checklist": checklist},
                    ),
                ]
            durations = dict(data.get("_durations", {}))
            started = started_at(self.store, hotfix.id, name)
            durations[name] = round(time.time() - started, 3) if started else None
            data = {**data, "_durations": durations}
            data.pop("_attempts", None)
            self.writer.transition(
                hotfix,
                name,
                guard=driver.guard,
                before=[*rows, *self.end_alert(driver, hotfix, name)],
                attempt=rows[-1].attempt,
                context=data,
                error=None,
                paused_reason=None,
                paused_gate=None,
            )

        result = run_step(driver, phase, name, complete=complete)
        if result.status == "done":
            self._after_transition(driver)
            return
        self._settle(driver, name, result)

    def _requested_rollback(self, driver: Driver, hotfix: Hotfix) -> bool:
        """Answer a ``rollback_request`` row (``hotfix rollback`` from another terminal)."""
        request = pending_rollback(self.store, hotfix.id)
        if request is None:
            return False
        if (
            self.graph.next_state(hotfix.state, "start_rollback", failed_from=hotfix.failed_from)
            is None
        ):
            return False  # already rolling back, or nothing to roll back from here
        self.start_rollback(
            driver,
            reason=str(request.payload.get("reason") or "rollback requested"),
            by=str(request.payload.get("by") or "") or None,
            request_seq=request.seq,
        )
        return True

    def _settle(self, driver: Driver, name: str, result: StepResult) -> None:
        """Act on a step that ended without its effect."""
        error = result.error
        if isinstance(error, RollbackRequested):
            self.start_rollback(
                driver, reason=error.reason, by=error.by or None, request_seq=error.request_seq
            )
        elif isinstance(error, NeedsHuman):
            self.pause(driver, name, error)
        elif isinstance(error, RollbackRequired):
            self._rollback_or_fail(driver, name, error)
        else:
            self.fail(
                driver,
                name,
                error if isinstance(error, PermanentError) else PermanentError(str(error)),
            )

    def _gates(self, driver: Driver) -> None:
        results = run_gates(
            driver,
            lambda name: self.phase(name, driver.hotfix_id),
            parallel=driver.config.gates.parallel,
        )
        for gate, result in results.items():
            if isinstance(result.error, NeedsHuman):
                self.pause(driver, f"gate:{gate}", result.error)
                return
        failed = [r.error for r in results.values() if r.error is not None]
        if failed:
            summary = "; ".join(dict.fromkeys(e.message for e in failed))  # gates often agree
            self.fail(driver, "gates", PermanentError(summary, hint=failed[0].hint))
            return
        hotfix = driver.hotfix()
        self.writer.transition(
            hotfix,
            "finish_gates",
            guard=driver.guard,
            context={
                **hotfix.context,
                "gates": gate_results(self.store, hotfix.id, self.graph.gates),
            },
        )

    # -- after a state is reached --------------------------------------------------------

    def _after_transition(self, driver: Driver) -> None:
        """Side notes of reaching a state: time to production; then the alerts owed."""
        hotfix = driver.hotfix()
        config = driver.config
        if hotfix.state == "verified":
            elapsed = time.time() - hotfix.created_at
            target = config.time_target_minutes * 60
            note = {
                "time_to_production_s": round(elapsed, 1),
                "target_s": target,
                "breached": elapsed > target,
            }
            owed = []
            if elapsed > target:
                owed = outbox.owe(
                    driver,
                    "time_target_breached",
                    f"time to production {elapsed / 60:.1f} min exceeded the "
                    f"{config.time_target_minutes:g} min target",
                )
            driver.write(
                hotfix,
                [Entry("note", "verify", 0, None, note), *owed],
                context={**hotfix.context, "time_to_production": round(elapsed, 1)},
            )
            if owed:
                outbox.deliver(driver)
        elif hotfix.state in END_ALERTS:
            outbox.deliver(driver)

    def end_alert(self, driver: Driver, hotfix: Hotfix, trigger: str) -> list[Entry]:
        """The owed alert when ``trigger`` ends the hotfix (to journal with its transition)."""
        dest = self.graph.next_state(hotfix.state, trigger, failed_from=hotfix.failed_from)
        event = END_ALERTS.get(dest or "")
        if event is None:
            return []
        return outbox.owe(driver, event, END_MESSAGES[event])

    # -- ends ----------------------------------------------------------------------------

    def pause(self, driver: Driver, phase: str, exc: NeedsHuman) -> None:
        reason = exc.message + (f" — {exc.hint}" if exc.hint else "")
        owed = outbox.owe(
            driver,
            "paused",
            f"waiting for a human at {phase}: {exc.message}",
            {"gate": exc.gate or ""},
        )
        driver.write(
            driver.hotfix(),
            [Entry("pause", phase, 0, None, {"reason": reason, "gate": exc.gate}), *owed],
            paused_reason=reason,
            paused_gate=exc.gate,
        )
        outbox.deliver(driver)

    def fail(self, driver: Driver, phase: str, exc: PermanentError) -> None:
        hotfix = driver.hotfix()
        trigger = "rollback_fail" if hotfix.state in self.graph.rollback_states else "fail"
        message = str(exc.located(hotfix_id=hotfix.id, phase=phase))
        self.writer.transition(
            hotfix,
            trigger,
            guard=driver.guard,
            before=outbox.owe(driver, "failed", message, {"phase": phase}),
            failed_from=hotfix.state,
            error=message,
        )
        outbox.deliver(driver)

    def _rollback_or_fail(self, driver: Driver, phase: str, exc: RollbackRequired) -> None:
        hotfix = driver.hotfix()
        policy = driver.config.rollback.policy
        if policy == "never" or "rollback_target" not in hotfix.context:
            self.fail(driver, phase, exc)
            return
        if policy == "ask" and not self._approved(hotfix, "rollback"):
            self.pause(
                driver,
                phase,
                NeedsHuman(
                    f"{exc.message}; rollback policy is 'ask'",
                    gate="rollback",
                    hint=f"`hotfix approve {hotfix.id} rollback` to roll back, or fix forward and "
                    f"`hotfix resume {hotfix.id}`",
                ),
            )
            return
        self.start_rollback(driver, reason=exc.message)

    def start_rollback(
        self,
        driver: Driver,
        *,
        reason: str,
        by: str | None = None,
        request_seq: int | None = None,
    ) -> None:
        payload: dict[str, Any] = {"reason": reason}
        if by:
            payload["by"] = by
        if request_seq is not None:
            payload["request_seq"] = request_seq
        who = f" (asked by {by})" if by else ""
        self.writer.transition(
            driver.hotfix(),
            "start_rollback",
            guard=driver.guard,
            before=outbox.owe(
                driver, "rollback_started", f"rolling back{who}: {reason}", {"reason": reason}
            ),
            payload=payload,
            failed_from=None,
            error=reason,
            paused_reason=None,
            paused_gate=None,
        )
        outbox.deliver(driver)

    def _approved(self, hotfix: Hotfix, gate: str) -> bool:
        rows = self.store.journal(hotfix.id, kinds=("approval",), newest_first=True)
        return any(r.payload.get("gate") == gate for r in rows)


def check_graph(hotfix: Hotfix, graph: Graph = machine.DEFAULT) -> None:
    """Refuse a hotfix started under a graph this code does not know (or cannot map)."""
    if not graph.is_known(hotfix.graph_hash):
        raise UnknownGraph(
            f"this hotfix was started with state graph {hotfix.graph_hash}, which this "
            f"version of hotfix_fsm (graph {graph.hash}) does not know",
            hotfix_id=hotfix.id,
            hint="resume it with the hotfix_fsm version that started it",
        )


def _outcome(hotfix: Hotfix) -> Outcome:
    return Outcome(
        hotfix.id,
        hotfix.state,
        hotfix.paused_reason,
        hotfix.paused_gate,
        hotfix.error,
        failed_from=hotfix.failed_from,
        rollback_target="rollback_target" in hotfix.context,
    )
