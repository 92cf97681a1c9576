"""Gates: real subprocesses that pass, fail, hang, flood, or do not exist."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.config import GateConfig
from hotfix_fsm.durable.runner import Outcome
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import PermanentError
from hotfix_fsm.phases.gate_defaults import GatePlan, detect, plan_gate
from tests.helpers_git import GitWorld, git

Engines = Callable[..., HotfixEngine]


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def run_to_gates(world: GitWorld, engine: HotfixEngine) -> tuple[str, Outcome]:
    hotfix = engine.start(
        "INC-1", "Fix token expiry check", repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    return hotfix.id, engine.drive(hotfix.id)


def gate_rows(engine: HotfixEngine, hotfix_id: str, gate: str, kind: str) -> list[Any]:
    return [r for r in engine.journal(hotfix_id) if r.phase == f"gate:{gate}" and r.kind == kind]


def test_all_gates_run_against_the_fix_sha_and_are_journaled(
    world: GitWorld, engines: Engines
) -> None:
    engine = engines()
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "pushed"
    sha = engine.get(hotfix_id).context["fix_sha"]
    for gate in ("tests", "build", "audit"):
        (done,) = gate_rows(engine, hotfix_id, gate, "done")
        facts = done.payload["facts"]  # a gate is a step: its done row carries its facts
        assert facts["gate"] == gate
        assert facts["sha"] == sha
        assert facts["exit_code"] == 0
        assert facts["duration_s"] >= 0
        assert facts["command"][0] == sys.executable
        log = Path(facts["log"])
        assert log.name == f"{gate}-1.log"
        assert log.parent.name == "gates"
        assert f"{gate} passed" in log.read_text()


def test_sequential_gates_all_run(world: GitWorld, engines: Engines) -> None:
    engine = engines(parallel=False)
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "pushed"
    for gate in ("tests", "build", "audit"):
        assert len(gate_rows(engine, hotfix_id, gate, "done")) == 1


def test_a_failed_gate_shows_its_tail_and_resume_reruns_only_it(
    world: GitWorld, engines: Engines
) -> None:
    failing = py("import sys\nfor i in range(30): print('line', i)\nsys.exit(4)")
    engine = engines(tests={"command": failing})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    error = outcome.error or ""
    assert "gate tests failed" in error
    assert "exited with 4" in error
    assert "line 29" in error
    assert "line 9\n" not in error  # only the tail: the last 20 lines
    (failed,) = gate_rows(engine, hotfix_id, "tests", "failed")
    assert "tests-1.log" in failed.payload["error"]
    assert "hotfix resume" in error
    # The environment is fixed (here: the configuration); resume re-runs only the failed gate.
    fixed = engines()
    assert fixed.drive(hotfix_id).state == "pushed"
    assert len(gate_rows(fixed, hotfix_id, "tests", "intent")) == 2
    assert len(gate_rows(fixed, hotfix_id, "build", "intent")) == 1
    assert len(gate_rows(fixed, hotfix_id, "audit", "intent")) == 1


def test_a_hanging_gate_times_out(world: GitWorld, engines: Engines, tmp_path: Path) -> None:
    engine = engines(
        build={
            "command": py("import time; print('building', flush=True); time.sleep(120)"),
            "timeout": 0.5,
        }
    )
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    error = outcome.error or ""
    assert "gate build timed out after 0.5s" in error
    assert "process group was killed" in error
    assert "building" in error
    assert "gates.build.timeout" in error
    assert len(gate_rows(engine, hotfix_id, "tests", "done")) == 1


def test_a_gate_printing_megabytes(world: GitWorld, engines: Engines) -> None:
    flood = py(
        "import sys\nfor i in range(50000): sys.stdout.write('x' * 100 + ' %d\\n' % i)\nsys.exit(1)"
    )
    engine = engines(audit={"command": flood})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    error = outcome.error or ""
    assert " 49999" in error
    assert len(error) < 20_000
    (failed,) = gate_rows(engine, hotfix_id, "audit", "failed")
    log = Path(failed.payload["error"].rsplit("full log: ", 1)[1].strip())
    assert log.stat().st_size > 5_000_000


def test_a_missing_executable_is_named(world: GitWorld, engines: Engines) -> None:
    engine = engines(tests={"command": ["no-such-test-runner-xyz", "--all"]})
    _, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    assert "cannot run 'no-such-test-runner-xyz'" in (outcome.error or "")
    assert "gates.tests.command" in (outcome.error or "")


def test_a_disabled_gate_is_skipped_and_the_journal_says_so(
    world: GitWorld, engines: Engines
) -> None:
    engine = engines(audit={"enabled": False, "command": ["no-such-tool"]})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "pushed"
    (done,) = gate_rows(engine, hotfix_id, "audit", "done")
    assert done.payload == {
        "facts": {"gate": "audit", "skipped": True, "reason": "disabled in configuration"}
    }
    (note,) = gate_rows(engine, hotfix_id, "audit", "note")
    assert note.payload["skipped"] is True


def test_no_command_and_nothing_detectable(world: GitWorld, engines: Engines) -> None:
    engine = engines(build={"command": []})
    _, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    assert "gate build has no command" in (outcome.error or "")
    assert "gates.build.command" in (outcome.error or "")
    assert "gates.build.enabled = false" in (outcome.error or "")


def test_build_artifact_must_exist_and_not_be_empty(world: GitWorld, engines: Engines) -> None:
    make_dist = py(
        "import pathlib; p = pathlib.Path('out'); p.mkdir(exist_ok=True); "
        "(p / 'app.js').write_text('ok')"
    )
    engine = engines(build={"command": make_dist, "artifact": "out"})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "pushed"
    (done,) = gate_rows(engine, hotfix_id, "build", "done")
    assert done.payload["facts"]["artifact"] == {"path": "out", "kind": "dir", "entries": 1}


@pytest.mark.parametrize(
    ("artifact", "command", "expected"),
    [
        ("dist", "print('built nothing')", "artifact dist does not exist"),
        ("empty", "import os; os.makedirs('empty', exist_ok=True)", "artifact empty is empty"),
        ("../outside", "pass", "is outside the work tree"),
        ("/etc", "pass", "is outside the work tree"),
    ],
)
def test_bad_artifacts_fail_the_build(
    world: GitWorld, engines: Engines, artifact: str, command: str, expected: str
) -> None:
    engine = engines(build={"command": py(command), "artifact": artifact})
    _, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    assert expected in (outcome.error or "")


def test_gates_refuse_to_test_anything_but_the_fix_commit(
    world: GitWorld, engines: Engines
) -> None:
    engine = engines(tests={"command": py("import sys; sys.exit(1)")})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "failed"
    git(world.work, "switch", "--quiet", "main")
    moved = engines().drive(hotfix_id)
    assert moved.state == "failed"
    assert "not the fix commit" in (moved.error or "")
    branch = engine.get(hotfix_id).context["branch"]
    git(world.work, "switch", "--quiet", branch)
    world.write("app.py", "an edit after the fix commit\n")
    edited = engines().drive(hotfix_id)
    assert "tracked files changed since the fix commit (app.py)" in (edited.error or "")
    git(world.work, "checkout", "--", "app.py")
    assert engines().drive(hotfix_id).state == "pushed"


def test_gate_commands_are_argv_and_see_the_fix_sha(
    world: GitWorld, engines: Engines, tmp_path: Path
) -> None:
    out = tmp_path / "argv.json"
    marker = tmp_path / "pwned"
    code = (
        "import json, os, sys; json.dump({'argv': sys.argv[2:], 'sha': os.environ"
        "['HOTFIX_SHA'], 'cwd': os.getcwd()}, open(sys.argv[1], 'w'))"
    )
    hostile = [f"x; touch {marker}", "$(touch {marker})", "`id`", "a|b"]
    engine = engines(tests={"command": py(code, str(out), *hostile)})
    hotfix_id, outcome = run_to_gates(world, engine)
    assert outcome.state == "pushed"
    seen = json.loads(out.read_text())
    assert seen["argv"] == hostile
    assert seen["sha"] == engine.get(hotfix_id).context["fix_sha"]
    assert Path(seen["cwd"]) == world.work.resolve()
    assert not marker.exists()


# -- default detection -----------------------------------------------------------------------


def detected(gate: str, tree: Path) -> GatePlan:
    plan = detect(gate, tree)
    assert plan is not None
    return plan


def test_npm_defaults(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(
        json.dumps({"scripts": {"test:critical": "jest critical", "test": "jest", "build": "tsc"}})
    )
    assert detected("tests", tmp_path).command == ("npm", "run", "test:critical")
    build = detect("build", tmp_path)
    assert build is not None
    assert build.command == ("npm", "run", "build")
    assert build.artifact == "dist"
    assert detected("audit", tmp_path).command == ("npm", "audit", "--audit-level=high")


def test_npm_without_scripts_needs_configuration(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert detected("tests", tmp_path).command == ("npm", "test")
    assert detect("build", tmp_path) is None
    with pytest.raises(PermanentError, match="gate build has no command") as err:
        plan_gate("build", GateConfig(), tmp_path)
    assert "gates.build.command" in (err.value.hint or "")


def test_broken_package_json(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text("{not json")
    with pytest.raises(PermanentError, match=r"package\.json"):
        detect("tests", tmp_path)


def test_python_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    tests = detect("tests", tmp_path)
    assert tests is not None
    assert tests.command[1:] == ("-m", "pytest", "-q")
    assert detected("build", tmp_path).artifact == "dist"
    assert detected("audit", tmp_path).command == ("pip-audit",)


def test_configuration_overrides_detection(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"build": "tsc"}}))
    plan = plan_gate("build", GateConfig(command=["make", "dist"], artifact="out"), tmp_path)
    assert plan.command == ("make", "dist")
    assert plan.artifact == "out"
    assert plan.source == "configuration"
    chosen = plan_gate("build", GateConfig(artifact="public"), tmp_path)
    assert chosen.command == ("npm", "run", "build")
    assert chosen.artifact == "public"
