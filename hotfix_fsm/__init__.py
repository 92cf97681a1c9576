"""hotfix_fsm: drive an emergency production hotfix as a persisted, resumable state machine.

The public API for internal tooling::

    from hotfix_fsm import HotfixEngine

    with HotfixEngine() as engine:                     # SQLite in the XDG state dir
        hotfix = engine.start("INC-42", "Fix token expiry", repo=".", cherry_pick=["abc123"])
        outcome = engine.drive(hotfix.id)              # returns at a human gate, done or failed
        engine.approve(hotfix.id, "deploy")
        outcome = engine.resume(hotfix.id)

Heavy adapters (git, GitHub, HTTP) load only when a phase needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hotfix_fsm.config import Config, load_config
from hotfix_fsm.core.machine import graph_hash, to_mermaid
from hotfix_fsm.errors import (
    ConfigError,
    ExitCode,
    HotfixError,
    IllegalTransition,
    InvalidInput,
    LeaseHeld,
    LeaseLost,
    NeedsHuman,
    NotFound,
    PermanentError,
    PhaseError,
    RollbackRequired,
    SchemaTooNew,
    StoreError,
    TransientError,
    UnknownGraph,
    UsageError,
)
from hotfix_fsm.phases.base import BasePhase, Phase, PhaseContext, Probe

if TYPE_CHECKING:
    from hotfix_fsm.core.outcome import Event, Outcome
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.recovery.adopt import adopt
    from hotfix_fsm.recovery.handoff import prepare_work_tree
    from hotfix_fsm.store import Hotfix, JournalEntry, Store, open_store

# The engine, runner and store pull in SQLAlchemy and structlog: load them on first use so
# `hotfix --version` and tooling that only needs the errors stay fast.
_LAZY = {
    "adopt": ".recovery.adopt",
    "prepare_work_tree": ".recovery.handoff",
    "HotfixEngine": ".engine",
    "Event": ".core.outcome",
    "Outcome": ".core.outcome",
    "Hotfix": ".store",
    "JournalEntry": ".store",
    "Store": ".store",
    "open_store": ".store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "BasePhase",
    "Config",
    "ConfigError",
    "Event",
    "ExitCode",
    "Hotfix",
    "HotfixEngine",
    "HotfixError",
    "IllegalTransition",
    "InvalidInput",
    "JournalEntry",
    "LeaseHeld",
    "LeaseLost",
    "NeedsHuman",
    "NotFound",
    "Outcome",
    "PermanentError",
    "Phase",
    "PhaseContext",
    "PhaseError",
    "Probe",
    "RollbackRequired",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "TransientError",
    "UnknownGraph",
    "UsageError",
    "__version__",
    "adopt",
    "graph_hash",
    "load_config",
    "open_store",
    "prepare_work_tree",
    "to_mermaid",
]
