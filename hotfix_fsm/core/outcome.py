"""What a drive returns (``Outcome``), what subscribers receive (``Event``), and the one
thing a person should do next (``next_action``), derived from the state graph."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hotfix_fsm.core import machine
from hotfix_fsm.errors import ExitCode


@dataclass(frozen=True)
class Event:
    """What subscribers receive: a journal row just committed, or progress of a wait.

    Every row the journal writer commits reaches ``HotfixEngine.subscribe`` callbacks once,
    in sequence order, right after its transaction commits — the rows ``hotfix log`` shows.
    Such an event carries the row's ``seq`` (gapless per hotfix, from 1), its ``kind``, its
    ``phase`` (or None), its redacted ``payload`` and ``state``, the hotfix's state once the
    row's write committed. The only event that is not a row is ``progress`` (``seq`` None).

    The kinds, and what their payload holds:

    - ``created`` (seq 1; phase None): ``issue``, ``repo``, ``graph_hash``.
    - ``intent`` (phase: the phase, ``gate:<name>`` or ``abort_cleanup``): the effect about
      to be attempted — what the phase prepared (e.g. ``correlation_id``, ``workflow``,
      ``sha``) and ``driver``, the lease owner that wrote it.
    - ``done``: ``facts``, what the effect produced; with ``inferred: true`` and
      ``evidence`` when a probe or ``adopt`` established it rather than the effect itself.
    - ``failed`` / ``paused``: an attempt ended without its effect: ``error``, ``hint``,
      ``code`` and ``transient`` (a transient failure is retried by the phase's policy).
    - ``pause``: the hotfix now waits for a person: ``reason`` and ``gate`` (``fix``,
      ``deploy``, ``rollback`` or None); ``next_action`` says what to do.
    - ``probe``: an in-doubt intent was checked against the world: ``status`` (``done``,
      ``not_done``, ``unknown``), ``reason``, ``facts`` and, when another driver wrote the
      intent, ``intent_of``.
    - ``transition`` (phase: the trigger — a phase name, ``fail``, ``retry``, ``cancel``,
      ``start_rollback``, ``rollback_fail``, ``retry_rollback``, ``handoff`` …): ``from``
      and ``to``, plus what the edge records (``reason``, ``by``, ``note``, ``inferred``,
      ``lost`` …).
    - ``approval`` (phase: the gate): ``gate``, ``by``, ``sha`` (the fix commit it is bound
      to), ``at``.
    - ``note``: a record beside the steps; its payload says which: ``facts`` saved by a
      phase (e.g. the rollback target), ``abort_cleanup``, ``handoff``, ``kind: adopted``,
      ``time_to_production_s``, ``resumed`` …
    - ``alert_owed``: an alert is owed, journaled with the change that causes it (the
      outbox, ``durable.outbox``): ``event``, ``message``, ``fields``.
    - ``alert``: an owed alert was sent: ``event`` (``paused``, ``failed``, ``completed``,
      ``rollback_started`` …), ``owed`` (the seq of its ``alert_owed`` row), ``severity``,
      ``delivered`` and ``failed`` targets, ``late`` when a later driver sent it after a
      crash.
    - ``measurement`` (phase ``verify``, ``monitor``, ``rollback_verify``): one health
      check (``check``, ``n``, ``status``, ``latency_ms``, ``healthy``, ``version``,
      ``reason``) or one monitoring round (``window``, ``round``, ``verdicts`` …).
    - ``progress`` (not journaled; ``seq`` and ``state`` None): what a long wait is waiting
      for: ``message`` and fields such as ``elapsed`` or ``due_in``.

    A custom phase may journal other kinds through ``PhaseContext.record``.
    """

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
    failed_from: str | None = None
    rollback_target: bool | None = None

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
        return next_action(
            self.hotfix_id,
            self.state,
            self.paused_gate,
            self.paused_reason,
            failed_from=self.failed_from,
            rollback_target=self.rollback_target,
        )


class HotfixLike(Protocol):
    """What ``next_action_for`` reads of a hotfix (``store.Hotfix`` has it all)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def paused_gate(self) -> str | None: ...
    @property
    def paused_reason(self) -> str | None: ...
    @property
    def failed_from(self) -> str | None: ...
    @property
    def context(self) -> Mapping[str, Any]: ...


def driven_now(hotfix: HotfixLike) -> str | None:
    """The owner of the live lease of a hotfix that a driver is moving now, else None."""
    live = getattr(hotfix, "lease_live", None)
    if hotfix.paused_reason or hotfix.state in machine.TERMINAL | machine.STOPPED:
        return None
    if not (callable(live) and live()):
        return None
    gone = getattr(hotfix, "lease_holder_gone", None)
    if callable(gone) and gone():  # a killed driver on this machine: resume takes over
        return None
    return str(getattr(hotfix, "lease_owner", None) or "another process")


def next_action_for(hotfix: HotfixLike) -> str:
    """``next_action`` for a stored hotfix (its pause, the state it failed in, its facts);
    for one a live driver is moving now: nothing to run but a watch."""
    owner = driven_now(hotfix)
    if owner is not None:
        return (
            f"nothing to run: {owner} is driving it now; `hotfix status {hotfix.id} --watch` "
            f"follows it (if that driver is gone for good, `hotfix resume {hotfix.id} "
            "--take-over`)"
        )
    return next_action(
        hotfix.id,
        hotfix.state,
        hotfix.paused_gate,
        hotfix.paused_reason,
        failed_from=hotfix.failed_from,
        rollback_target="rollback_target" in hotfix.context,
    )


def can(state: str, trigger: str, *, failed_from: str | None = None) -> bool:
    """Whether the graph lets a person fire ``trigger`` from ``state`` now.

    A stopped hotfix (``failed``, ``rollback_failed``) stands for the state it stopped in:
    besides the edge of the stopped state itself, the state it failed in must allow the
    trigger too — abort is never offered for a hotfix that failed where abort is refused.
    """
    if machine.destination(state, trigger, failed_from=failed_from) is None:
        return False
    if state in machine.STOPPED and failed_from in machine.ALL_STATES:
        return machine.destination(failed_from, trigger) is not None
    return True


def possible_commands(
    state: str,
    gate: str | None = None,
    *,
    failed_from: str | None = None,
    rollback_target: bool | None = None,
) -> dict[str, bool]:
    """Which of ``hotfix resume``, ``abort``, ``rollback`` and ``approve <gate>`` the graph
    allows in ``state`` (with ``gate`` paused; ``rollback_target`` False when none was
    recorded, which ``hotfix rollback`` needs)."""
    return {
        "resume": state in machine.ALL_STATES and state not in machine.TERMINAL,
        "abort": can(state, "cancel", failed_from=failed_from),
        "rollback": rollback_target is not False
        and can(state, "start_rollback", failed_from=failed_from),
        "approve": gate is not None and can(state, "approve", failed_from=failed_from),
    }


_FINISHED = {
    "done": "nothing: the hotfix is done (`hotfix report {id}` for the post-mortem)",
    "rolled_back": "production runs the rollback target; see `hotfix report {id}`",
    "cancelled": "nothing: the hotfix was cancelled",
}


def next_action(
    hotfix_id: str,
    state: str,
    gate: str | None,
    reason: str | None,
    *,
    failed_from: str | None = None,
    rollback_target: bool | None = None,
) -> str:
    """The one thing a person should do next, as a command line.

    Every ``hotfix`` verb it names is one the state graph allows in ``state`` (see
    ``possible_commands``): ``resume`` only before a terminal state, ``abort`` only where the
    ``cancel`` edge leaves the state, ``rollback`` only where ``start_rollback`` does (and a
    rollback target is known to be recorded, when ``rollback_target`` says), ``approve`` only
    for the gate the hotfix waits at. ``failed_from`` is the state a stopped hotfix failed
    in; ``rollback_target`` whether one is recorded (None: unknown).
    """
    hid = hotfix_id
    ok = possible_commands(state, gate, failed_from=failed_from, rollback_target=rollback_target)
    if not ok["resume"]:  # a terminal state (or one this graph does not know)
        text = _FINISHED.get(state, f"nothing: the hotfix is {state}").format(id=hid)
        if state == "done" and ok["rollback"]:
            text += f"; if production misbehaves, `hotfix rollback {hid}` rolls it back"
        return text
    resume = f"`hotfix resume {hid}`"
    if gate == "fix":
        first = f"edit the fix in the hotfix work tree, then {resume}"
    elif gate and ok["approve"]:
        first = f"`hotfix approve {hid} {gate}`, then {resume}"
    elif reason or gate:
        first = f"check what the pause says, then {resume}"
    elif state == "rollback_failed" or (
        state in machine.STOPPED and failed_from in machine.ROLLBACK_STATES
    ):
        # Abort is refused from the deploy on: what helps is to find out why the rollback
        # failed, get production safe (by hand if it cannot wait), then retry the rollback.
        first = (
            "investigate why the rollback failed (the error says what ran and what production "
            "answers now); production may still run the fix, so roll it back by hand if it "
            f"cannot wait; then {resume} retries the rollback"
        )
    elif state in machine.STOPPED:
        first = f"fix the cause shown, then {resume}"
    else:
        return resume  # nothing to decide: continue
    others = []
    if ok["rollback"] and gate != "rollback":
        others.append(f"`hotfix rollback {hid}`")
    if ok["abort"]:
        others.append(f"`hotfix abort {hid}`")
    return first + (f" (or {', or '.join(others)})" if others else "")
