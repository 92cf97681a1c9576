"""The pure state graph: shape, hash, Mermaid, and the exported API."""

from __future__ import annotations

import types

import pytest
from transitions.core import MachineError

import hotfix_fsm
from hotfix_fsm.core import machine


def test_forward_path_reaches_done_through_every_phase() -> None:
    model = machine.build_machine("created")
    visited = [model.state]
    for phase, _src, _dst in machine.FORWARD:
        if phase == "finish_gates":
            for gate in machine.GATES:
                getattr(model, f"pass_{gate}")()
        getattr(model, phase)()
        visited.append("gating" if isinstance(model.state, list) else model.state)
    assert visited[-1] == "done"
    assert len(visited) == len(machine.FORWARD) + 1


def test_gates_are_parallel_substates() -> None:
    model = machine.build_machine("fix_committed")
    model.start_gates()
    assert sorted(model.state) == sorted(f"gating_{g}_running" for g in machine.GATES)
    model.pass_build()
    assert "gating_build_passed" in model.state


def test_illegal_transitions_are_refused() -> None:
    model = machine.build_machine("created")
    with pytest.raises(MachineError):
        model.deploy()
    with pytest.raises(ValueError, match="unknown state"):
        machine.build_machine("teleported")


def test_retry_returns_only_to_the_state_that_failed() -> None:
    model = machine.build_machine("failed", failed_from="pushed")
    assert model.retry()
    assert model.state == "pushed"


def test_every_state_is_reachable_and_every_non_terminal_can_move() -> None:
    sources = {e.source for e in machine.EDGES}
    dests = {e.dest for e in machine.EDGES} | {"created"}
    for state in machine.ALL_STATES:
        assert state in dests, state
        if state not in machine.TERMINAL:
            assert state in sources, state


def test_graph_hash_is_stable_and_known() -> None:
    assert machine.graph_hash() == machine.graph_hash()
    assert len(machine.graph_hash()) == 16
    assert machine.is_known_graph(machine.graph_hash())
    assert not machine.is_known_graph("0" * 16)


def test_mermaid_names_every_state() -> None:
    text = machine.to_mermaid()
    assert text.startswith("stateDiagram-v2")
    for state in machine.ALL_STATES:
        if state != "gating":
            assert state in text, state
    for gate in machine.GATES:
        assert f"{gate}_running" in text


def test_exported_names_are_sorted_and_complete() -> None:
    exported = hotfix_fsm.__all__
    assert exported == sorted(exported)
    public = {
        n
        for n in dir(hotfix_fsm)
        if not n.startswith("_") and not isinstance(getattr(hotfix_fsm, n), types.ModuleType)
    } - {"annotations", "TYPE_CHECKING", "Any"}
    assert public <= set(exported), public - set(exported)
    for name in exported:
        assert getattr(hotfix_fsm, name) is not None


@pytest.mark.parametrize(
    "graph",
    [
        machine.DEFAULT,
        machine.DEFAULT.with_phase("smoke_test", after="verify", reaches="smoke_tested"),
    ],
    ids=["default", "with a plug-in phase"],
)
def test_destination_from_the_edges_agrees_with_the_transitions_machine(
    graph: machine.Graph,
) -> None:
    """``status`` answers from the edges; the journal writer from the machine: the same."""
    triggers = sorted({e.trigger for e in graph.edges} | {"deploy_twice"})
    asked = 0
    for source in (*graph.all_states, "teleported"):
        for trigger in triggers:
            for failed_from in (None, *graph.all_states):
                expected = graph.next_state(source, trigger, failed_from=failed_from)
                got = graph.destination(source, trigger, failed_from=failed_from)
                assert got == expected, (source, trigger, failed_from)
                asked += expected is not None
    assert asked > len(graph.all_states) * 3  # many allowed moves were compared, not just None
