"""The cyclic garbage collector while the ``hotfix`` command starts.

Start-up imports SQLAlchemy and the store's and the report's modules: a few hundred thousand
objects that live as long as the process, and next to no garbage cycles. At the usual
thresholds (a young collection every 700 new objects, an older one every tenth of those)
the collector walks them again and again, and once more when the process exits: about a
tenth of ``hotfix status``. Until the command has opened its store, young collections wait
for ``START_UP_THRESHOLD`` new objects (they still happen, rarely); then what start-up made
is frozen (``gc.freeze``: left out of every later collection) and the usual thresholds are
back, for however long the command runs.
"""

from __future__ import annotations

import gc

START_UP_THRESHOLD = 100_000

_usual: list[tuple[int, int, int]] = []


def begin() -> None:
    """Raise the young collection threshold (once; ``end`` or ``abandon`` restores it)."""
    if not _usual:
        usual = gc.get_threshold()
        _usual.append(usual)
        gc.set_threshold(max(START_UP_THRESHOLD, usual[0]), *usual[1:])


def end() -> None:
    """Start-up is over: freeze what it made, and put back the usual thresholds."""
    if _usual:
        gc.freeze()
        gc.set_threshold(*_usual.pop())


def abandon() -> None:
    """Put back the usual thresholds without freezing (a command that opened no store)."""
    if _usual:
        gc.set_threshold(*_usual.pop())
