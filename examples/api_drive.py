"""Drive a hotfix from internal tooling with the Python API: start, crash, resume, approve.

Runs against a rehearsal sandbox (built and served in a temporary directory), so it needs
nothing but this package::

    python examples/api_drive.py

What it shows:

1. ``engine.start`` records a hotfix (validated, preflight-checked) and ``engine.drive``
   advances it phase by phase.
2. The process "crashes" right after the push reached the remote (a failpoint hook raises,
   as a SIGKILL would stop it). Nothing is lost: a *new* engine — think of a restarted
   process on another machine sharing the store — resumes. The push was left in doubt
   (intent without done), so the runner probes the remote, sees the branch at the fix
   commit, adopts the push and never pushes twice.
3. The hotfix stops at the deploy approval gate (a durable state, not a prompt); tooling
   records who approved which commit with ``engine.approve`` and resumes to the end.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hotfix_fsm import HotfixEngine
from hotfix_fsm.durable import failpoints
from hotfix_fsm.sandbox import temporary_sandbox


class SimulatedCrash(BaseException):
    """Stands for a killed process: not an error any phase handles."""


def crash_after_push(phase: str, point: str) -> None:
    if (phase, point) == ("push", "after_effect"):
        raise SimulatedCrash


def main() -> int:
    with temporary_sandbox(prefix="hotfix-api-example-") as sandbox:
        info = sandbox.info
        db = Path(info.root) / "hotfix.db"

        # 1. Start and drive until the simulated crash.
        failpoints.set_hook(crash_after_push)
        try:
            with HotfixEngine(db, config_path=info.config) as engine:
                hotfix = engine.start(
                    "OPS-42", "Fix token expiry check", repo=info.work, cherry_pick=[info.fix_sha]
                )
                print(f"started {hotfix.id}")
                try:
                    engine.drive(hotfix.id)
                except SimulatedCrash:
                    print(f"crashed right after the push (state {engine.get(hotfix.id).state})")
        finally:
            failpoints.set_hook(None)

        # 2. A fresh engine over the same store resumes: the push is probed, not redone.
        with HotfixEngine(db, config_path=info.config) as engine:
            outcome = engine.resume(hotfix.id)
            print(f"resumed: {outcome.state}, paused at gate {outcome.paused_gate!r}")
            adopted = [
                e
                for e in engine.journal(hotfix.id)
                if e.kind == "done" and e.phase == "push" and e.payload.get("inferred")
            ]
            print(f"push adopted after a probe: {bool(adopted)}")

            # 3. A person (or a bot acting for one) approves the exact commit, then resume.
            approval = engine.approve(hotfix.id, "deploy", by="release-manager")
            print(f"approved {str(approval.payload['sha'])[:12]} by {approval.payload['by']}")
            outcome = engine.resume(hotfix.id)
            print(f"finished: {outcome.state} — {outcome.next_action}")

        pushes = [
            r
            for r in sandbox.effects()["refs"]
            if str(r.get("ref", "")).startswith("refs/heads/hotfix/")
            and r.get("old", "").strip("0") == ""
        ]
        print(f"hotfix branch created on the remote {len(pushes)} time(s)")
        ok = outcome.state == "done" and bool(adopted) and len(pushes) == 1
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
