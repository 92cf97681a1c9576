"""THE journal writer: the only code that writes journal rows or hotfix state.

Every record — a driver's checkpoint, an approval, an abort, an adoption, a hand-off —
passes ``JournalWriter.write``, which

1. checks every state change against the graph: a write that moves the hotfix carries one
   ``transition`` row per edge, each asked of the one ``transitions`` machine of the process
   (``Graph.next_state``), and an ``approval`` row must be an ``approve`` edge of the state;
2. redacts every registered secret in every field (payloads, context, error, pause reason);
   the context, the largest field, is serialised once and searched once: only when a secret
   shows up in that text is it redacted value by value;
3. commits through the store, which assigns the gapless sequence under the fencing token
   when a lease is given;
4. publishes each committed row to subscribers, in sequence order.

A driver that lost its lease meets ``LeaseLost`` here, never a misleading "illegal
transition" computed from a state another driver has moved on from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core import machine
from hotfix_fsm.core.machine import Graph
from hotfix_fsm.core.outcome import Event
from hotfix_fsm.core.redact import json_is_clean, redact, redact_obj
from hotfix_fsm.errors import IllegalTransition, LeaseLost
from hotfix_fsm.log import get_logger
from hotfix_fsm.store import Entry, Hotfix, Lease, Store, to_json

if TYPE_CHECKING:
    from hotfix_fsm.durable.lease import LeaseGuard

log = get_logger(__name__)

Subscriber = Callable[[Event], None]
_TEXT_COLUMNS = ("error", "paused_reason", "description")


class JournalWriter:
    """Validated, redacted, fenced, published writes to one store."""

    def __init__(self, store: Store, graph: Graph = machine.DEFAULT) -> None:
        self.store = store
        self.graph = graph
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    # -- subscriptions -------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every committed row (and progress of long waits)."""
        self._subscribers.append(callback)
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must never break the hotfix
                log.warning("subscriber_failed", hotfix=event.hotfix_id, exc_info=True)

    def progress(self, hotfix_id: str, phase: str | None, message: str, **fields: Any) -> None:
        """Tell subscribers what is being waited for (not journaled)."""
        payload = redact_obj({"message": message, **fields})
        self.emit(Event(hotfix_id, "progress", phase, payload))

    # -- writes --------------------------------------------------------------------------

    def create(self, **row: Any) -> Hotfix:
        """Record a new hotfix (``Store.create`` arguments); its ``created`` row is seq 1."""
        row["description"] = redact(str(row["description"]))
        row["options"] = redact_obj(row.get("options") or {})
        row["context"] = redact_obj(row.get("context") or {})
        with self._lock:
            hotfix = self.store.create(**row)
            created = self.store.journal(hotfix.id, limit=1)
            for entry in created:
                self.emit(
                    Event(hotfix.id, entry.kind, None, entry.payload, entry.seq, hotfix.state)
                )
        return hotfix

    def write(
        self,
        hotfix: Hotfix,
        entries: Sequence[Entry],
        *,
        lease: Lease | None = None,
        guard: LeaseGuard | None = None,
        **changes: Any,
    ) -> int:
        """Append ``entries`` and apply ``changes`` in one transaction; return the last seq.

        With ``guard`` (or ``lease``) the write is fenced: it lands only while that lease
        holds. Without (or with a ``BesideGuard``), it is a record made beside the driver
        (an approval, a note, a person's environment approval).

        Raises:
            IllegalTransition: a row or a state change the graph does not allow.
            LeaseLost: the fence refused the write.
        """
        if guard is not None:
            lease = guard.lease if guard.fences else None
        try:
            self._validate(hotfix, entries, changes)
        except IllegalTransition:
            if lease is not None and not self._holds(lease):
                if guard is not None:
                    guard.lost.set()
                raise _lost(lease) from None
            raise
        clean = [Entry(e.kind, e.phase, e.attempt, e.key, redact_obj(e.payload)) for e in entries]
        for column in _TEXT_COLUMNS:
            if isinstance(changes.get(column), str):
                changes[column] = redact(changes[column])
        for column in ("context", "options"):
            if column in changes:
                changes[column] = _clean_context(changes[column])
        started = time.monotonic()
        with self._lock:
            try:
                if lease is not None:
                    seq = self.store.checkpoint(lease, clean, **changes)
                else:
                    seq = self.store.append(hotfix.id, clean, **changes)
            except LeaseLost:
                if guard is not None:
                    guard.lost.set()
                if lease is None:
                    raise
                raise _lost(lease) from None
            if guard is not None:
                guard.noted_write(started)
            state = changes.get("state", hotfix.state)
            first = seq - len(clean) + 1
            for i, entry in enumerate(clean):
                self.emit(
                    Event(hotfix.id, entry.kind, entry.phase, entry.payload, first + i, state)
                )
        return seq

    def transition(
        self,
        hotfix: Hotfix,
        trigger: str,
        *,
        guard: LeaseGuard | None = None,
        lease: Lease | None = None,
        before: Sequence[Entry] = (),
        attempt: int = 0,
        payload: dict[str, Any] | None = None,
        **changes: Any,
    ) -> str:
        """Fire ``trigger`` from the hotfix's state: rows ``before``, then the transition row,
        with ``changes``, in one transaction. Returns the new state."""
        dest = self.graph.next_state(hotfix.state, trigger, failed_from=hotfix.failed_from)
        if dest is None:
            held = guard.lease if guard is not None else lease
            if held is not None and not self._holds(held):
                if guard is not None:
                    guard.lost.set()
                raise _lost(held)
            raise _illegal(hotfix, trigger)
        row = Entry(
            "transition",
            trigger,
            attempt,
            None,
            {"from": hotfix.state, "to": dest, **(payload or {})},
        )
        self.write(hotfix, [*before, row], guard=guard, lease=lease, state=dest, **changes)
        return dest

    # -- validation ----------------------------------------------------------------------

    def _validate(self, hotfix: Hotfix, entries: Sequence[Entry], changes: dict[str, Any]) -> None:
        state, failed_from = hotfix.state, hotfix.failed_from
        moved = False
        for entry in entries:
            if entry.kind == "transition":
                trigger = entry.phase or ""
                dest = self.graph.next_state(state, trigger, failed_from=failed_from)
                claimed = entry.payload.get("to")
                if dest is None or (claimed is not None and claimed != dest):
                    raise _illegal(hotfix, trigger, state)
                state, failed_from, moved = dest, None, True
            elif entry.kind == "approval" and self.graph.next_state(state, "approve") is None:
                raise _illegal(hotfix, "approve", state)
            elif entry.kind == "rollback_request" and (
                self.graph.next_state(state, "start_rollback", failed_from=failed_from) is None
            ):
                raise _illegal(hotfix, "start_rollback", state)
        if "state" in changes and changes["state"] != state:
            raise IllegalTransition(
                f"a write would move hotfix {hotfix.id} from {hotfix.state} to "
                f"{changes['state']} without a transition the graph allows",
                hotfix_id=hotfix.id,
            )
        if moved and "state" not in changes:
            changes["state"] = state

    def _holds(self, lease: Lease) -> bool:
        current = self.store.get(lease.hotfix_id)
        return current.fencing_token == lease.token and current.lease_owner == lease.owner


def _clean_context(context: Any) -> Any:
    """The context as the store will keep it: its JSON text when no secret occurs in it (one
    serialisation, one search), else the value redacted string by string."""
    text = to_json(context)
    return text if json_is_clean(text) else redact_obj(context)


def _illegal(hotfix: Hotfix, trigger: str, state: str | None = None) -> IllegalTransition:
    return IllegalTransition(
        f"{trigger} is not allowed from state {state or hotfix.state}",
        hotfix_id=hotfix.id,
        hint=f"`hotfix status {hotfix.id}` shows what the hotfix can do now",
    )


def _lost(lease: Lease) -> LeaseLost:
    return LeaseLost(
        "this driver lost its lease on the hotfix; it sent nothing more and wrote nothing "
        "more — another driver continues",
        hotfix_id=lease.hotfix_id,
        hint=f"run `hotfix status {lease.hotfix_id}` to see who drives it now",
    )
