"""The global options (``--db``, ``--config``, ``-v``) and the engine they describe, for every
module of the command (the verbs in ``command`` and the groups registered beside it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from hotfix_fsm.engine import HotfixEngine


# --lease-ttl bounds: under 3 s the heartbeat (every third) races a busy store's own waits;
# over an hour a crashed driver keeps others out that long (`resume --take-over` aside).
LEASE_TTL_RANGE = (3.0, 3600.0)


@dataclass
class Globals:
    """The global options, handed to every command through the typer context."""

    db: str | None
    config: Path | None
    verbose: int
    lease_ttl: float = 30.0  # seconds (--lease-ttl)

    def engine(self) -> HotfixEngine:
        from hotfix_fsm.cli import startup
        from hotfix_fsm.engine import HotfixEngine

        try:
            return HotfixEngine(self.db, config_path=self.config, lease_ttl=self.lease_ttl)
        finally:
            startup.end()  # the command has loaded what it needs: the usual collector again


def globals_of(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    if not isinstance(obj, Globals):  # only when a command is invoked without the app
        obj = Globals(db=None, config=None, verbose=0)
    return obj


def engine_of(ctx: typer.Context) -> HotfixEngine:
    """The engine the global options describe (close it, or use it as a context manager)."""
    return globals_of(ctx).engine()
