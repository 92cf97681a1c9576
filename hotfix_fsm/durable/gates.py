"""The parallel region: tests, build and audit run concurrently inside ``gating``.

Each gate is its own step (``gate:<name>``) keyed by the fix sha, through the one step
protocol: an in-doubt gate is probed, a transient failure is retried by the gate's policy,
and a resume re-runs only the gates that have not passed for this exact commit. The runner
decides what the results mean for the hotfix.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from hotfix_fsm.durable.step import END_KINDS, Driver, StepResult, run_step
from hotfix_fsm.errors import LeaseLost
from hotfix_fsm.phases.base import Phase
from hotfix_fsm.phases.facts import GateRecord, facts_of
from hotfix_fsm.store import Entry, Hotfix, Store


def gate_key(gate: str, sha: str) -> str:
    return f"{gate}:{sha}"


def pending_gates(store: Store, hotfix: Hotfix, gates: tuple[str, ...]) -> list[str]:
    """The gates that have not passed for the fix sha."""
    sha = facts_of(hotfix).get("fix_sha", "")
    return [g for g in gates if not _passed(store, hotfix.id, g, sha)]


def run_gates(
    driver: Driver, phase_of: Callable[[str], Phase], *, parallel: bool
) -> dict[str, StepResult]:
    """Run the pending gates (concurrently when ``parallel``); their results by gate."""
    hotfix = driver.hotfix()
    sha = facts_of(hotfix).get("fix_sha", "")
    pending = pending_gates(driver.store, hotfix, driver.graph.gates)
    if not pending:
        return {}
    phases = {gate: phase_of(f"gate:{gate}") for gate in pending}

    def complete(latest: Hotfix, rows: list[Entry], _data: dict[str, Any]) -> None:
        driver.write(latest, rows)  # a gate's done row moves no state

    def one(gate: str) -> StepResult:
        return run_step(
            driver,
            phases[gate],
            f"gate:{gate}",
            key=gate_key(gate, sha),
            writes_context=False,
            complete=complete,
        )

    workers = len(pending) if parallel else 1
    results: dict[str, StepResult] = {}
    lost: LeaseLost | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gate") as pool:
        # Each gate thread runs in a copy of this context, so the fence travels with it.
        futures = {gate: pool.submit(contextvars.copy_context().run, one, gate) for gate in pending}
        for gate, future in futures.items():
            try:
                results[gate] = future.result()
            except LeaseLost as exc:
                lost = exc
    if lost is not None:
        raise lost
    return results


def gate_results(store: Store, hotfix_id: str, gates: tuple[str, ...]) -> dict[str, GateRecord]:
    """What each gate's latest ``done`` row recorded (for ``finish_gates``)."""
    results: dict[str, GateRecord] = {}
    for gate in gates:
        rows = store.journal(
            hotfix_id, phase=f"gate:{gate}", kinds=("done",), limit=1, newest_first=True
        )
        if rows:
            results[gate] = cast("GateRecord", rows[0].payload)
    return results


def _passed(store: Store, hotfix_id: str, gate: str, sha: str) -> bool:
    rows = store.journal(
        hotfix_id, phase=f"gate:{gate}", kinds=END_KINDS, limit=1, newest_first=True
    )
    return bool(rows) and rows[0].kind == "done" and rows[0].key == gate_key(gate, sha)


__all__ = ["Entry", "gate_key", "gate_results", "pending_gates", "run_gates"]
