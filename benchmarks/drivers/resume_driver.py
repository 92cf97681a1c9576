"""Resume a hotfix whose next phase is a cheap custom phase that writes a marker file.

Usage: ``python resume_driver.py DB HOTFIX_ID MARKER``. The phase ``wait_ci`` is replaced by
one that writes ``time.time()`` into MARKER (the "first effect"); ``approve_deploy`` by one
that pauses at once, so the drive ends right after. Every other phase is the default one, so
the process imports what a real ``resume`` imports.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def main(argv: list[str]) -> int:
    db, hotfix_id, marker = argv
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.errors import NeedsHuman
    from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe

    class Touch(BasePhase):
        name = "wait_ci"

        def probe(self, ctx: PhaseContext) -> Probe:
            return Probe.not_done()

        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            now = time.time()
            with open(marker, "w", encoding="utf-8") as out:
                out.write(repr(now))
            return {"touched_at": now}

    class Stop(BasePhase):
        name = "approve_deploy"

        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            raise NeedsHuman("benchmark: stop here", gate="deploy")

    with HotfixEngine(db, phases={"wait_ci": Touch(), "approve_deploy": Stop()}) as engine:
        outcome = engine.resume(hotfix_id)
    return 0 if outcome.paused_gate == "deploy" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
