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

from typing import TYPE_CHECKING

from hotfix_fsm.core.lazy import lazy_exports as _lazy_exports
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

if TYPE_CHECKING:
    from hotfix_fsm.config import Config, load_config
    from hotfix_fsm.core.machine import graph_hash, to_mermaid
    from hotfix_fsm.core.outcome import Event, Outcome
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.phases.base import BasePhase, Phase, PhaseContext, Probe
    from hotfix_fsm.recovery.adopt import adopt
    from hotfix_fsm.recovery.handoff import prepare_work_tree
    from hotfix_fsm.reporting.report import HotfixStatus
    from hotfix_fsm.store import Hotfix, JournalEntry, Store, open_store

# The engine, runner and store pull in SQLAlchemy and structlog, the configuration its TOML
# parser and dataclasses: load them on first use so `hotfix --version`, `hotfix status`
# and tooling that only needs the errors stay fast.
_LAZY = {
    "Config": "hotfix_fsm.config",
    "load_config": "hotfix_fsm.config",
    "graph_hash": "hotfix_fsm.core.machine",
    "to_mermaid": "hotfix_fsm.core.machine",
    "BasePhase": "hotfix_fsm.phases.base",
    "Phase": "hotfix_fsm.phases.base",
    "PhaseContext": "hotfix_fsm.phases.base",
    "Probe": "hotfix_fsm.phases.base",
    "adopt": "hotfix_fsm.recovery.adopt",
    "prepare_work_tree": "hotfix_fsm.recovery.handoff",
    "HotfixEngine": "hotfix_fsm.engine",
    "HotfixStatus": "hotfix_fsm.reporting.report",
    "Event": "hotfix_fsm.core.outcome",
    "Outcome": "hotfix_fsm.core.outcome",
    "Hotfix": "hotfix_fsm.store",
    "JournalEntry": "hotfix_fsm.store",
    "Store": "hotfix_fsm.store",
    "open_store": "hotfix_fsm.store",
}


__getattr__ = _lazy_exports(__name__, _LAZY)


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
    "HotfixStatus",
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
