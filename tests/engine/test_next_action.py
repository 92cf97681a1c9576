"""``next_action`` names only commands the state graph allows, and they work when run.

The property part parses every ``hotfix <verb> …`` a suggestion names and asks the graph
(``machine.next_state``) whether that verb is possible in the state; the engine part drives
real hotfixes (the in-memory world, SQLite or PostgreSQL) into a situation, then runs every
command the suggestion names — each on its own hotfix in the same situation — and the
suggestion's first line of action in order, and checks that the engine accepts them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotfix_fsm.config import Config, load_config
from hotfix_fsm.core import machine
from hotfix_fsm.core.outcome import Outcome, next_action, next_action_for
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import IllegalTransition
from hotfix_fsm.log import reset_logging
from hotfix_fsm.reporting.report import status_document

from .world import World, make_engine

GATES = (None, "fix", "deploy", "rollback")
COMMAND = re.compile(r"`hotfix ([a-z-]+)((?: [^`]*)?)`")
VERBS = {"resume", "abort", "rollback", "approve", "report"}
HID = "INC-7-20250101-000000"


def commands(text: str) -> list[list[str]]:
    """Every ``hotfix`` command line a suggestion names, as argv after ``hotfix``."""
    return [[verb, *args.split()] for verb, args in COMMAND.findall(text)]


def check_suggestion(
    state: str,
    gate: str | None,
    reason: str | None,
    failed_from: str | None,
    target: bool | None,
) -> list[list[str]]:
    """Assert every verb ``next_action`` names is one the graph allows; return the commands."""
    text = next_action(HID, state, gate, reason, failed_from=failed_from, rollback_target=target)
    named = commands(text)
    where = f"{state} gate={gate} reason={reason!r} failed_from={failed_from}: {text}"
    stands_for = failed_from if state in machine.STOPPED and failed_from else None
    for verb, *args in named:
        assert verb in VERBS, where
        assert args[:1] == [HID], where
        if verb == "resume":
            assert state not in machine.TERMINAL, where
        elif verb == "abort":
            assert machine.next_state(state, "cancel", failed_from=failed_from), where
            if stands_for:  # a stopped hotfix is never aborted where its state refuses it
                assert machine.next_state(stands_for, "cancel"), where
        elif verb == "rollback":
            assert machine.next_state(state, "start_rollback", failed_from=failed_from), where
            assert target is not False, where  # `hotfix rollback` needs a recorded target
            if stands_for:
                assert machine.next_state(stands_for, "start_rollback"), where
        elif verb == "approve":
            assert machine.next_state(state, "approve"), where
            assert gate is not None, where
            assert args[1:] == [gate], where
    verbs = [c[0] for c in named]
    # The suggestion is never empty where something can be done: a hotfix that can move
    # is told how, and one waiting at an approvable gate is told to approve that gate.
    if state not in machine.TERMINAL:
        assert "resume" in verbs, where
        # A stopped hotfix stands for the state it failed in, for approve as for abort and
        # rollback: approval is asked for only where that state takes it too.
        approvable = machine.next_state(state, "approve", failed_from=failed_from) and (
            stands_for is None or machine.next_state(stands_for, "approve")
        )
        if gate in ("deploy", "rollback") and approvable:
            assert ["approve", HID, gate] in named, where
    return named


@given(
    state=st.sampled_from(machine.ALL_STATES),
    gate=st.sampled_from(GATES),
    reason=st.sampled_from([None, "waiting for a person"]),
    failed_from=st.sampled_from([None, *machine.ALL_STATES]),
    target=st.sampled_from([None, True, False]),
)
def test_next_action_names_only_commands_the_graph_allows(
    state: str, gate: str | None, reason: str | None, failed_from: str | None, target: bool | None
) -> None:
    check_suggestion(state, gate, reason, failed_from, target)


def test_next_action_is_graph_derived_in_every_state() -> None:
    """Exhaustively: every state, paused gate and reason; stopped states by where they failed
    and the gate they wait at."""
    for state in machine.ALL_STATES:
        for gate in GATES:
            for reason in (None, "waiting for a person"):
                for target in (None, True, False):
                    check_suggestion(state, gate, reason, None, target)
    for state in machine.STOPPED:
        for failed_from in machine.ALL_STATES:
            for gate in GATES:
                for target in (None, True, False):
                    check_suggestion(state, gate, None, failed_from, target)


def test_known_refusals_are_never_suggested() -> None:
    # rollback_failed: abort is refused, resume retries the rollback.
    assert commands(next_action(HID, "rollback_failed", None, None)) == [["resume", HID]]
    # ... and the text says what really helps: find out why, get production safe by hand
    # if it cannot wait, then retry the rollback; never abort (refused from the deploy on).
    for failed_from in (None, *machine.ROLLBACK_STATES):
        text = next_action(HID, "rollback_failed", None, None, failed_from=failed_from)
        assert "investigate why the rollback failed" in text, text
        assert "by hand" in text, text
        assert "retries the rollback" in text, text
        assert "abort" not in text, text
    # A deployed hotfix that stopped is rolled back when the graph lets it; a hotfix that
    # failed before production is not offered a rollback it could not run.
    failed_late = commands(
        next_action(HID, "failed", None, None, failed_from="verified", rollback_target=True)
    )
    assert ["rollback", HID] in failed_late
    early = next_action(HID, "failed", None, None, failed_from="pushed", rollback_target=False)
    assert "rollback" not in [c[0] for c in commands(early)]
    assert commands(next_action(HID, "cancelled", None, None)) == []


# -- through the real engine -------------------------------------------------------------------


Situation = Callable[[HotfixEngine, World, str], None]


def _to_rollback_failed(engine: HotfixEngine, world: World, hid: str) -> None:
    world.unhealthy = True
    world.fail_next["rollback_redeploy"] = "permanent"
    assert engine.drive(hid).state == "rollback_failed"


def _to_done(engine: HotfixEngine, world: World, hid: str) -> None:
    assert engine.drive(hid).state == "done"


def _to_cancelled(engine: HotfixEngine, world: World, hid: str) -> None:
    engine.drive(hid)
    assert engine.abort(hid).state == "cancelled"


def _to_deploy_gate(engine: HotfixEngine, world: World, hid: str) -> None:
    assert engine.drive(hid).paused_gate == "deploy"


def _to_failed_deploy(engine: HotfixEngine, world: World, hid: str) -> None:
    world.fail_next["deploy"] = "permanent"  # fails before a rollback target is recorded
    outcome = engine.drive(hid)
    assert (outcome.state, engine.get(hid).failed_from) == ("failed", "deploying")


def _to_rollback_gate(engine: HotfixEngine, world: World, hid: str) -> None:
    world.unhealthy = True  # verify asks for a rollback; the policy is "ask"
    outcome = engine.drive(hid)
    assert (outcome.state, outcome.paused_gate) == ("deployed", "rollback")


SITUATIONS: dict[str, tuple[Situation, bool]] = {
    # name: (how to get there, started with --yes)
    "rollback_failed": (_to_rollback_failed, True),
    "done": (_to_done, True),
    "cancelled": (_to_cancelled, False),
    "deploy_gate": (_to_deploy_gate, False),
    "failed_deploy": (_to_failed_deploy, True),
    "rollback_gate": (_to_rollback_gate, True),
}


def _ask_config(repo: Path) -> Config:
    config = load_config(repo)
    config.rollback.policy = "ask"
    return config


def _engine_for(situation: str, store_url: str, tmp_path: Path) -> tuple[HotfixEngine, World]:
    """An engine over a fresh in-memory world, configured as ``situation`` needs."""
    world = World()
    extra: dict[str, Any] = {}
    if situation == "rollback_gate":
        extra["config"] = _ask_config(tmp_path)
    return make_engine(store_url, world, **extra), world


def _run(engine: HotfixEngine, world: World, store_url: str, argv: list[str]) -> str:
    """Run one suggested command; return the state it leaves the hotfix in."""
    verb, hid, *rest = argv
    if verb == "resume":
        world.fail_next.clear()  # the person fixed the cause, as the suggestion says
        return engine.drive(hid).state
    if verb == "abort":
        return engine.abort(hid).state
    if verb == "rollback":
        return engine.rollback(hid).state
    if verb == "approve":
        (gate,) = rest
        entry = engine.approve(hid, gate)
        assert entry.payload["gate"] == gate
        return engine.get(hid).state
    if verb == "report":  # the real command, over the same store
        from hotfix_fsm.cli.command import main

        try:
            with pytest.raises(SystemExit) as exited:
                main(["--db", store_url, "report", hid])
        finally:
            reset_logging()
        assert exited.value.code == 0
        return engine.get(hid).state
    raise AssertionError(f"unknown command {argv}")


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
def test_suggested_commands_are_accepted_by_the_engine(
    store_url: str, tmp_path: Path, situation: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reach, yes = SITUATIONS[situation]
    engine, world = _engine_for(situation, store_url, tmp_path)
    issues = iter(f"INC-{n}" for n in range(100, 200))

    def fresh() -> str:
        hid = engine.start(next(issues), "Fix the thing", repo=tmp_path, yes=yes).id
        reach(engine, world, hid)
        return hid

    hid = fresh()
    hotfix = engine.get(hid)
    suggestion = next_action_for(hotfix)
    assert status_document(hotfix, engine.journal(hid))["next_action"] == suggestion
    outcome = Outcome(
        hid,
        hotfix.state,
        hotfix.paused_reason,
        hotfix.paused_gate,
        failed_from=hotfix.failed_from,
        rollback_target="rollback_target" in hotfix.context,
    )
    assert outcome.next_action == suggestion
    named = check_suggestion(  # the verbs it names are possible here
        hotfix.state,
        hotfix.paused_gate,
        hotfix.paused_reason,
        hotfix.failed_from,
        "rollback_target" in hotfix.context,
    )

    # Each command named, run alone on a hotfix in the same situation, is accepted.
    for argv in named:
        other = fresh() if argv[0] != "report" else hid
        left = _run(engine, world, store_url, [argv[0], other, *argv[2:]])
        if argv[0] == "abort":
            assert left == "cancelled"
        if argv[0] == "rollback":
            assert left == "rolled_back"
    # The first line of action, run in order, moves the hotfix on to an end.
    first = commands(suggestion.split(" (or ")[0].split("; if ")[0])
    if first and first[0][0] != "report":
        other = fresh()
        for argv in first:
            left = _run(engine, world, store_url, [argv[0], other, *argv[2:]])
        assert left in machine.TERMINAL, (situation, suggestion, left)
    capsys.readouterr()

    # Where the graph has no cancel edge (production may run the fix), abort is not named.
    abort_failed_deploy = machine.next_state("deploying", "cancel") is not None
    abort_deployed = machine.next_state("deployed", "cancel") is not None
    expected = {
        "rollback_failed": {"resume"},
        "done": {"report", "rollback"},
        "cancelled": set(),
        "deploy_gate": {"approve", "resume", "abort"},
        "failed_deploy": {"resume"} | ({"abort"} if abort_failed_deploy else set()),
        "rollback_gate": {"approve", "resume"} | ({"abort"} if abort_deployed else set()),
    }[situation]
    assert {c[0] for c in named} == expected, suggestion
    engine.close()


def test_refusals_name_what_the_state_allows(store_url: str, tmp_path: Path) -> None:
    """The hints of a refused abort or rollback suggest only what the graph allows."""
    world = World()
    engine = make_engine(store_url, world)
    hid = engine.start("INC-1", "Fix the thing", repo=tmp_path, yes=True).id
    _to_rollback_failed(engine, world, hid)
    with pytest.raises(IllegalTransition, match="cannot be aborted") as refused:
        engine.abort(hid)
    hint = refused.value.hint or ""
    assert [c[0] for c in commands(hint)] == ["resume"], hint
    with pytest.raises(IllegalTransition, match="cannot be rolled back") as no_rollback:
        engine.rollback(hid)
    assert [c[0] for c in commands(no_rollback.value.hint or "")] == ["resume"]

    done = engine.start("INC-2", "Fix the thing", repo=tmp_path, yes=True).id
    world.unhealthy = False
    _to_done(engine, world, done)
    if machine.next_state("done", "cancel") is None:
        with pytest.raises(IllegalTransition) as after_deploy:
            engine.abort(done)
        assert commands(after_deploy.value.hint or "") == [["rollback", done]]

    cancelled = engine.start("INC-3", "Fix the thing", repo=tmp_path).id
    engine.abort(cancelled)
    with pytest.raises(IllegalTransition) as gone:
        engine.rollback(cancelled)
    assert commands(gone.value.hint or "") == []
    engine.close()


def test_a_hotfix_a_live_driver_moves_gets_a_watch_not_a_resume(
    store_url: str, tmp_path: Path
) -> None:
    """While another process holds a live lease on a hotfix that is not paused, the next
    action is to watch it (a resume would be refused); once the lease has expired, resume."""
    import dataclasses
    import time

    from hotfix_fsm.reporting.report import next_command

    world = World()
    engine = make_engine(store_url, world)
    hid = engine.start("INC-3", "Fix the thing", repo=tmp_path, yes=True).id
    stored = engine.get(hid)
    assert stored.paused_reason is None
    assert stored.state not in machine.TERMINAL
    driven = dataclasses.replace(
        stored, lease_owner="laptop:4242:ab12", lease_expires_at=time.time() + 60
    )
    action = next_action_for(driven)
    assert action.startswith("nothing to run: laptop:4242:ab12 is driving it now"), action
    assert f"`hotfix status {hid} --watch`" in action
    assert next_command(driven) == ("hotfix", "status", hid, "--watch")

    expired = dataclasses.replace(driven, lease_expires_at=time.time() - 1)
    assert "is driving it now" not in next_action_for(expired)
    assert next_command(expired) == next_command(stored)
    assert next_command(stored) is not None
    assert next_command(stored)[1] != "status"
    engine.close()


def test_a_hotfix_whose_local_driver_was_killed_gets_a_resume_not_a_watch(
    store_url: str, tmp_path: Path
) -> None:
    """A live lease whose holder ran on this machine and has ended (SIGKILL, a closed
    terminal) is not a driver to watch: status says so, and the next action is resume."""
    import dataclasses
    import socket
    import subprocess
    import sys
    import time

    from hotfix_fsm.reporting.report import next_command

    world = World()
    engine = make_engine(store_url, world)
    hid = engine.start("INC-3", "Fix the thing", repo=tmp_path, yes=True).id
    stored = engine.get(hid)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid names no process now
    host = socket.gethostname()
    killed = dataclasses.replace(
        stored, lease_owner=f"{host}:{ended.pid}:ab12", lease_expires_at=time.time() + 60
    )
    assert killed.lease_live()
    assert killed.lease_holder_gone()
    assert "driving it now" not in next_action_for(killed)
    assert next_command(killed) == next_command(stored)
    doc = status_document(killed, engine.journal(hid))
    assert doc["lease"]["live"] is True
    assert doc["lease"]["holder_gone"] is True
    # A holder alive on this machine (this process), or on another machine, is still watched.
    for owner in (f"{host}:{os.getpid()}:ab12", f"elsewhere-{host}:{ended.pid}:ab12"):
        alive = dataclasses.replace(killed, lease_owner=owner)
        assert not alive.lease_holder_gone(), owner
        assert "is driving it now" in next_action_for(alive), owner
        assert status_document(alive, engine.journal(hid))["lease"]["holder_gone"] is False
    engine.close()


def test_a_deploy_approval_after_the_deploy_is_refused_and_records_nothing(
    store_url: str, tmp_path: Path
) -> None:
    reach, yes = SITUATIONS["rollback_gate"]
    engine, world = _engine_for("rollback_gate", store_url, tmp_path)
    with engine:
        hid = engine.start("INC-300", "Fix the thing", repo=tmp_path, yes=yes).id
        reach(engine, world, hid)
        before = engine.journal(hid)
        with pytest.raises(IllegalTransition) as refused:
            engine.approve(hid, "deploy")
        assert "its deploy was dispatched already" in refused.value.message
        assert f"hotfix rollback {hid}" in str(refused.value.hint)
        assert engine.journal(hid) == before
        # The gate it waits at is still the rollback's.
        assert engine.approve(hid, "rollback").payload["gate"] == "rollback"
