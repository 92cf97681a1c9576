"""Crash at every boundary of the git phases, resume from the database file, count effects.

In-process crashes raise ``Crash`` (a BaseException nothing in the engine catches) from the
failpoint hook; a separate process is SIGKILLed through ``HOTFIX_FSM_FAILPOINTS``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.engine import HotfixEngine
from tests.helpers_git import REPO_ROOT, GitWorld, config_data, driver_argv, git

Engines = Callable[..., HotfixEngine]
PHASES = ("branch", "commit_fix", "gate:tests", "gate:build", "gate:audit", "push")


class Crash(BaseException):
    """The process 'dies' here."""


def crash_once_at(phase: str, point: str) -> list[str]:
    fired: list[str] = []

    def hook(at_phase: str, at_point: str) -> None:
        if not fired and (at_phase, at_point) == (phase, point):
            fired.append(f"{phase}:{point}")
            raise Crash(f"{phase}:{point}")

    failpoints.set_hook(hook)
    return fired


def assert_world_converged(world: GitWorld, engine: HotfixEngine, hotfix_id: str) -> None:
    context = engine.get(hotfix_id).context
    branch, fix = context["branch"], context["fix_sha"]
    assert world.remote_branches() == [branch]  # one branch
    assert git(world.origin, "rev-list", f"{world.base_sha}..{branch}").split() == [fix]
    (update,) = world.ref_updates(branch)  # the push landed once
    assert update["new"] == fix
    assert not world.forced_updates()
    assert world.work_status() == ""  # no stray local state
    assert git(world.work, "branch", "--list", "hotfix/*").split() == ["*", branch]
    stamped = git(world.work, "log", "--all", "--format=%(trailers:key=Hotfix-Id,valueonly)")
    assert stamped.split().count(hotfix_id) == 1  # one fix commit, even locally
    assert context["pushed_sha"] == fix


@pytest.mark.parametrize("point", failpoints.POINTS)
@pytest.mark.parametrize("phase", PHASES)
def test_crash_and_resume_at_every_boundary(
    world: GitWorld, engines: Engines, phase: str, point: str
) -> None:
    first = engines()
    hotfix = first.start(
        "INC-1", "Fix token expiry check", repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    fired = crash_once_at(phase, point)
    with pytest.raises(Crash):
        first.drive(hotfix.id)
    assert fired == [f"{phase}:{point}"]
    first.close()
    second = engines()  # a new process, as far as the store is concerned
    outcome = second.drive(hotfix.id)
    assert outcome.state == "pushed", outcome
    assert_world_converged(world, second, hotfix.id)
    probes = [
        r.payload["status"]
        for r in second.journal(hotfix.id)
        if r.kind == "probe" and r.phase == phase
    ]
    if point == "after_done":
        assert probes == []  # nothing is in doubt
    elif phase.startswith("gate:"):  # a gate is a step too: probed, its check runs again
        assert probes == ["not_done"]
    else:  # the effect was in doubt: the probe looked at git and decided
        assert probes == ["done" if point == "after_effect" else "not_done"]


@pytest.mark.parametrize("point", failpoints.POINTS)
def test_crash_around_a_manual_fix_commit(world: GitWorld, engines: Engines, point: str) -> None:
    first = engines()
    hotfix = first.start("INC-1", "Fix token expiry check", repo=world.work)
    assert first.drive(hotfix.id).paused_gate == "fix"
    world.write("app.py", "def check(token):\n    return bool(token) and not token.expired\n")
    crash_once_at("commit_fix", point)
    with pytest.raises(Crash):
        first.drive(hotfix.id)
    outcome = engines().drive(hotfix.id)
    assert outcome.state == "pushed", outcome
    assert_world_converged(world, first, hotfix.id)


@pytest.mark.parametrize("point", failpoints.POINTS)
def test_crash_around_a_fix_made_of_the_engineers_own_commit(
    world: GitWorld, engines: Engines, point: str
) -> None:
    """No trailer to find: the probe says not done and the phase takes the commit again."""
    first = engines()
    hotfix = first.start("INC-1", "Fix token expiry check", repo=world.work)
    assert first.drive(hotfix.id).paused_gate == "fix"
    world.write("app.py", "def check(token):\n    return bool(token) and not token.expired\n")
    git(world.work, "commit", "-q", "--author=Ada <ada@example.org>", "-am", "Check expiry")
    mine = git(world.work, "rev-parse", "HEAD")
    crash_once_at("commit_fix", point)
    with pytest.raises(Crash):
        first.drive(hotfix.id)
    second = engines()
    assert second.drive(hotfix.id).state == "pushed"
    context = second.get(hotfix.id).context
    assert context["fix_sha"] == mine  # never rewritten, whatever the crash point
    assert context["pushed_sha"] == mine
    assert git(world.origin, "rev-list", f"{world.base_sha}..{context['branch']}") == mine
    assert git(world.work, "log", "--all", "--format=%(trailers:key=Hotfix-Id,valueonly)") == ""
    assert not world.forced_updates()
    assert world.work_status() == ""


def test_sigkill_after_the_push_then_resume_in_process(
    world: GitWorld, engines: Engines, db: Path, tmp_path: Path
) -> None:
    engine = engines()
    hotfix = engine.start(
        "INC-1", "Fix token expiry check", repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    kill_log = tmp_path / "failpoints.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        failpoints.ENV: "push:after_effect",
        "HOTFIX_FSM_FAILPOINT_LOG": str(kill_log),
    }
    proc = subprocess.run(
        driver_argv(db, hotfix.id, config_data()),
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    assert kill_log.read_text().splitlines() == ["push:after_effect@1"]
    branch = f"hotfix/INC-1-{hotfix.context['timestamp']}"
    assert world.remote_sha(branch) is not None  # the push landed before the kill
    assert engine.get(hotfix.id).state == "gates_passed"  # but nothing recorded it
    outcome = engine.drive(hotfix.id, take_over=True)
    assert outcome.state == "pushed"
    probes = [r for r in engine.journal(hotfix.id) if r.kind == "probe" and r.phase == "push"]
    assert [p.payload["status"] for p in probes] == ["done"]
    assert_world_converged(world, engine, hotfix.id)
