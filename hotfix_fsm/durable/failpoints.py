"""Failpoints: kill (or freeze) the process at a named checkpoint boundary, for crash tests.

Set ``HOTFIX_FSM_FAILPOINTS`` to a comma-separated list of ``<phase>:<point>[@<n>][=<action>]``,
where point is ``before_effect``, ``after_effect`` or ``after_done`` (``*`` matches any phase
or point; an alert's boundaries ``alert:<event>:before_effect``/``after_effect``
only matches when named; ``merge:auto_merge_on`` is the instant after GitHub turned
auto-merge on and before it is recorded), ``n`` picks the n-th time the boundary is
reached in this process (default 1), and action is what happens there:

* ``kill`` (the default): the process sends itself SIGKILL — no cleanup, no flush, exactly
  what a dead laptop does;
* ``stop``: the process sends itself SIGSTOP and freezes there, every thread with it, as a
  suspended laptop or a stalled VM; it carries on from that very instant on SIGCONT.

``HOTFIX_FSM_FAILPOINT_LOG`` names a file that receives one line per failpoint that fired
(``phase:point@n``, with ``=stop`` appended for a freeze), written before the signal.

Tests inside one process install a hook with ``set_hook`` instead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable

POINTS = ("before_effect", "after_effect", "after_done")
ACTIONS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
ENV = "HOTFIX_FSM_FAILPOINTS"
LOG_ENV = "HOTFIX_FSM_FAILPOINT_LOG"

_hook: Callable[[str, str], None] | None = None
_seen: Counter[str] = Counter()
# Locks a freeze takes before the signal: a lease heartbeat registers the one it writes
# under, so a freeze at a boundary never catches that thread inside a store transaction
# (which would hold the store's write lock, and the test would measure the lock, not the
# boundary).
_freeze_locks: list[threading.Lock] = []


def hold_during_freeze(lock: threading.Lock) -> Callable[[], None]:
    """Register ``lock`` to be held while a ``stop`` failpoint freezes the process; returns
    the call that unregisters it."""
    _freeze_locks.append(lock)

    def forget() -> None:
        with contextlib.suppress(ValueError):
            _freeze_locks.remove(lock)

    return forget


def set_hook(hook: Callable[[str, str], None] | None) -> None:
    """Call ``hook(phase, point)`` at every boundary (it may raise to simulate a crash)."""
    global _hook
    _hook = hook


def parse(spec: str) -> tuple[str, str, int, str]:
    """``<phase>:<point>[@<n>][=<action>]`` as (phase, point, n, action).

    Raises:
        ValueError: an action other than ``kill`` or ``stop`` (a typo must not kill).
    """
    target, _, action = spec.strip().partition("=")
    target, _, nth = target.partition("@")
    phase, _, point = target.rpartition(":")
    action = action.strip() or "kill"
    if action not in ACTIONS:
        raise ValueError(
            f"{ENV}: unknown failpoint action {action!r} in {spec!r} "
            f"(use {' or '.join(sorted(ACTIONS))})"
        )
    return phase, point, int(nth) if nth.isdigit() else 1, action


def _freeze(sig: signal.Signals) -> None:
    held = list(_freeze_locks)
    for lock in held:
        lock.acquire()
    try:
        os.kill(os.getpid(), sig)
    finally:
        for lock in reversed(held):
            lock.release()


def _action(spec: str, phase: str, point: str, count: int) -> str | None:
    """The action of ``spec`` when it matches this boundary, else None."""
    want_phase, want_point, nth, action = parse(spec)
    if want_phase == "*" and phase.startswith("alert:"):
        return None  # an alert's boundary (alert:<event>) is only ever named explicitly
    if want_phase not in ("*", phase) or want_point not in ("*", point):
        return None
    return action if count == nth else None


def reach(phase: str, point: str) -> None:
    """Called by the runner at each boundary."""
    if _hook is not None:
        _hook(phase, point)
    raw = os.environ.get(ENV)
    if not raw:
        return
    _seen[f"{phase}:{point}"] += 1
    count = _seen[f"{phase}:{point}"]
    for spec in raw.split(","):
        action = _action(spec, phase, point, count) if spec.strip() else None
        if action is None:
            continue
        log = os.environ.get(LOG_ENV)
        if log:
            suffix = "" if action == "kill" else f"={action}"
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"{phase}:{point}@{count}{suffix}\n")
        if action == "stop":
            _freeze(ACTIONS[action])
        else:
            os.kill(os.getpid(), ACTIONS[action])
        # Only a freeze gets here, once SIGCONT wakes the process: carry on as if nothing
        # happened, as a resumed laptop does (its other failpoints still apply).
