"""The hotfix state graph, built with ``transitions``: states, phases, its hash, Mermaid export.

No I/O here. A *phase* is a trigger that moves the hotfix from one state to the next and,
except for the bookkeeping phases, performs one external side effect. The runner drives a
model through this machine, restoring it with ``initial=<stored state>`` so no callback
re-runs on resume; side effects never live in callbacks.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

# The forward path: (phase, source, destination). One phase per working state.
FORWARD: tuple[tuple[str, str, str], ...] = (
    ("branch", "created", "branched"),
    ("request_fix", "branched", "awaiting_fix"),
    ("commit_fix", "awaiting_fix", "fix_committed"),
    ("start_gates", "fix_committed", "gating"),
    ("finish_gates", "gating", "gates_passed"),
    ("push", "gates_passed", "pushed"),
    ("open_pr", "pushed", "pr_open"),
    ("wait_ci", "pr_open", "ci_passed"),
    ("request_deploy_approval", "ci_passed", "awaiting_deploy_approval"),
    ("approve_deploy", "awaiting_deploy_approval", "deploying"),
    ("deploy", "deploying", "deployed"),
    ("verify", "deployed", "verified"),
    ("monitor", "verified", "monitored"),
    ("merge", "monitored", "merged"),
    ("tag", "merged", "tagged"),
    ("backport", "tagged", "backported"),
    ("cleanup", "backported", "cleaned_up"),
    ("finish", "cleaned_up", "done"),
)

ROLLBACK: tuple[tuple[str, str, str], ...] = (
    ("rollback_revert", "rolling_back", "rollback_reverted"),
    ("rollback_redeploy", "rollback_reverted", "rollback_deployed"),
    ("rollback_verify", "rollback_deployed", "rollback_verified"),
    ("finish_rollback", "rollback_verified", "rolled_back"),
)

# The three gates run concurrently inside ``gating``; each is its own journaled phase.
GATES: tuple[str, ...] = ("tests", "build", "audit")

TERMINAL: frozenset[str] = frozenset({"done", "cancelled", "rolled_back"})
STOPPED: frozenset[str] = frozenset({"failed", "rollback_failed"})
# States from which production may run the fix: rollback makes sense from here on.
DEPLOYED_STATES: frozenset[str] = frozenset(
    {
        "deploying",
        "deployed",
        "verified",
        "monitored",
        "merged",
        "tagged",
        "backported",
        "cleaned_up",
        "done",
    }
)

WORKING_STATES: tuple[str, ...] = tuple(src for _, src, _ in FORWARD)
ROLLBACK_STATES: tuple[str, ...] = tuple(src for _, src, _ in ROLLBACK)
ALL_STATES: tuple[str, ...] = (
    *WORKING_STATES,
    "done",
    "failed",
    "cancelled",
    *ROLLBACK_STATES,
    "rolled_back",
    "rollback_failed",
)

PHASE_OF_STATE: dict[str, str] = {src: phase for phase, src, _ in (*FORWARD, *ROLLBACK)}
DEST_OF_PHASE: dict[str, str] = {phase: dst for phase, _, dst in (*FORWARD, *ROLLBACK)}
# Phases with no external side effect: the runner only records the transition.
BOOKKEEPING_PHASES: frozenset[str] = frozenset(
    {"request_fix", "start_gates", "request_deploy_approval", "finish", "finish_rollback"}
)

# Every phase that needs an implementation (gates are registered as ``gate:<name>``).
EFFECT_PHASES: frozenset[str] = frozenset(
    {p for p, _, _ in (*FORWARD, *ROLLBACK) if p not in BOOKKEEPING_PHASES and p != "finish_gates"}
    | {f"gate:{g}" for g in GATES}
)


# A person may approve (fix, deploy or rollback) in any unfinished state, and a rollback
# after ``done``; never in a state that ended otherwise.
APPROVABLE_STATES: tuple[str, ...] = tuple(
    s for s in ALL_STATES if s not in ("cancelled", "rolled_back")
)
# States whose fix commit may exist only on the machine that made it.
HANDOFF_REWIND_STATES: tuple[str, ...] = ("fix_committed", "gating", "gates_passed", "failed")


@dataclass(frozen=True)
class Edge:
    trigger: str
    source: str
    dest: str


def _edges() -> tuple[Edge, ...]:
    edges = [Edge(p, s, d) for p, s, d in (*FORWARD, *ROLLBACK)]
    # Any working state can fail; ``retry`` returns to the state that failed.
    edges += [Edge("fail", s, "failed") for s in WORKING_STATES]
    edges += [Edge("retry", "failed", s) for s in WORKING_STATES]
    edges += [Edge("cancel", s, "cancelled") for s in (*WORKING_STATES, "failed")]
    rollback_sources = sorted(DEPLOYED_STATES | {"failed"})
    edges += [Edge("start_rollback", s, "rolling_back") for s in rollback_sources]
    edges += [Edge("rollback_fail", s, "rollback_failed") for s in ROLLBACK_STATES]
    edges += [Edge("retry_rollback", "rollback_failed", s) for s in ROLLBACK_STATES]
    # Records made beside the driver are edges too, so the hash describes all the system does:
    # an approval is an internal edge of every state a person may approve in; a hand-off
    # whose fix commit never left the first machine rewinds to ``branched``.
    edges += [Edge("approve", s, s) for s in APPROVABLE_STATES]
    edges += [Edge("handoff", s, "branched") for s in HANDOFF_REWIND_STATES]
    edges += [Edge(f"pass_{g}", f"gating_{g}_running", f"gating_{g}_passed") for g in GATES]
    edges += [Edge(f"rerun_{g}", f"gating_{g}_passed", f"gating_{g}_running") for g in GATES]
    return tuple(edges)


EDGES: tuple[Edge, ...] = _edges()


def _state_definitions() -> list[Any]:
    gating = {
        "name": "gating",
        "parallel": [
            {"name": g, "children": ["running", "passed"], "initial": "running"} for g in GATES
        ],
    }
    return [gating if s == "gating" else s for s in ALL_STATES]


def graph_definition() -> dict[str, Any]:
    """A canonical, JSON-serialisable description of the graph (what the hash covers)."""
    return {
        "states": list(ALL_STATES),
        "gates": list(GATES),
        "edges": sorted([e.trigger, e.source, e.dest] for e in EDGES),
        "bookkeeping": sorted(BOOKKEEPING_PHASES),
    }


@cache
def graph_hash() -> str:
    """Stable hash of the graph; stored with each hotfix when it starts."""
    blob = json.dumps(graph_definition(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Graphs earlier releases started hotfixes with, and why each is safe to resume under this
# one (as Temporal's ``patched()`` marks a compatible change). Every path of a listed graph
# must still be a path of this one; a hash absent from this table and different from
# ``graph_hash()`` is refused on resume. A test replays each listed graph's edges here.
GRAPH_VERSIONS: dict[str, str] = {
    "6fb5b55c9290d2cd": "0.1.0: the same states and edges, before approve and handoff were "
    "edges (they only add internal and rewind edges)",
}


def is_known_graph(stored_hash: str) -> bool:
    return stored_hash == graph_hash() or stored_hash in GRAPH_VERSIONS


class HotfixModel:
    """The object ``transitions`` moves between states; the runner owns persistence."""

    state: Any
    machine: Any
    trigger: Any  # added by transitions: fire a trigger by name
    failed_from: str | None = None

    def failed_from_is(self, dest: str) -> bool:
        return self.failed_from == dest


def build_machine(initial: str, *, failed_from: str | None = None) -> HotfixModel:
    """A fresh model restored at ``initial``, for exploring the graph (tests, tooling).

    The journal writer validates through ``next_state``, which uses one machine built once.
    """
    from transitions.extensions import HierarchicalMachine

    if initial not in ALL_STATES:
        raise ValueError(f"unknown state {initial!r}")
    model = HotfixModel()
    model.failed_from = failed_from
    machine = HierarchicalMachine(
        model=model,
        states=_state_definitions(),
        initial=initial,
        auto_transitions=False,
        send_event=False,
    )
    _add_edges(machine)
    model.machine = machine
    return model


def _add_edges(machine: Any) -> None:
    for edge in EDGES:
        if edge.trigger in ("retry", "retry_rollback"):
            machine.add_transition(
                edge.trigger,
                edge.source,
                edge.dest,
                conditions=lambda d=edge.dest, m=machine: m.models[0].failed_from == d,
            )
        else:
            machine.add_transition(edge.trigger, edge.source, edge.dest)


_shared: HotfixModel | None = None
_shared_lock = threading.Lock()


def next_state(source: str, trigger: str, *, failed_from: str | None = None) -> str | None:
    """Where ``trigger`` leads from ``source``, asked of the one ``transitions`` machine of
    this process (built on first use); None when the graph does not allow it."""
    from transitions.core import MachineError

    global _shared
    if source not in ALL_STATES:
        return None
    with _shared_lock:
        if _shared is None:
            _shared = build_machine("created")
        model = _shared
        model.machine.set_state(_substate(source), model)
        model.failed_from = failed_from
        try:
            fired = model.trigger(trigger)
        except (MachineError, AttributeError):
            return None
        if not fired:  # a retry whose condition (the state that failed) did not hold
            return None
        state = model.state
    return "gating" if isinstance(state, list) else str(state)


def _substate(state: str) -> Any:
    # A parallel state is entered through its children, as transitions restores it.
    return [f"gating_{g}_running" for g in GATES] if state == "gating" else state


def allowed(source: str, trigger: str) -> str | None:
    """The destination of ``trigger`` from ``source`` (top-level states), or None."""
    return next_state(source, trigger)


def to_mermaid() -> str:
    """The graph as a Mermaid ``stateDiagram-v2`` (for ``hotfix graph`` and the README)."""
    lines = ["stateDiagram-v2", "    direction TB"]
    lines.append("    [*] --> created")
    for phase, src, dst in FORWARD:
        if src == "gating":
            continue
        arrow = "-->"
        lines.append(f"    {src} {arrow} {dst}: {phase}")
    lines.append("    state gating {")
    for i, gate in enumerate(GATES):
        if i:
            lines.append("        --")
        lines.append(f"        [*] --> {gate}_running")
        lines.append(f"        {gate}_running --> {gate}_passed: pass_{gate}")
        lines.append(f"        {gate}_passed --> [*]")
    lines.append("    }")
    lines.append("    gating --> gates_passed: finish_gates")
    lines.append("    WORKING --> failed: fail (any working phase)")
    lines.append("    failed --> WORKING: retry (the phase that failed)")
    lines.append("    WORKING --> cancelled: cancel / approval refused")
    lines.append("    DEPLOYED --> rolling_back: start_rollback (verify/monitor failed, or manual)")
    for phase, src, dst in ROLLBACK:
        lines.append(f"    {src} --> {dst}: {phase}")
    lines.append("    ROLLING --> rollback_failed: rollback_fail")
    lines.append("    rollback_failed --> ROLLING: retry_rollback")
    for final in sorted(TERMINAL):
        lines.append(f"    {final} --> [*]")
    lines.append(
        '    state "any working state" as WORKING\n'
        '    state "deploying … done (production runs the fix)" as DEPLOYED\n'
        '    state "any rollback state" as ROLLING'
    )
    return "\n".join(lines) + "\n"
