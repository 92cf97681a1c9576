"""Phase implementations, one module per group; ``default_phases`` wires the standard set.

Tooling replaces any phase (say, a different deployer) by passing
``HotfixEngine(phases={"deploy": MyDeployer()})``; see ``examples/custom_deployer.py``.
"""

from __future__ import annotations

from hotfix_fsm.phases.base import BasePhase, Phase, PhaseContext, Probe


def default_phases() -> dict[str, Phase]:
    """The standard implementation of every effectful phase, keyed by phase name."""
    from hotfix_fsm.phases.approval import ApproveDeploy
    from hotfix_fsm.phases.git_phases import Branch, CommitFix, Gate, Push
    from hotfix_fsm.phases.github_phases import (
        Backport,
        Cleanup,
        Deploy,
        Merge,
        OpenPullRequest,
        Tag,
        WaitForCI,
    )
    from hotfix_fsm.phases.release import (
        Monitor,
        RollbackRedeploy,
        RollbackRevert,
        RollbackVerify,
        Verify,
    )

    phases: list[Phase] = [
        Branch(),
        CommitFix(),
        Gate("tests"),
        Gate("build"),
        Gate("audit"),
        Push(),
        OpenPullRequest(),
        WaitForCI(),
        ApproveDeploy(),
        Deploy(),
        Verify(),
        Monitor(),
        Merge(),
        Tag(),
        Backport(),
        Cleanup(),
        RollbackRevert(),
        RollbackRedeploy(),
        RollbackVerify(),
    ]
    return {p.name: p for p in phases}


__all__ = ["BasePhase", "Phase", "PhaseContext", "Probe", "default_phases"]
