"""Where hotfix_fsm keeps per-hotfix files on this machine (gate logs, JSON logs)."""

from __future__ import annotations

import os
from pathlib import Path


def state_root() -> Path:
    """``HOTFIX_FSM_STATE_DIR``, else ``$XDG_STATE_HOME/hotfix_fsm`` (``~/.local/state``)."""
    explicit = os.environ.get("HOTFIX_FSM_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hotfix_fsm"
