"""Failpoints: kill the process at a named checkpoint boundary, for deterministic crash tests.

Set ``HOTFIX_FSM_FAILPOINTS`` to a comma-separated list of ``<phase>:<point>[@<n>]``, where
point is ``before_effect``, ``after_effect`` or ``after_done`` (``*`` matches any phase or
point) and ``n`` picks the n-th time the boundary is reached in this process (default 1).
When one matches, the process sends itself SIGKILL: no cleanup, no flush, exactly what a dead
laptop does. ``HOTFIX_FSM_FAILPOINT_LOG`` names a file that receives one line per kill.

Tests inside one process install a hook with ``set_hook`` instead.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

POINTS = ("before_effect", "after_effect", "after_done")
ENV = "HOTFIX_FSM_FAILPOINTS"

_hook: Callable[[str, str], None] | None = None
_seen: Counter[str] = Counter()


def set_hook(hook: Callable[[str, str], None] | None) -> None:
    """Call ``hook(phase, point)`` at every boundary (it may raise to simulate a crash)."""
    global _hook
    _hook = hook


def _matches(spec: str, phase: str, point: str, count: int) -> bool:
    target, _, nth = spec.partition("@")
    want_phase, _, want_point = target.rpartition(":")
    if want_phase not in ("*", phase) or want_point not in ("*", point):
        return False
    return count == (int(nth) if nth.isdigit() else 1)


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
        if spec.strip() and _matches(spec.strip(), phase, point, count):
            log = os.environ.get("HOTFIX_FSM_FAILPOINT_LOG")
            if log:
                with open(log, "a", encoding="utf-8") as fh:
                    fh.write(f"{phase}:{point}@{count}\n")
            os.kill(os.getpid(), signal.SIGKILL)
