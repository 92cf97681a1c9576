"""Alerts as an outbox: journaled with the change that causes them, delivered after.

An alert is a side effect like any other, so it follows the step protocol with the outbox
row as its intent:

1. **intent in the same transaction as the cause.** The write that pauses, fails, rolls
   back or ends a hotfix also carries an ``alert_owed`` row (``event``, ``message``,
   ``fields``): there is no instant at which the state has changed and the alert is not
   yet known to be owed.
2. **effect, then done.** ``deliver`` sends every owed alert that has no ``alert`` row
   answering it (``owed``: the owed row's seq), then journals that ``alert`` row with the
   targets that took it. The driver confirms its lease before each one; a driver that lost
   the hotfix sends nothing.
3. **in doubt: send again.** An owed row without its answer was never sent, or was sent and
   the process died before the answer was written — nothing in the world can tell which
   for a chat message. Any later driver holding the lease (a resume, an abort, a take-over)
   sends it, marked as sent late. PagerDuty's ``dedup_key`` is the hotfix id, so a repeated
   trigger or resolve lands on the same incident; a Slack or webhook message is repeated
   only after such a crash, never otherwise.

A delivery that fails for a reason that may pass (refused, 429, a gateway error; for
PagerDuty also a 500 or a timeout) is tried again a few times within one bounded call
(``adapters.alerts``); what still fails is reported in the ``alert`` row and not sent
again by later drivers: the outbox guards against crashes, the retries against a blip of
the receiver, and neither against a receiver that stays down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.redact import redact, redact_obj
from hotfix_fsm.durable import failpoints
from hotfix_fsm.log import get_logger
from hotfix_fsm.store import Entry, JournalEntry, Store

if TYPE_CHECKING:
    from hotfix_fsm.durable.step import Driver

log = get_logger(__name__)

OWED = "alert_owed"
SENT = "alert"
LATE = " (sent after an interruption)"


def _alerter(driver: Driver) -> Any:
    try:
        return driver.services.alerts
    except Exception:  # alerting is optional machinery; its absence is only logged
        log.warning("alerter_unavailable", hotfix=driver.hotfix_id, exc_info=True)
        return None


def owe(
    driver: Driver, event: str, message: str, fields: dict[str, Any] | None = None
) -> list[Entry]:
    """The outbox row for ``event`` (to write with its cause), or none when no target hears it."""
    alerter = _alerter(driver)
    if alerter is None:
        return []
    hears = getattr(alerter, "hears", None)
    if not (hears(event) if callable(hears) else getattr(alerter, "configured", True)):
        return []
    payload = {"event": event, "message": redact(message), "fields": redact_obj(fields or {})}
    return [Entry(OWED, None, 0, None, payload)]


def undelivered(store: Store, hotfix_id: str) -> list[JournalEntry]:
    """Owed alerts no ``alert`` row answers yet, oldest first."""
    rows = store.journal(hotfix_id, kinds=(OWED, SENT))
    answered = {r.payload.get("owed") for r in rows if r.kind == SENT}
    return [r for r in rows if r.kind == OWED and r.seq not in answered]


def deliver(driver: Driver, *, late: bool = False) -> int:
    """Send every owed alert of the driver's hotfix and journal each answer; how many.

    ``late``: the alerts were owed before this driver's turn (a resume after a crash).
    """
    owed = undelivered(driver.store, driver.hotfix_id)
    if not owed:
        return 0
    alerter = _alerter(driver)
    for row in owed:
        event = str(row.payload.get("event") or "")
        driver.guard.check()  # a driver that lost the hotfix does not speak for it
        hotfix = driver.hotfix()
        message = str(row.payload.get("message") or event) + (LATE if late else "")
        fields = dict(row.payload.get("fields") or {})
        failpoints.reach(f"alert:{event}", "before_effect")  # owed and journaled, not sent
        result = alerter.send(event, hotfix, message, fields) if alerter is not None else None
        failpoints.reach(f"alert:{event}", "after_effect")  # sent, its answer not journaled
        answer: dict[str, Any] = {"event": event, "owed": row.seq}
        answer.update(result or {"delivered": [], "failed": [], "note": "no target hears it"})
        if late:
            answer["late"] = True
        driver.write(hotfix, [Entry(SENT, None, 0, None, answer)])
    return len(owed)


__all__ = ["LATE", "OWED", "SENT", "deliver", "owe", "undelivered"]
