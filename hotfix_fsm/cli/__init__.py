"""The ``hotfix`` command: one module per group of verbs, rendering in ``render``.

``main`` is the console script's entry point; ``python -m hotfix_fsm.cli`` runs it too.
"""

from __future__ import annotations

from hotfix_fsm.cli.command import app, main

__all__ = ["app", "main"]
