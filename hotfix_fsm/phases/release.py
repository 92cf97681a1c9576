"""After the deploy: verify, monitor, and the rollback phases (one import point).

The phases live by concern — ``verify`` (the health check after the deploy), ``monitor``
(the analysis over a measurement window), ``rollback`` (revert/reset and verify) and
``rollback_redeploy`` (the tracked rollback workflow run) — and are re-exported here, the
module ``default_phases`` imports them from.
"""

from __future__ import annotations

from hotfix_fsm.phases.monitor import Monitor
from hotfix_fsm.phases.rollback import RollbackRevert, RollbackVerify
from hotfix_fsm.phases.rollback_redeploy import RollbackRedeploy
from hotfix_fsm.phases.verify import Verify

__all__ = ["Monitor", "RollbackRedeploy", "RollbackRevert", "RollbackVerify", "Verify"]
