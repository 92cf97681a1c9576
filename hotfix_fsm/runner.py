"""Drive one hotfix: lease, then intent → effect → done per phase, with probes after a crash.

The loop, for the phase of the current state:

* the phase's latest journal row is an *intent* with no *done*/*failed* after it → the
  effect is in doubt: probe the world, adopt a done effect, redo one that did not happen,
  pause for a human when the probe cannot tell;
* otherwise commit an intent row, run the effect, commit *done* together with the state
  transition (one transaction, fenced by the lease).

Failpoints sit at the three boundaries (``before_effect``, ``after_effect``, ``after_done``).
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from . import failpoints, machine
from .config import Config
from .errors import (
    HotfixError,
    IllegalTransition,
    LeaseLost,
    NeedsHuman,
    PermanentError,
    RollbackRequired,
    TransientError,
    UnknownGraph,
)
from .log import get_logger
from .outcome import Event, Outcome, next_action
from .phases.base import Phase, PhaseContext, Probe
from .phases.services import Services
from .store import Entry, Hotfix, JournalEntry, Lease, Store, new_owner

log = get_logger("hotfix_fsm.runner")

# Event, Outcome and next_action live in .outcome; they stay importable from here.
__all__ = ["END_KINDS", "Event", "Outcome", "Runner", "next_action"]

END_KINDS = ("done", "failed", "paused")  # rows that end an intent


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
    ) -> None:
        self.store = store
        self.phases = dict(phases)
        self.services_for = services_for
        self.config_for = config_for
        self.lease_ttl = lease_ttl
        self.owner = owner or new_owner()
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback`` for every committed journal row and progress message."""
        self._subscribers.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def _emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break the hotfix
                log.warning("subscriber_failed", hotfix=event.hotfix_id, exc_info=True)

    # -- driving -------------------------------------------------------------------------

    def drive(self, hotfix_id: str, *, take_over: bool = False) -> Outcome:
        """Advance the hotfix until it is done, paused, failed or rolled back."""
        hotfix = self.store.get(hotfix_id)
        if not machine.is_known_graph(hotfix.graph_hash):
            raise UnknownGraph(
                f"this hotfix was started with state graph {hotfix.graph_hash}, which this "
                f"version of hotfix_fsm (graph {machine.graph_hash()}) does not know",
                hotfix_id=hotfix_id,
                hint="resume it with the hotfix_fsm version that started it",
            )
        lease = self.store.acquire_lease(
            hotfix_id, self.owner, ttl=self.lease_ttl, take_over=take_over
        )
        stop = threading.Event()
        beat = threading.Thread(
            target=self._heartbeat, args=(lease, stop), name=f"lease-{hotfix_id}", daemon=True
        )
        beat.start()
        config = self.config_for(hotfix)
        services = self.services_for(hotfix)
        try:
            return self._loop(lease, config, services, stop)
        finally:
            lost = stop.is_set()
            stop.set()
            beat.join()
            services.close()
            if not lost:
                try:
                    self.store.release_lease(lease)
                except HotfixError:
                    log.warning("lease_release_failed", hotfix=hotfix_id)

    def _heartbeat(self, lease: Lease, stop: threading.Event) -> None:
        while not stop.wait(lease.ttl / 3):
            try:
                if not self.store.renew_lease(lease):
                    log.warning("lease_lost", hotfix=lease.hotfix_id)
                    stop.set()
                    return
            except HotfixError:
                log.warning("lease_renew_failed", hotfix=lease.hotfix_id, exc_info=True)

    def _loop(
        self, lease: Lease, config: Config, services: Services, stop: threading.Event
    ) -> Outcome:
        hotfix = self.store.get(lease.hotfix_id)
        if hotfix.state in machine.STOPPED and hotfix.failed_from:
            trigger = "retry" if hotfix.state == "failed" else "retry_rollback"
            self._transition(lease, hotfix, trigger, hotfix.failed_from, note="resumed")
        elif hotfix.paused_reason:
            self._checkpoint(
                lease,
                hotfix,
                [Entry("note", payload={"resumed": True})],
                paused_reason=None,
                paused_gate=None,
            )
        while True:
            if stop.is_set():
                raise LeaseLost(
                    "this driver lost its lease; another driver continues",
                    hotfix_id=lease.hotfix_id,
                )
            hotfix = self.store.get(lease.hotfix_id)
            state = hotfix.state
            if state in machine.TERMINAL or state in machine.STOPPED or hotfix.paused_reason:
                return self._outcome(hotfix)
            if state == "gating":
                self._run_gates(lease, hotfix, config, services, stop)
                continue
            phase_name = machine.PHASE_OF_STATE[state]
            if phase_name in machine.BOOKKEEPING_PHASES:
                self._bookkeeping(lease, hotfix, phase_name, config, services)
                continue
            self._run_phase(lease, hotfix, phase_name, config, services, stop)

    def _outcome(self, hotfix: Hotfix) -> Outcome:
        return Outcome(
            hotfix.id, hotfix.state, hotfix.paused_reason, hotfix.paused_gate, hotfix.error
        )

    # -- one phase -----------------------------------------------------------------------

    def _phase(self, name: str, hotfix: Hotfix) -> Phase:
        try:
            return self.phases[name]
        except KeyError:
            raise PermanentError(
                f"no implementation is registered for phase {name!r}",
                hotfix_id=hotfix.id,
                phase=name,
                hint="register one with HotfixEngine(phases={...})",
            ) from None

    def _context(
        self,
        lease: Lease,
        hotfix: Hotfix,
        phase: str,
        attempt: int,
        config: Config,
        services: Services,
        stop: threading.Event,
        intent: dict[str, Any] | None = None,
    ) -> PhaseContext:
        return PhaseContext(
            hotfix=hotfix,
            phase=phase,
            attempt=attempt,
            config=config,
            services=services,
            data=dict(hotfix.context),
            recorder=_Recorder(self, lease),
            intent=intent or {},
            stop_event=stop,
        )

    def _in_doubt(self, hotfix_id: str, phase: str, key: str | None = None) -> JournalEntry | None:
        """The phase's last intent, when nothing ended it."""
        rows = self.store.journal(
            hotfix_id, phase=phase, kinds=("intent", *END_KINDS), limit=1, newest_first=True
        )
        if rows and rows[0].kind == "intent" and (key is None or rows[0].key == key):
            return rows[0]
        return None

    def _run_phase(
        self,
        lease: Lease,
        hotfix: Hotfix,
        name: str,
        config: Config,
        services: Services,
        stop: threading.Event,
    ) -> None:
        phase = self._phase(name, hotfix)
        attempts: dict[str, int] = dict(hotfix.context.get("_attempts", {}))
        attempt = attempts.get(name, 0)
        doubt = self._in_doubt(hotfix.id, name)
        if doubt is not None:
            ctx = self._context(
                lease, hotfix, name, doubt.attempt, config, services, stop, doubt.payload
            )
            probe = self._probe(phase, ctx)
            self._checkpoint(
                lease,
                hotfix,
                [
                    Entry(
                        "probe",
                        name,
                        doubt.attempt,
                        doubt.key,
                        {"status": probe.status, "reason": probe.reason, "facts": probe.facts},
                    )
                ],
            )
            if probe.status == "done":
                self._complete(
                    lease, hotfix, name, doubt.attempt, doubt.key, ctx, probe.facts, inferred=True
                )
                return
            hotfix = self.store.get(hotfix.id)  # facts a probe saved must survive
            if probe.status == "unknown":
                self._pause(
                    lease,
                    self.store.get(hotfix.id),
                    name,
                    NeedsHuman(
                        f"cannot tell whether {name} took effect: {probe.reason}",
                        hint="check the world by hand, then `hotfix resume` to probe again",
                    ),
                    services,
                )
                return
        attempt += 1
        attempts[name] = attempt
        ctx = self._context(lease, hotfix, name, attempt, config, services, stop)
        try:
            key = phase.key(ctx)
            prepared = phase.prepare(ctx)
        except LeaseLost:
            raise
        except NeedsHuman as exc:
            self._pause(lease, hotfix, name, exc, services)
            return
        except Exception as exc:  # nothing happened yet: fail the phase cleanly, keep state
            message = (
                exc.message
                if isinstance(exc, HotfixError)
                else (f"unexpected {type(exc).__name__} preparing {name}: {exc}")
            )
            hint = exc.hint if isinstance(exc, HotfixError) else None
            self._fail(lease, hotfix, name, PermanentError(message, hint=hint), services)
            return
        ctx.intent = prepared
        data = {**ctx.data, "_attempts": attempts}
        self._checkpoint(
            lease, hotfix, [Entry("intent", name, attempt, key, prepared)], context=data
        )
        ctx.data = dict(data)
        failpoints.reach(name, "before_effect")
        try:
            facts = phase.run(ctx)
        except LeaseLost:
            raise
        except NeedsHuman as exc:
            self._record_end(lease, name, attempt, key, exc, ctx)
            self._pause(lease, self.store.get(hotfix.id), name, exc, services)
            return
        except TransientError as exc:
            self._record_end(lease, name, attempt, key, exc, ctx)
            if attempt >= config.retry_limit:
                self._fail(
                    lease,
                    self.store.get(hotfix.id),
                    name,
                    PermanentError(
                        f"{exc.message} (gave up after {attempt} attempts)", hint=exc.hint
                    ),
                    services,
                )
                return
            delay = exc.retry_after if exc.retry_after is not None else self._backoff(attempt)
            log.info(
                "phase_retry",
                hotfix=hotfix.id,
                phase=name,
                attempt=attempt,
                delay=round(delay, 2),
                error=exc.message,
            )
            ctx.wait(delay)
            return
        except RollbackRequired as exc:
            self._record_end(lease, name, attempt, key, exc, ctx)
            self._rollback_or_fail(lease, self.store.get(hotfix.id), name, exc, config, services)
            return
        except PermanentError as exc:
            self._record_end(lease, name, attempt, key, exc, ctx)
            self._fail(lease, self.store.get(hotfix.id), name, exc, services)
            return
        except HotfixError as exc:
            self._record_end(lease, name, attempt, key, exc, ctx)
            self._fail(
                lease,
                self.store.get(hotfix.id),
                name,
                PermanentError(exc.message, hint=exc.hint),
                services,
            )
            return
        except Exception as exc:  # a bug or an adapter's surprise: fail cleanly, keep state
            log.error(
                "phase_crashed", hotfix=hotfix.id, phase=name, traceback=traceback.format_exc()
            )
            err = PermanentError(
                f"unexpected {type(exc).__name__}: {exc}",
                hint="this is likely a bug in hotfix_fsm or a phase plug-in; the traceback is "
                "in the hotfix's JSON log; fix the cause and `hotfix resume`",
            )
            self._record_end(lease, name, attempt, key, err, ctx)
            self._fail(lease, self.store.get(hotfix.id), name, err, services)
            return
        failpoints.reach(name, "after_effect")
        self._complete(lease, self.store.get(hotfix.id), name, attempt, key, ctx, facts)

    def _probe(self, phase: Phase, ctx: PhaseContext) -> Probe:
        try:
            return phase.probe(ctx)
        except TransientError as exc:
            return Probe.unknown(f"the probe could not reach the world: {exc.message}")
        except HotfixError as exc:
            return Probe.unknown(exc.message)

    def _complete(
        self,
        lease: Lease,
        hotfix: Hotfix,
        name: str,
        attempt: int,
        key: str | None,
        ctx: PhaseContext,
        facts: dict[str, Any],
        *,
        inferred: bool = False,
    ) -> None:
        data = {**ctx.data, **facts}
        attempts = dict(data.get("_attempts", {}))
        attempts.pop(name, None)
        data["_attempts"] = attempts
        durations = dict(data.get("_durations", {}))
        started = self._phase_started(hotfix.id, name)
        durations[name] = round(time.time() - started, 3) if started else None
        data["_durations"] = durations
        dest = self._validate(hotfix, name)
        payload = {"facts": facts, **({"inferred": True} if inferred else {})}
        self._checkpoint(
            lease,
            hotfix,
            [
                Entry("done", name, attempt, key, payload),
                Entry("transition", name, attempt, None, {"from": hotfix.state, "to": dest}),
            ],
            state=dest,
            context=data,
            error=None,
            paused_reason=None,
            paused_gate=None,
        )
        failpoints.reach(name, "after_done")
        self._after_transition(lease, self.store.get(hotfix.id), ctx.services, ctx.config)

    def _phase_started(self, hotfix_id: str, name: str) -> float | None:
        rows = self.store.journal(hotfix_id, phase=name, kinds=("intent",), limit=1)
        return rows[0].at if rows else None

    def _record_end(
        self,
        lease: Lease,
        name: str,
        attempt: int,
        key: str | None,
        exc: HotfixError,
        ctx: PhaseContext,
    ) -> None:
        kind = "paused" if isinstance(exc, NeedsHuman) else "failed"
        self._checkpoint(
            lease,
            ctx.hotfix,
            [
                Entry(
                    kind,
                    name,
                    attempt,
                    key,
                    {
                        "error": exc.message,
                        "hint": exc.hint,
                        "code": exc.code,
                        "transient": isinstance(exc, TransientError),
                    },
                )
            ],
            context=ctx.data,
        )

    def _backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    # -- transitions ---------------------------------------------------------------------

    def _validate(self, hotfix: Hotfix, trigger: str) -> str:
        """Ask the ``transitions`` machine whether ``trigger`` may fire; return the dest."""
        from transitions.core import MachineError

        model = machine.build_machine(hotfix.state, failed_from=hotfix.failed_from)
        try:
            getattr(model, trigger)()
        except (MachineError, AttributeError) as exc:
            raise IllegalTransition(
                f"{trigger} is not allowed from state {hotfix.state}",
                hotfix_id=hotfix.id,
                hint=f"`hotfix status {hotfix.id}` shows what the hotfix can do now",
            ) from exc
        state = model.state
        if isinstance(state, list):
            return "gating"
        if state == hotfix.state and trigger in ("retry", "retry_rollback"):
            raise IllegalTransition(
                f"cannot {trigger} to {hotfix.failed_from}", hotfix_id=hotfix.id
            )
        return str(state)

    def _transition(
        self,
        lease: Lease,
        hotfix: Hotfix,
        trigger: str,
        expect: str | None = None,
        *,
        note: str | None = None,
        **changes: Any,
    ) -> str:
        dest = self._validate(hotfix, trigger)
        if expect is not None and dest != expect:
            raise IllegalTransition(
                f"{trigger} led to {dest}, expected {expect}", hotfix_id=hotfix.id
            )
        payload: dict[str, Any] = {"from": hotfix.state, "to": dest}
        if note:
            payload["note"] = note
        self._checkpoint(
            lease, hotfix, [Entry("transition", trigger, 0, None, payload)], state=dest, **changes
        )
        return dest

    def _bookkeeping(
        self, lease: Lease, hotfix: Hotfix, name: str, config: Config, services: Services
    ) -> None:
        self._transition(lease, hotfix, name, paused_reason=None, paused_gate=None)
        self._after_transition(lease, self.store.get(hotfix.id), services, config)

    def _after_transition(
        self, lease: Lease, hotfix: Hotfix, services: Services, config: Config
    ) -> None:
        """Side notes of reaching a state: time to production, completion alerts."""
        if hotfix.state == "verified":
            elapsed = time.time() - hotfix.created_at
            target = config.time_target_minutes * 60
            facts = {"time_to_production": round(elapsed, 1)}
            self._checkpoint(
                lease,
                hotfix,
                [
                    Entry(
                        "note",
                        "verify",
                        0,
                        None,
                        {
                            "time_to_production_s": round(elapsed, 1),
                            "target_s": target,
                            "breached": elapsed > target,
                        },
                    )
                ],
                context={**hotfix.context, **facts},
            )
            if elapsed > target:
                self._alert(
                    lease,
                    hotfix,
                    services,
                    "time_target_breached",
                    f"time to production {elapsed / 60:.1f} min exceeded the "
                    f"{config.time_target_minutes:g} min target",
                    {},
                )
        elif hotfix.state == "done":
            self._alert(lease, hotfix, services, "completed", "hotfix completed", {})
        elif hotfix.state == "rolled_back":
            self._alert(
                lease,
                hotfix,
                services,
                "rollback_finished",
                "rollback finished: production runs the rollback target",
                {},
            )

    def _pause(
        self, lease: Lease, hotfix: Hotfix, phase: str, exc: NeedsHuman, services: Services
    ) -> None:
        reason = exc.message + (f" — {exc.hint}" if exc.hint else "")
        self._checkpoint(
            lease,
            hotfix,
            [Entry("pause", phase, 0, None, {"reason": reason, "gate": exc.gate})],
            paused_reason=reason,
            paused_gate=exc.gate,
        )
        self._alert(
            lease,
            hotfix,
            services,
            "paused",
            f"waiting for a human at {phase}: {exc.message}",
            {"gate": exc.gate or ""},
        )

    def _fail(
        self, lease: Lease, hotfix: Hotfix, phase: str, exc: PermanentError, services: Services
    ) -> None:
        in_rollback = hotfix.state in machine.ROLLBACK_STATES
        trigger = "rollback_fail" if in_rollback else "fail"
        message = str(exc.located(hotfix_id=hotfix.id, phase=phase))
        self._transition(lease, hotfix, trigger, failed_from=hotfix.state, error=message)
        self._alert(lease, hotfix, services, "failed", message, {"phase": phase})

    def _rollback_or_fail(
        self,
        lease: Lease,
        hotfix: Hotfix,
        phase: str,
        exc: RollbackRequired,
        config: Config,
        services: Services,
    ) -> None:
        policy = config.rollback.policy
        if policy == "never" or "rollback_target" not in hotfix.context:
            self._fail(lease, hotfix, phase, exc, services)
            return
        if policy == "ask" and not self._approved(hotfix, "rollback"):
            self._pause(
                lease,
                hotfix,
                phase,
                NeedsHuman(
                    f"{exc.message}; rollback policy is 'ask'",
                    gate="rollback",
                    hint=f"`hotfix approve {hotfix.id} rollback` to roll back, or fix forward and "
                    f"`hotfix resume {hotfix.id}`",
                ),
                services,
            )
            return
        self.start_rollback(lease, hotfix, reason=exc.message, services=services)

    def start_rollback(
        self, lease: Lease, hotfix: Hotfix, *, reason: str, services: Services
    ) -> None:
        self._transition(
            lease,
            hotfix,
            "start_rollback",
            "rolling_back",
            failed_from=None,
            error=reason,
            paused_reason=None,
            paused_gate=None,
        )
        self._alert(
            lease,
            hotfix,
            services,
            "rollback_started",
            f"rolling back: {reason}",
            {"reason": reason},
        )

    def _approved(self, hotfix: Hotfix, gate: str) -> bool:
        rows = self.store.journal(hotfix.id, kinds=("approval",), newest_first=True)
        return any(r.payload.get("gate") == gate for r in rows)

    def _alert(
        self,
        lease: Lease,
        hotfix: Hotfix,
        services: Services,
        event: str,
        message: str,
        fields: dict[str, Any],
    ) -> None:
        """Send an alert; a failed delivery is journaled and never fails the hotfix."""
        try:
            alerter = services.alerts
        except Exception:  # alerting is optional machinery; its absence is only logged
            log.warning("alerter_unavailable", hotfix=hotfix.id, exc_info=True)
            return
        result = alerter.send(event, hotfix, message, fields)
        if result:
            self._checkpoint(
                lease, hotfix, [Entry("alert", None, 0, None, {"event": event, **result})]
            )

    # -- gates ---------------------------------------------------------------------------

    def _run_gates(
        self,
        lease: Lease,
        hotfix: Hotfix,
        config: Config,
        services: Services,
        stop: threading.Event,
    ) -> None:
        from .gating import run_gates

        run_gates(self, lease, hotfix, config, services, stop)

    # -- writes --------------------------------------------------------------------------

    def _checkpoint(
        self, lease: Lease, hotfix: Hotfix, entries: list[Entry], **changes: Any
    ) -> int:
        with self._lock:
            seq = self.store.checkpoint(lease, entries, **changes)
        state = changes.get("state", hotfix.state)
        first = seq - len(entries) + 1
        for i, entry in enumerate(entries):
            self._emit(Event(hotfix.id, entry.kind, entry.phase, entry.payload, first + i, state))
        return seq


class _Recorder:
    """The fenced write path a PhaseContext uses."""

    def __init__(self, runner: Runner, lease: Lease) -> None:
        self.runner = runner
        self.lease = lease

    def _lease(self) -> Lease:
        return self.lease

    def record(self, ctx: PhaseContext, kind: str, payload: dict[str, Any]) -> None:
        self.runner._checkpoint(
            self._lease(), ctx.hotfix, [Entry(kind, ctx.phase, ctx.attempt, None, payload)]
        )

    def save_facts(self, ctx: PhaseContext, facts: dict[str, Any]) -> None:
        self.runner._checkpoint(
            self._lease(),
            ctx.hotfix,
            [Entry("note", ctx.phase, ctx.attempt, None, {"facts": facts})],
            context=ctx.data,
        )

    def journal(self, hotfix_id: str, **filters: Any) -> list[JournalEntry]:
        return self.runner.store.journal(hotfix_id, **filters)

    def emit_progress(self, ctx: PhaseContext, message: str, fields: dict[str, Any]) -> None:
        self.runner._emit(
            Event(ctx.hotfix.id, "progress", ctx.phase, {"message": message, **fields})
        )
