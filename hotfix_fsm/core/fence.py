"""The fence every external effect passes: "does this driver still hold the hotfix?".

The durable layer installs a check for the code it runs (``fenced_by``); adapters call
``confirm_before_effect()`` right before each attempt of an effect — every HTTP write and
each of its retries, every ``git push`` — so a driver frozen past its lease, or whose lease
was taken over, sends nothing. Outside a driver (tooling calling an adapter directly) no
check is installed and the call is free.

It lives in the core because adapters may not import the durable layer; it holds only a
context variable, no I/O of its own.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

_check: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "hotfix_fsm_fence", default=None
)


def confirm_before_effect() -> None:
    """Raise (``LeaseLost``, or ``TransientError`` when it cannot be told) unless this
    driver still holds its hotfix; a no-op outside a driver."""
    check = _check.get()
    if check is not None:
        check()


@contextlib.contextmanager
def fenced_by(check: Callable[[], None]) -> Iterator[None]:
    """Run the block with ``check`` as the fence of every effect it sends."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)
