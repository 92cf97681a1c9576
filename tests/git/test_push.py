"""Push: lands once, never forced, adopts an identical remote, refuses a foreign one."""

from __future__ import annotations

import socket
from collections.abc import Callable

from hotfix_fsm.engine import HotfixEngine
from tests.helpers_git import GitWorld, git

Engines = Callable[..., HotfixEngine]


def start(world: GitWorld, engine: HotfixEngine) -> tuple[str, str]:
    hotfix = engine.start(
        "INC-1", "Fix token expiry check", repo=world.work, cherry_pick=[world.shas["fix_on_main"]]
    )
    return hotfix.id, f"hotfix/INC-1-{hotfix.context['timestamp']}"


def intents(engine: HotfixEngine, hotfix_id: str, phase: str) -> int:
    return sum(1 for r in engine.journal(hotfix_id) if r.phase == phase and r.kind == "intent")


def test_push_lands_once_without_force(world: GitWorld, engine: HotfixEngine) -> None:
    hotfix_id, branch = start(world, engine)
    assert engine.drive(hotfix_id).state == "pushed"
    context = engine.get(hotfix_id).context
    assert context["pushed_sha"] == context["fix_sha"]
    assert context["remote"] == "origin"
    (update,) = world.ref_updates(branch)
    assert update["new"] == context["fix_sha"]
    assert update["forced"] is False
    assert world.remote_branches() == [branch]
    # Driving again changes nothing on the remote.
    engine.drive(hotfix_id)
    assert len(world.ref_updates(branch)) == 1


def test_push_refuses_a_branch_someone_else_pushed(world: GitWorld, engine: HotfixEngine) -> None:
    hotfix_id, branch = start(world, engine)
    theirs = world.push_as_someone_else(branch, {"theirs.txt": "x\n"}, "someone else's work")
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "failed"
    error = outcome.error or ""
    assert f"someone else pushed to {branch}" in error
    assert f"remote at {theirs[:12]}" in error
    assert "never overwritten" in error
    assert f"git push origin --delete {branch}" in error
    assert world.remote_sha(branch) == theirs
    assert not world.forced_updates()
    # Once the stale branch is removed, resume pushes ours.
    git(world.seed, "push", "--quiet", "origin", "--delete", branch)
    assert engine.drive(hotfix_id).state == "pushed"
    assert world.remote_sha(branch) == engine.get(hotfix_id).context["fix_sha"]
    assert not world.forced_updates()


def test_push_adopts_a_remote_branch_already_at_the_fix(world: GitWorld, engines: Engines) -> None:
    failing = engines(audit={"command": ["false-tool-that-does-not-exist"]})
    hotfix_id, branch = start(world, failing)
    assert failing.drive(hotfix_id).state == "failed"
    fix = failing.get(hotfix_id).context["fix_sha"]
    git(world.work, "push", "--quiet", "origin", f"{fix}:refs/heads/{branch}")
    assert engines().drive(hotfix_id).state == "pushed"
    assert len(world.ref_updates(branch)) == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_network_failure_is_retried_then_resumable(world: GitWorld, engine: HotfixEngine) -> None:
    git(
        world.work,
        "remote",
        "set-url",
        "--push",
        "origin",
        f"http://127.0.0.1:{closed_port()}/origin.git",
    )
    hotfix_id, branch = start(world, engine)
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "failed"
    assert "gave up after 2 attempts" in (outcome.error or "")
    assert intents(engine, hotfix_id, "push") == 2  # retried: the failure was transient
    git(world.work, "config", "--unset", "remote.origin.pushurl")
    assert engine.drive(hotfix_id).state == "pushed"
    assert len(world.ref_updates(branch)) == 1


def test_a_rejected_push_is_not_retried(world: GitWorld, engine: HotfixEngine) -> None:
    hook = world.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'protected: hotfix branches need review' >&2\nexit 1\n")
    hook.chmod(0o755)
    hotfix_id, branch = start(world, engine)
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "failed"
    assert "refused the push" in (outcome.error or "")
    assert "protected: hotfix branches need review" in (outcome.error or "")
    assert intents(engine, hotfix_id, "push") == 1
    assert world.remote_sha(branch) is None
