"""``hotfix approve ID deploy`` on a deploy run waiting for a protected environment: the
approval is given on GitHub as the token's user (``rehearsal-bot`` in the rehearsal), once,
journaled as evidence; a user who is not a reviewer is told who is."""

from __future__ import annotations

from typing import Any

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import ApprovalRefused, IllegalTransition
from hotfix_fsm.reporting.report import summarize
from tests.github.conftest import World
from tests.github.test_crash_resume import POINTS


def _paused_at_the_environment(world: World, reviewers: list[str]) -> str:
    world.gh.set_environment("production", reviewers=reviewers)
    world.config_sections = {"deploy": {"timeout": 1.0}}
    hotfix_id, outcome = world.run()
    assert outcome.paused_reason is not None, outcome.error
    assert "waits for a reviewer of environment production" in outcome.paused_reason
    return hotfix_id


def test_approve_deploy_approves_the_pending_deployment_once(world: World) -> None:
    hotfix_id = _paused_at_the_environment(world, ["rehearsal-bot", "alice"])
    engine = world.engine()
    done = engine.approve_environment(hotfix_id, by="ann", comment="ship it")
    assert not done.already
    record = done.entry.payload["facts"]["environment_approval"]
    run_id = world.gh.effects()["dispatches"][0]["run_id"]
    assert record["run_id"] == run_id
    assert (record["approved_by"], record["by"], record["comment"]) == (
        "rehearsal-bot",
        "ann",
        "ship it",
    )
    assert record["environments"] == ["production"]
    reviews = world.gh.effects()["deployment_reviews"]
    assert [(r["user"], r["state"], r["comment"]) for r in reviews] == [
        ("rehearsal-bot", "approved", "ship it")
    ]
    line = summarize(done.entry)
    assert f"environment production approved by rehearsal-bot (as ann) for run {run_id}" in line

    again = engine.approve_environment(hotfix_id, by="ann")
    assert again.already
    assert again.entry.seq == done.entry.seq
    assert len(world.gh.effects()["deployment_reviews"]) == 1

    finished = world.engine().drive(hotfix_id)
    assert finished.state == "done", finished.error or finished.paused_reason
    effects = world.gh.effects()
    assert len(effects["dispatches"]) == 1
    assert len(effects["deploys"]) == 1
    assert len(effects["deployment_reviews"]) == 1


def test_approve_deploy_by_a_user_who_is_not_a_reviewer_says_who_can(world: World) -> None:
    hotfix_id = _paused_at_the_environment(world, ["alice", "bob"])
    with pytest.raises(ApprovalRefused) as refused:
        world.engine().approve(hotfix_id, "deploy")
    message = refused.value.message
    assert "may not approve deploy run" in message
    assert "environment production (alice, bob)" in message
    assert "nothing was sent" in message
    assert world.gh.effects()["deployment_reviews"] == []


class Crash(BaseException):
    """A simulated power cut."""


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_each_boundary_of_the_approval_approves_once(world: World, point: str) -> None:
    hotfix_id = _paused_at_the_environment(world, ["rehearsal-bot"])
    crashed: list[str] = []

    def hook(name: str, at: str) -> None:
        if name == "environment_approval" and at == point and not crashed:
            crashed.append(at)
            raise Crash(at)

    failpoints.set_hook(hook)
    try:
        with pytest.raises(Crash):
            world.engine().approve(hotfix_id, "deploy", comment="go")
    finally:
        failpoints.set_hook(None)
    assert crashed == [point]
    again: Any = world.engine().approve_environment(hotfix_id)
    assert again.entry.payload["facts"]["environment_approval"]["approved_by"] == "rehearsal-bot"
    if point == "after_effect":
        assert again.entry.payload.get("inferred") is True  # adopted after the probe
    assert again.already is (point == "after_done")
    finished = world.engine().drive(hotfix_id)
    assert finished.state == "done", finished.error or finished.paused_reason
    effects = world.gh.effects()
    assert len(effects["deployment_reviews"]) == 1
    assert len(effects["dispatches"]) == 1
    assert len(effects["deploys"]) == 1


def test_approve_deploy_after_a_reviewer_approved_on_github_sends_nothing(world: World) -> None:
    hotfix_id = _paused_at_the_environment(world, ["rehearsal-bot", "alice"])
    run_id = world.gh.effects()["dispatches"][0]["run_id"]
    world.gh.approve_deployment(run_id, "alice")
    with pytest.raises(IllegalTransition) as said:
        world.engine().approve(hotfix_id, "deploy")
    assert f"deploy run {run_id} was already approved on GitHub by alice" in said.value.message
    assert [r["user"] for r in world.gh.effects()["deployment_reviews"]] == ["alice"]
