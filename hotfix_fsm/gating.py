"""The parallel region: tests, build and audit run concurrently inside ``gating``.

Each gate is its own journaled phase (``gate:<name>``) keyed by the fix sha, so a resume
re-runs only the gates that have not passed for this exact commit.
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import failpoints, machine
from .errors import HotfixError, LeaseLost, PermanentError
from .log import get_logger
from .runner import END_KINDS
from .store import Entry

if TYPE_CHECKING:
    from .config import Config
    from .phases.services import Services
    from .runner import Runner
    from .store import Hotfix, Lease

log = get_logger("hotfix_fsm.runner")


def run_gates(
    runner: Runner,
    lease: Lease,
    hotfix: Hotfix,
    config: Config,
    services: Services,
    stop: threading.Event,
) -> None:
    """Run the gates not yet passed for the fix sha, concurrently; then finish_gates."""
    sha = str(hotfix.context.get("fix_sha", ""))
    pending = [g for g in machine.GATES if not _gate_passed(runner, hotfix.id, g, sha)]
    workers = len(pending) if config.gates.parallel else 1
    errors: list[HotfixError] = []
    if pending:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gate") as pool:
            futures = {
                gate: pool.submit(
                    _run_gate, runner, lease, hotfix, gate, sha, config, services, stop
                )
                for gate in pending
            }
            for future in futures.values():
                err = future.result()
                if err is not None:
                    errors.append(err)
    if any(isinstance(e, LeaseLost) for e in errors):
        raise next(e for e in errors if isinstance(e, LeaseLost))
    hotfix = runner.store.get(hotfix.id)
    if errors:
        first = errors[0]
        summary = "; ".join(dict.fromkeys(e.message for e in errors))  # gates often agree
        runner._fail(lease, hotfix, "gates", PermanentError(summary, hint=first.hint), services)
        return
    results: dict[str, Any] = {}
    for gate in machine.GATES:
        rows = runner.store.journal(
            hotfix.id, phase=f"gate:{gate}", kinds=("done",), limit=1, newest_first=True
        )
        if rows:
            results[gate] = rows[0].payload
    runner._transition(
        lease,
        hotfix,
        "finish_gates",
        "gates_passed",
        context={**hotfix.context, "gates": results},
    )


def _gate_passed(runner: Runner, hotfix_id: str, gate: str, sha: str) -> bool:
    rows = runner.store.journal(
        hotfix_id, phase=f"gate:{gate}", kinds=END_KINDS, limit=1, newest_first=True
    )
    return bool(rows) and rows[0].kind == "done" and rows[0].key == f"{gate}:{sha}"


def _run_gate(
    runner: Runner,
    lease: Lease,
    hotfix: Hotfix,
    gate: str,
    sha: str,
    config: Config,
    services: Services,
    stop: threading.Event,
) -> HotfixError | None:
    name = f"gate:{gate}"
    key = f"{gate}:{sha}"
    try:
        phase = runner._phase(name, hotfix)
        attempt = len(runner.store.journal(hotfix.id, phase=name, kinds=("intent",))) + 1
        ctx = runner._context(lease, hotfix, name, attempt, config, services, stop)
        runner._checkpoint(lease, hotfix, [Entry("intent", name, attempt, key, {"sha": sha})])
        failpoints.reach(name, "before_effect")
        facts = phase.run(ctx)
        failpoints.reach(name, "after_effect")
        runner._checkpoint(lease, hotfix, [Entry("done", name, attempt, key, facts)])
        failpoints.reach(name, "after_done")
        return None
    except LeaseLost as exc:
        return exc
    except HotfixError as exc:
        try:
            runner._checkpoint(
                lease,
                hotfix,
                [
                    Entry(
                        "failed",
                        name,
                        0,
                        key,
                        {"error": exc.message, "hint": exc.hint, "code": exc.code},
                    )
                ],
            )
        except LeaseLost as lost:
            return lost
        return exc.located(hotfix_id=hotfix.id, phase=name)
    except Exception as exc:  # a gate plug-in bug fails the gate, not the process
        log.error("gate_crashed", hotfix=hotfix.id, gate=gate, traceback=traceback.format_exc())
        return PermanentError(
            f"gate {gate} crashed: {type(exc).__name__}: {exc}", hotfix_id=hotfix.id, phase=name
        )
