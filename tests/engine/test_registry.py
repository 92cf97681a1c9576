"""A phase added through the registry alone: its module (here, this test) plus one entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.config import Config
from hotfix_fsm.core import machine
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.errors import IllegalTransition, UnknownGraph
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.registry import PhaseSpec, PlanInputs, Registry
from hotfix_fsm.reporting.checklist import build_checklist
from hotfix_fsm.store import Entry

from .world import World, make_engine, start


class SmokeTest(BasePhase):
    """A plug-in phase: runs a smoke suite against production (counted in the world)."""

    name = "smoke_test"

    def __init__(self, world: World) -> None:
        self.world = world

    def probe(self, ctx: PhaseContext) -> Probe:
        ran = self.world.effects[self.world.key(ctx.hotfix.id, self.name)]
        return Probe.done({"passed": 3}) if ran else Probe.not_done()

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        self.world.effects[self.world.key(ctx.hotfix.id, self.name)] += 1
        return {"passed": 3, "failed": 0}


def with_smoke_test(world: World, *, optional: bool = True) -> Registry:
    return Registry.default().add(
        PhaseSpec(
            "smoke_test",
            make=lambda: SmokeTest(world),
            after="verify",
            reaches="smoke_tested",
            optional=optional,
            plan=lambda p: f"run the smoke suite against {p.config.verify.url or '(unset)'}",
            checklist="Smoke tests passing",
            evidence=lambda f: f"{f['passed']} smoke checks passed" if f.get("passed") else None,
        )
    )


def drive_to_end(engine: Any, hid: str) -> str:
    outcome = engine.drive(hid)
    if outcome.paused_gate == "deploy":
        engine.approve(hid, "deploy")
        outcome = engine.drive(hid)
    return str(outcome.state)


def test_an_added_phase_runs_in_its_place_and_shows_everywhere(
    store_url: str, tmp_path: Path
) -> None:
    world = World()
    registry = with_smoke_test(world)
    engine = make_engine(store_url, world, registry=registry)
    hid = start(engine, tmp_path, yes=True)
    assert engine.get(hid).graph_hash == registry.graph.hash != machine.graph_hash()
    assert drive_to_end(engine, hid) == "done"
    assert world.effects[f"{hid}:smoke_test"] == 1
    moves = [(e.phase, e.payload["to"]) for e in engine.journal(hid) if e.kind == "transition"]
    at = moves.index(("smoke_test", "smoke_tested"))
    assert moves[at - 1] == ("verify", "verified")
    assert moves[at + 1] == ("monitor", "monitored")
    # Production may run the fix in the new state: abort is refused there, rollback allowed.
    assert registry.graph.allowed("smoke_tested", "cancel") is None
    assert registry.graph.allowed("smoke_tested", "start_rollback") == "rolling_back"
    # Its checklist line is ticked from the evidence its done row carries.
    sections = build_checklist(engine.get(hid), engine.journal(hid))
    added = next(s for s in sections if s.title == "Added phases")
    (item,) = added.items
    assert item.text == "Smoke tests passing"
    assert item.ticked
    assert "3 smoke checks passed" in item.evidence
    # And its plan line sits between verify and monitor.
    config = Config()
    plan = registry.plan(PlanInputs(config=config, branch="hotfix/x", fix="f", approval="a"))
    names = [name for name, _ in plan]
    assert names[names.index("verify") + 1] == "smoke_test"
    assert "run the smoke suite" in dict(plan)["smoke_test"]
    engine.close()


def test_a_hotfix_started_before_an_optional_phase_resumes_under_it(
    store_url: str, tmp_path: Path
) -> None:
    world = World()
    before = make_engine(store_url, world)
    hid = start(before, tmp_path)
    assert before.drive(hid).paused_gate == "deploy"
    before.close()
    after = make_engine(store_url, world, registry=with_smoke_test(world))
    assert after.get(hid).graph_hash == machine.graph_hash()
    assert drive_to_end(after, hid) == "done"
    assert world.effects[f"{hid}:smoke_test"] == 1
    after.close()


def test_a_mandatory_phase_refuses_hotfixes_started_without_it(
    store_url: str, tmp_path: Path
) -> None:
    world = World()
    before = make_engine(store_url, world)
    hid = start(before, tmp_path)
    before.close()
    after = make_engine(store_url, world, registry=with_smoke_test(world, optional=False))
    with pytest.raises(UnknownGraph, match="does not know"):
        after.drive(hid)
    assert world.effects[f"{hid}:branch"] == 0
    after.close()


def test_the_writer_refuses_an_edge_of_another_graph(store_url: str, tmp_path: Path) -> None:
    world = World()
    engine = make_engine(store_url, world)
    hid = start(engine, tmp_path)
    hotfix = engine.get(hid)
    writer = JournalWriter(engine.store)  # the standard graph: smoke_test is no edge of it
    with pytest.raises(IllegalTransition, match="smoke_test is not allowed"):
        writer.write(hotfix, [Entry("transition", "smoke_test", 0, None, {})])
    assert engine.get(hid).last_seq == hotfix.last_seq  # nothing was written
    engine.close()


def test_a_phase_cannot_be_placed_where_the_graph_has_no_room() -> None:
    world = World()
    with pytest.raises(ValueError, match="needs `after` and `reaches`"):
        Registry.default().add(PhaseSpec("smoke_test", make=lambda: SmokeTest(world)))
    with pytest.raises(ValueError, match="already in the graph"):
        Registry.default().add(
            PhaseSpec("deploy", make=lambda: SmokeTest(world), after="verify", reaches="x")
        )
    with pytest.raises(ValueError, match="not a phase of the forward path"):
        Registry.default().add(
            PhaseSpec("smoke", make=lambda: SmokeTest(world), after="rollback_verify", reaches="y")
        )


def test_every_graph_version_still_resumes_on_this_graph() -> None:
    """Each accepted earlier graph is described, and its forward path is still this one's."""
    for stored, why in machine.GRAPH_VERSIONS.items():
        assert machine.is_known_graph(stored)
        assert why
    state = "created"
    for phase, source, dest in machine.FORWARD:
        assert state == source
        assert machine.next_state(source, phase) == dest
        state = dest


def test_adopt_reads_an_added_phase_from_its_declared_evidence() -> None:
    """``hotfix adopt`` decides how far a hotfix got from each phase's ``adopt`` declaration:
    an added phase whose evidence the world shows is adopted like a built-in one."""
    from types import SimpleNamespace

    from hotfix_fsm.recovery.adopt import decide

    world = World()
    registry = Registry.default().add(
        PhaseSpec(
            "smoke_test",
            make=lambda: SmokeTest(world),
            after="verify",
            reaches="smoke_tested",
            adopt=lambda ev, _c: bool(ev.smoke_report),
        )
    )
    run = {"status": "completed", "conclusion": "success"}
    evidence = SimpleNamespace(
        local_sha="a" * 40,
        remote_sha="a" * 40,
        fix_sha="a" * 40,
        pushed=True,
        pr={"state": "open"},
        ci={"verdict": "passed"},
        deploy_runs=[run],
        merge_sha=None,
        tag=None,
        backport_pr=None,
        smoke_report="3 passed",
    )
    state, steps = decide(evidence, Config(), registry)  # type: ignore[arg-type]
    assert state == "smoke_tested"
    assert [p for p, _, _ in steps][-2:] == ["verify", "smoke_test"]
    evidence.smoke_report = None
    state, _ = decide(evidence, Config(), registry)  # type: ignore[arg-type]
    assert state == "deployed"  # verify leaves no trace; the smoke test is not proven


def test_a_driver_imports_a_phase_module_when_a_phase_of_it_first_runs(tmp_path: Path) -> None:
    """The runner's table makes each standard phase on first use: building the runner (as a
    resume does) loads none of the phase modules; asking for a phase loads its module."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        import sys
        from hotfix_fsm.engine import HotfixEngine

        def loaded():
            return sorted(m for m in ("git_phases", "github_phases", "release", "approval")
                          if "hotfix_fsm.phases." + m in sys.modules)

        with HotfixEngine({str(tmp_path / "s.db")!r}) as engine:
            runner = engine.runner
            print(loaded())
            verify = runner.phase("verify")
            print(loaded(), type(verify).__name__, runner.phase("verify") is verify)
            print(type(runner.phase("gate:tests")).__name__, runner.phase("gate:tests").name)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [
        "[]",
        "['release'] Verify True",
        "Gate gate:tests",
    ]


def test_the_phase_table_makes_each_phase_once_and_refuses_unknown_names(tmp_path: Path) -> None:
    import threading

    from hotfix_fsm.errors import PermanentError

    made: list[str] = []

    class Counted(BasePhase):
        name = "smoke_test"

        def run(self, ctx: PhaseContext) -> dict[str, Any]:
            return {}

    def make() -> Counted:
        made.append("smoke_test")
        return Counted()

    registry = Registry.default().add(
        PhaseSpec("smoke_test", make=make, after="verify", reaches="smoke_tested")
    )
    given = Counted()
    table = registry.table({"deploy": given})
    assert table["deploy"] is given  # a given phase is used as it is
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        seen.append(table["smoke_test"])

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == ["smoke_test"]
    assert len({id(phase) for phase in seen}) == 1
    with pytest.raises(KeyError):
        table["no_such_phase"]
    with pytest.raises(KeyError):
        table["start_gates"]  # a step of the graph with no implementation
    world = World()
    engine = make_engine(tmp_path / "s.db", world)
    with pytest.raises(PermanentError, match="no implementation is registered"):
        engine.runner.phase("no_such_phase")
    engine.close()
