"""The hotfix state graph, built with ``transitions``: states, phases, its hash, Mermaid export.

No I/O here. A *phase* is a trigger that moves the hotfix from one state to the next and,
except for the bookkeeping phases, performs one external side effect. The runner drives
the hotfix through this graph; side effects never live in ``transitions`` callbacks.

A ``Graph`` is immutable. ``DEFAULT`` is the standard one; the phase registry
(``phases.registry``) derives extended graphs from it with ``Graph.with_phase`` when a
plug-in adds a phase. Each graph builds its one ``transitions`` machine on first use and
answers every "may this trigger fire here?" from it (``next_state``). The module-level
names (``FORWARD``, ``next_state``, ``graph_hash`` …) are those of ``DEFAULT``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

Step = tuple[str, str, str]  # (phase, source, destination)


@dataclass(frozen=True)
class Edge:
    trigger: str
    source: str
    dest: str


class HotfixModel:
    """The object ``transitions`` moves between states; the runner owns persistence."""

    state: Any
    machine: Any
    trigger: Any  # added by transitions: fire a trigger by name
    failed_from: str | None = None


@dataclass(frozen=True, eq=False)
class Graph:
    """One version of the hotfix graph.

    Args:
        forward: the happy path, one ``(phase, source, destination)`` per working state.
        rollback: the rollback path.
        gates: the checks that run concurrently inside ``gating``.
        bookkeeping: phases with no external effect (the runner only records them).
        first_deployed: the first state in which production may run the fix.
        versions: hashes of earlier graphs that hotfixes may have started with, each with
            why it is safe to resume under this one (as Temporal's ``patched()`` marks a
            compatible change). Any other foreign hash is refused.
    """

    forward: tuple[Step, ...]
    rollback: tuple[Step, ...]
    gates: tuple[str, ...]
    bookkeeping: frozenset[str]
    first_deployed: str = "deploying"
    versions: Mapping[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- states --------------------------------------------------------------------------

    @cached_property
    def working_states(self) -> tuple[str, ...]:
        return tuple(src for _, src, _ in self.forward)

    @cached_property
    def rollback_states(self) -> tuple[str, ...]:
        return tuple(src for _, src, _ in self.rollback)

    @cached_property
    def all_states(self) -> tuple[str, ...]:
        return (
            *self.working_states,
            "done",
            "failed",
            "cancelled",
            *self.rollback_states,
            "rolled_back",
            "rollback_failed",
        )

    @cached_property
    def deployed_states(self) -> frozenset[str]:
        """States in which production may run the fix: rollback, not abort, from here on."""
        working = self.working_states
        start = working.index(self.first_deployed)
        return frozenset((*working[start:], "done"))

    @cached_property
    def phase_of_state(self) -> dict[str, str]:
        return {src: phase for phase, src, _ in (*self.forward, *self.rollback)}

    @cached_property
    def dest_of_phase(self) -> dict[str, str]:
        return {phase: dst for phase, _, dst in (*self.forward, *self.rollback)}

    @cached_property
    def effect_phases(self) -> frozenset[str]:
        """Every phase that needs an implementation (gates as ``gate:<name>``)."""
        steps = (*self.forward, *self.rollback)
        return frozenset(
            {p for p, _, _ in steps if p not in self.bookkeeping and p != "finish_gates"}
            | {f"gate:{g}" for g in self.gates}
        )

    @cached_property
    def approvable_states(self) -> tuple[str, ...]:
        """A person may approve in any unfinished state, and a rollback after ``done``."""
        return tuple(s for s in self.all_states if s not in ("cancelled", "rolled_back"))

    @cached_property
    def handoff_rewind_states(self) -> tuple[str, ...]:
        """States whose fix commit may exist only on the machine that made it."""
        return ("fix_committed", "gating", "gates_passed", "failed")

    # -- edges ---------------------------------------------------------------------------

    @cached_property
    def edges(self) -> tuple[Edge, ...]:
        working = self.working_states
        edges = [Edge(p, s, d) for p, s, d in (*self.forward, *self.rollback)]
        # Any working state can fail; ``retry`` returns to the state that failed.
        edges += [Edge("fail", s, "failed") for s in working]
        edges += [Edge("retry", "failed", s) for s in working]
        # Abort only before production may run the fix; after, rollback is the way back.
        edges += [
            Edge("cancel", s, "cancelled")
            for s in (*working, "failed")
            if s not in self.deployed_states
        ]
        rollback_sources = sorted(self.deployed_states | {"failed"})
        edges += [Edge("start_rollback", s, "rolling_back") for s in rollback_sources]
        edges += [Edge("rollback_fail", s, "rollback_failed") for s in self.rollback_states]
        edges += [Edge("retry_rollback", "rollback_failed", s) for s in self.rollback_states]
        # Records made beside the driver are edges too, so the hash describes all the system
        # does: an approval is an internal edge of every state a person may approve in; a
        # hand-off whose fix commit never left the first machine rewinds to ``branched``.
        edges += [Edge("approve", s, s) for s in self.approvable_states]
        edges += [Edge("handoff", s, "branched") for s in self.handoff_rewind_states]
        gates = self.gates
        edges += [Edge(f"pass_{g}", f"gating_{g}_running", f"gating_{g}_passed") for g in gates]
        edges += [Edge(f"rerun_{g}", f"gating_{g}_passed", f"gating_{g}_running") for g in gates]
        return tuple(edges)

    def definition(self) -> dict[str, Any]:
        """A canonical, JSON-serialisable description of the graph (what the hash covers)."""
        return {
            "states": list(self.all_states),
            "gates": list(self.gates),
            "edges": sorted([e.trigger, e.source, e.dest] for e in self.edges),
            "bookkeeping": sorted(self.bookkeeping),
        }

    @cached_property
    def hash(self) -> str:
        """Stable hash of the graph; stored with each hotfix when it starts."""
        import hashlib  # OpenSSL's: not for commands that only read the graph (`status`)

        blob = json.dumps(self.definition(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def is_known(self, stored_hash: str) -> bool:
        return stored_hash == self.hash or stored_hash in self.versions

    # -- the transitions machine ---------------------------------------------------------

    def _state_definitions(self) -> list[Any]:
        gating = {
            "name": "gating",
            "parallel": [
                {"name": g, "children": ["running", "passed"], "initial": "running"}
                for g in self.gates
            ],
        }
        return [gating if s == "gating" else s for s in self.all_states]

    def build_machine(self, initial: str, *, failed_from: str | None = None) -> HotfixModel:
        """A fresh model restored at ``initial``, for exploring the graph (tests, tooling).

        Restoring with ``initial`` never enters the state, so no callback fires.
        """
        from transitions.extensions import HierarchicalMachine

        if initial not in self.all_states:
            raise ValueError(f"unknown state {initial!r}")
        model = HotfixModel()
        model.failed_from = failed_from
        machine = HierarchicalMachine(
            model=model,
            states=self._state_definitions(),
            initial=initial,
            auto_transitions=False,
            send_event=False,
        )
        deployed = self.deployed_states
        for edge in self.edges:
            if edge.trigger in ("retry", "retry_rollback"):
                machine.add_transition(
                    edge.trigger,
                    edge.source,
                    edge.dest,
                    conditions=lambda d=edge.dest, m=machine: m.models[0].failed_from == d,
                )
            elif edge.trigger == "cancel" and edge.source == "failed":
                # A hotfix that failed after the deploy is rolled back, not aborted.
                machine.add_transition(
                    edge.trigger,
                    edge.source,
                    edge.dest,
                    unless=lambda m=machine: m.models[0].failed_from in deployed,
                )
            else:
                machine.add_transition(edge.trigger, edge.source, edge.dest)
        model.machine = machine
        return model

    @cached_property
    def _shared(self) -> HotfixModel:
        return self.build_machine("created")

    def next_state(
        self, source: str, trigger: str, *, failed_from: str | None = None
    ) -> str | None:
        """Where ``trigger`` leads from ``source``, asked of this graph's one ``transitions``
        machine (built on first use); None when the graph does not allow it."""
        from transitions.core import MachineError

        if source not in self.all_states:
            return None
        with self._lock:
            model = self._shared
            model.machine.set_state(self._substate(source), model)
            model.failed_from = failed_from
            try:
                fired = model.trigger(trigger)
            except (MachineError, AttributeError):
                return None
            if not fired:  # a retry whose condition (the state that failed) did not hold
                return None
            state = model.state
        return "gating" if isinstance(state, list) else str(state)

    def destination(
        self, source: str, trigger: str, *, failed_from: str | None = None
    ) -> str | None:
        """``next_state`` read from the edges alone, without building the ``transitions``
        machine (for commands that only say what may happen next, like ``status``). The
        journal writer and the runner ask ``next_state``; a test checks the two agree on
        every state, trigger and ``failed_from``."""
        if source not in self.all_states:
            return None
        sources = {source}
        if source == "gating":  # the parallel state is in all its gates' ``running`` children
            sources.update(f"gating_{g}_running" for g in self.gates)
        for edge in self._edges_by_trigger.get(trigger, ()):
            if edge.source not in sources:
                continue
            if edge.trigger in ("retry", "retry_rollback") and failed_from != edge.dest:
                continue
            # A hotfix that failed after the deploy is rolled back, not aborted.
            after_deploy = failed_from in self.deployed_states
            if (edge.trigger, edge.source) == ("cancel", "failed") and after_deploy:
                continue
            return edge.dest if edge.dest in self.all_states else "gating"
        return None

    @cached_property
    def _edges_by_trigger(self) -> dict[str, tuple[Edge, ...]]:
        grouped: dict[str, list[Edge]] = {}
        for edge in self.edges:
            grouped.setdefault(edge.trigger, []).append(edge)
        return {trigger: tuple(edges) for trigger, edges in grouped.items()}

    def _substate(self, state: str) -> Any:
        # A parallel state is entered through its children, as transitions restores it.
        return [f"gating_{g}_running" for g in self.gates] if state == "gating" else state

    def allowed(self, source: str, trigger: str) -> str | None:
        """The destination of ``trigger`` from ``source`` (top-level states), or None."""
        return self.next_state(source, trigger)

    # -- extension -----------------------------------------------------------------------

    def with_phase(self, name: str, *, after: str, reaches: str, optional: bool = True) -> Graph:
        """This graph with phase ``name`` run right after phase ``after``, reaching state
        ``reaches``; the phase that followed ``after`` now starts from ``reaches``.

        An ``optional`` phase does not strand hotfixes started without it: this graph's
        hash (and the versions it accepted) stay resumable under the new one.
        """
        if name in self.dest_of_phase or reaches in self.all_states:
            raise ValueError(f"phase {name!r} or state {reaches!r} is already in the graph")
        if after not in self.dest_of_phase or after in {p for p, _, _ in self.rollback}:
            raise ValueError(f"{after!r} is not a phase of the forward path")
        forward: list[Step] = []
        for phase, src, dst in self.forward:
            start = src
            if forward and forward[-1][0] == after:
                forward.append((name, src, reaches))
                start = reaches
            forward.append((phase, start, dst))
        if name not in {p for p, _, _ in forward}:
            raise ValueError(f"nothing follows {after!r}: a phase cannot be added after it")
        versions = dict(self.versions)
        if optional:
            versions[self.hash] = f"the graph before the optional phase {name} was added"
        return Graph(
            forward=tuple(forward),
            rollback=self.rollback,
            gates=self.gates,
            bookkeeping=self.bookkeeping,
            first_deployed=self.first_deployed,
            versions=versions,
        )

    # -- pictures ------------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The graph as a Mermaid ``stateDiagram-v2`` (for ``hotfix graph`` and the README)."""
        lines = ["stateDiagram-v2", "    direction TB"]
        lines.append("    [*] --> created")
        for phase, src, dst in self.forward:
            if src == "gating":
                continue
            lines.append(f"    {src} --> {dst}: {phase}")
        lines.append("    state gating {")
        for i, gate in enumerate(self.gates):
            if i:
                lines.append("        --")
            lines.append(f"        [*] --> {gate}_running")
            lines.append(f"        {gate}_running --> {gate}_passed: pass_{gate}")
            lines.append(f"        {gate}_passed --> [*]")
        lines.append("    }")
        lines.append("    gating --> gates_passed: finish_gates")
        lines.append("    WORKING --> failed: fail (any working phase)")
        lines.append("    failed --> WORKING: retry (the phase that failed)")
        lines.append("    BEFORE --> cancelled: cancel (abort, or approval refused)")
        lines.append(
            "    DEPLOYED --> rolling_back: start_rollback (verify/monitor failed, or manual)"
        )
        for phase, src, dst in self.rollback:
            lines.append(f"    {src} --> {dst}: {phase}")
        lines.append("    ROLLING --> rollback_failed: rollback_fail")
        lines.append("    rollback_failed --> ROLLING: retry_rollback")
        for final in sorted(TERMINAL):
            lines.append(f"    {final} --> [*]")
        lines.append(
            '    state "any working state" as WORKING\n'
            '    state "any state before the deploy" as BEFORE\n'
            f'    state "{self.first_deployed} … done (production may run the fix)" as DEPLOYED\n'
            '    state "any rollback state" as ROLLING'
        )
        return "\n".join(lines) + "\n"


TERMINAL: frozenset[str] = frozenset({"done", "cancelled", "rolled_back"})
STOPPED: frozenset[str] = frozenset({"failed", "rollback_failed"})

DEFAULT = Graph(
    forward=(
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
    ),
    rollback=(
        ("rollback_revert", "rolling_back", "rollback_reverted"),
        ("rollback_redeploy", "rollback_reverted", "rollback_deployed"),
        ("rollback_verify", "rollback_deployed", "rollback_verified"),
        ("finish_rollback", "rollback_verified", "rolled_back"),
    ),
    gates=("tests", "build", "audit"),
    bookkeeping=frozenset(
        {"request_fix", "start_gates", "request_deploy_approval", "finish", "finish_rollback"}
    ),
    # Graphs earlier releases started hotfixes with. Every path they still have to take is
    # a path of this graph (a test replays them); anything else is refused on resume.
    versions={
        "6fb5b55c9290d2cd": "0.1.0: abort was still allowed after the deploy (now refused), "
        "and approve and handoff were not yet edges",
    },
)

# The names of the default graph, as the rest of the package reads them.
FORWARD = DEFAULT.forward
ROLLBACK = DEFAULT.rollback
GATES = DEFAULT.gates
BOOKKEEPING_PHASES = DEFAULT.bookkeeping
WORKING_STATES = DEFAULT.working_states
ROLLBACK_STATES = DEFAULT.rollback_states
ALL_STATES = DEFAULT.all_states
DEPLOYED_STATES = DEFAULT.deployed_states
PHASE_OF_STATE = DEFAULT.phase_of_state
DEST_OF_PHASE = DEFAULT.dest_of_phase
EFFECT_PHASES = DEFAULT.effect_phases
EDGES = DEFAULT.edges
GRAPH_VERSIONS = DEFAULT.versions


def graph_hash() -> str:
    """The default graph's hash."""
    return DEFAULT.hash


def is_known_graph(stored_hash: str) -> bool:
    return DEFAULT.is_known(stored_hash)


def build_machine(initial: str, *, failed_from: str | None = None) -> HotfixModel:
    return DEFAULT.build_machine(initial, failed_from=failed_from)


def next_state(source: str, trigger: str, *, failed_from: str | None = None) -> str | None:
    return DEFAULT.next_state(source, trigger, failed_from=failed_from)


def destination(source: str, trigger: str, *, failed_from: str | None = None) -> str | None:
    return DEFAULT.destination(source, trigger, failed_from=failed_from)


def allowed(source: str, trigger: str) -> str | None:
    return DEFAULT.allowed(source, trigger)


def to_mermaid() -> str:
    return DEFAULT.to_mermaid()
