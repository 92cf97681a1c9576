"""A driver process for process-level tests: phases whose effects land in files.

Usage: python -m tests.engine.filedriver DB WORLD_DIR (start ISSUE | drive ID [--take-over])
Exit codes follow the CLI: 0 done, 3 paused, 4 lease held, 1 otherwise. Each effect
appends one line to WORLD_DIR/effects.log (O_APPEND), so counts survive SIGKILL.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hotfix_fsm.core import machine
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import HotfixError
from hotfix_fsm.phases.approval import ApproveDeploy
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe


class FilePhase(BasePhase):
    def __init__(self, name: str, world: Path) -> None:
        self.name = name
        self.log = world / "effects.log"

    def _done(self, ctx: PhaseContext) -> bool:
        if not self.log.exists():
            return False
        return f"{ctx.hotfix.id} {self.name}" in self.log.read_text().splitlines()

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.done(self._facts()) if self._done(ctx) else Probe.not_done()

    def _facts(self) -> dict[str, Any]:
        return {"fix_sha": "f" * 40} if self.name == "commit_fix" else {}

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        slow = float(os.environ.get("FILEDRIVER_SLOW_PHASE_SECONDS", "0"))
        if slow and self.name == os.environ.get("FILEDRIVER_SLOW_PHASE"):
            ctx.wait(slow)  # lease-aware: a driver that lost its lease stops here
        hold = os.environ.get("FILEDRIVER_HOLD_UNTIL")
        if hold and self.name == os.environ.get("FILEDRIVER_SLOW_PHASE"):
            while not os.path.exists(hold):  # the test releases it when it has seen enough
                ctx.wait(0.05)
        if self.name == "deploy":
            ctx.save(rollback_target={"sha": "a" * 40, "tag": "v1.0.0"})
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{ctx.hotfix.id} {self.name}\n".encode())
        finally:
            os.close(fd)
        return self._facts()


class NoAlerts:
    def send(self, *_args: Any) -> None:
        return None


def engine_for(db: str, world: Path) -> HotfixEngine:
    phases: dict[str, Any] = {n: FilePhase(n, world) for n in machine.EFFECT_PHASES}
    phases["approve_deploy"] = ApproveDeploy()
    ttl = float(os.environ.get("FILEDRIVER_LEASE_TTL", "30"))
    return HotfixEngine(
        db,
        phases=phases,
        services={"alerts": lambda _s: NoAlerts()},
        preflight=lambda _s, _c, _i: {"base_sha": "b" * 40},
        lease_ttl=ttl,
    )


def main(argv: list[str]) -> int:
    db, world = argv[0], Path(argv[1])
    engine = engine_for(db, world)
    try:
        if argv[2] == "start":
            print(engine.start(argv[3], "file world", repo=world, yes=True).id, flush=True)
            return 0
        started = time.time()
        outcome = engine.drive(argv[3], take_over="--take-over" in argv)
        print(f"{outcome.state} {time.time() - started:.2f}", flush=True)
        return int(outcome.exit_code)
    except HotfixError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return int(exc.exit_code)
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
