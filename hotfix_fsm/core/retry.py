"""Retry policies and the one backoff rule, for the step protocol and the GitHub layer."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hotfix_fsm.errors import TransientError


def backoff(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The ceiling doubles from ``base`` up to ``cap``; the wait is drawn from the upper half of
    it, so concurrent drivers spread out without ever retrying at once.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures a step retries, how often, and how long it waits between attempts.

    A phase may declare one as its ``retry`` attribute (as Temporal's ``RetryPolicy`` or
    DBOS's step options do); otherwise the driver's default (``retry_limit``) applies.
    ``attempts`` counts attempts since the step's state was last entered, so a resumed
    hotfix gets a fresh budget.
    """

    attempts: int = 5
    base: float = 1.0
    cap: float = 60.0
    transient: tuple[type[Exception], ...] = (TransientError,)

    def delay(self, attempt: int, error: BaseException) -> float:
        """``retry_after`` when the failure named one, else the backoff for ``attempt``."""
        after = getattr(error, "retry_after", None)
        if isinstance(after, int | float):
            return float(after)
        return backoff(attempt, base=self.base, cap=self.cap)
