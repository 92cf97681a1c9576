"""Phase implementations, one module per group; ``registry`` declares and wires them.

Tooling replaces any phase (say, a different deployer) by passing
``HotfixEngine(phases={"deploy": MyDeployer()})``; see ``examples/custom_deployer.py``.
"""

from __future__ import annotations

from hotfix_fsm.phases.base import BasePhase, Phase, PhaseContext, Probe


def default_phases() -> dict[str, Phase]:
    """The standard implementation of every effectful phase, keyed by phase name."""
    from hotfix_fsm.phases.registry import Registry

    return Registry.default().implementations()


__all__ = ["BasePhase", "Phase", "PhaseContext", "Probe", "default_phases"]
