"""``adopt``: lose the database at every phase of a real sandbox hotfix, rebuild it, finish it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.core import machine
from hotfix_fsm.durable import failpoints
from hotfix_fsm.durable.runner import Event
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import IllegalTransition, InvalidInput, NotFound, UsageError
from hotfix_fsm.recovery.adopt import adopt
from hotfix_fsm.reporting.postmortem import postmortem_markdown
from hotfix_fsm.reporting.report import status_document

from .conftest import Stop, Team, git, stop_after

# (phase after whose ``done`` the laptop dies, the state adopt can prove from the world)
STOPS = [
    ("branch", "branched"),  # a local branch at the production head
    ("commit_fix", "fix_committed"),  # a local commit with the Hotfix-Id trailer
    ("push", "pushed"),
    ("open_pr", "pr_open"),  # CI still running
    ("wait_ci", "ci_passed"),
    ("approve_deploy", "ci_passed"),  # an approval leaves no trace in the world
    ("deploy", "deployed"),
    ("verify", "deployed"),  # neither does a health check ...
    ("monitor", "deployed"),  # ... nor a monitoring window: both run again
    ("merge", "merged"),
    ("tag", "tagged"),
    ("backport", "backported"),
    ("cleanup", "cleaned_up"),
]
# Facts adopt must rebuild exactly as the lost database had them, once proven.
SAME_FACTS = (
    "branch",
    "base_sha",
    "fix_sha",
    "pushed_sha",
    "pr_number",
    "pr_url",
    "deploy_run_id",
    "deploy_correlation_id",
    "deployed_sha",
    "merge_sha",
    "release_tag",
    "backport_pr_number",
)
CHERRY_PICK = "cherry-pick"
ORDER = [*machine.WORKING_STATES, "done"]


def lose_database(engine: HotfixEngine, db: Path) -> None:
    engine.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def check_adopted(engine: HotfixEngine, hotfix_id: str, lost: dict[str, Any]) -> None:
    journal = engine.journal(hotfix_id)
    assert journal[0].kind == "created"
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
    rebuilt = journal[1:]
    assert rebuilt[-1].kind == "note"
    assert rebuilt[-1].payload["kind"] == "adopted"
    assert rebuilt[-1].payload["evidence"]
    assert all(e.payload.get("inferred") is True for e in rebuilt)
    assert all(e.payload.get("evidence") for e in rebuilt if e.kind == "done")
    hotfix = engine.get(hotfix_id)
    for key in SAME_FACTS:
        if key in hotfix.context and key in lost:
            assert hotfix.context[key] == lost[key], key


def test_adopt_after_losing_the_database_at_every_phase(team: Team, tmp_path: Path) -> None:
    # CI runs until the test ends it (after adopt has looked at the open PR), not for a
    # number of seconds a busy machine could outrun.
    team.sandbox.github.set_ci(seconds=24 * 3600.0)
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix_id = team.start(engine)
    options = {"fix_mode": CHERRY_PICK, "cherry_pick": [team.info.fix_sha]}
    branch = ""
    seen: list[tuple[str, str]] = []
    state = "created"
    for phase, expected in STOPS:
        if ORDER.index(machine.DEST_OF_PHASE[phase]) <= ORDER.index(state):
            continue  # adopt already proved more than this phase
        stop_after("after_done", phase)
        with pytest.raises(Stop):
            engine.drive(hotfix_id)
        failpoints.set_hook(None)
        lost = engine.get(hotfix_id).context
        branch = lost["branch"]
        lose_database(engine, db)
        engine = team.engine(db)  # the same path, a new empty store
        adopted = adopt(engine, repo_path=team.work, branch=branch, yes=True, options=options)
        seen.append((phase, adopted.state))
        state = adopted.state
        assert adopted.id == hotfix_id
        assert adopted.state == expected, seen
        assert adopted.options["adopted"]["branch"] == branch
        check_adopted(engine, hotfix_id, lost)
        if phase == "open_pr":  # adopt saw CI running; now let it pass
            team.sandbox.github.set_ci(seconds=0.0, sha=lost["pushed_sha"])
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "done", outcome
    team.assert_effects_once(branch)
    text = postmortem_markdown(engine.get(hotfix_id), engine.journal(hotfix_id))
    assert hotfix_id in text


def test_adopt_while_the_deploy_runs_follows_that_run(team: Team, tmp_path: Path) -> None:
    # A deploy that runs until the test has adopted (not for a time a busy machine outruns).
    team.sandbox.github.world.run_seconds = 24 * 3600.0
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix_id = team.start(engine)

    def die_while_waiting(event: Event) -> None:
        if event.kind == "progress" and "waiting for deploy run" in event.payload["message"]:
            raise Stop("the laptop died while the deploy ran")

    engine.subscribe(die_while_waiting)
    with pytest.raises(Stop):
        engine.drive(hotfix_id)
    lost = engine.get(hotfix_id).context
    lose_database(engine, db)
    engine = team.engine(db)
    adopted = adopt(engine, repo_path=team.work, issue="INC-8", yes=True)
    assert adopted.state == "deploying"  # the run is not finished: the last certain state
    ledger = adopted.context["deploy_dispatches"]
    assert [e["run_id"] for e in ledger] == [r["run_id"] for r in lost["deploy_dispatches"]]
    assert ledger[0]["correlation_id"] == lost["deploy_dispatches"][0]["correlation_id"]
    assert adopted.context["rollback_target"]["sha"] == team.info.production_sha
    assert adopted.context["rollback_target"]["tag"] == "v1.0.0"
    team.sandbox.github.finish_run(ledger[0]["run_id"])
    outcome = engine.drive(hotfix_id)
    assert outcome.state == "done", outcome
    team.assert_effects_once(lost["branch"])  # the running deploy was followed, not redone


def test_adopt_by_issue_into_a_fresh_clone_after_the_merge(
    store_url: str, team: Team, tmp_path: Path
) -> None:
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix_id = team.start(engine)
    stop_after("after_done", "merge")
    with pytest.raises(Stop):
        engine.drive(hotfix_id)
    failpoints.set_hook(None)
    lost = engine.get(hotfix_id).context
    lose_database(engine, db)  # and the laptop with its clone: a colleague starts afresh
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", team.info.origin, str(clone))
    colleague = team.engine(store_url)  # the team's store: SQLite or PostgreSQL
    adopted = adopt(colleague, repo_path=clone, issue="INC-8", yes=True)
    assert adopted.state == "merged"
    assert adopted.repo == str(clone.resolve())
    assert adopted.issue == "INC-8"
    assert adopted.description.startswith("Fix token expiry check")
    assert adopted.context["rollback_target"]["sha"] == team.info.production_sha
    check_adopted(colleague, hotfix_id, lost)
    note = colleague.journal(hotfix_id)[-1].payload
    assert {"branch", "commit_fix", "push", "open_pr", "merge"} <= set(note["proven"])
    assert {"verify", "monitor"} <= set(note["implied"])
    status = status_document(colleague.get(hotfix_id), colleague.journal(hotfix_id))
    assert status["state"] == "merged"
    assert colleague.drive(hotfix_id).state == "done"
    team.assert_effects_once(lost["branch"])
    assert git(clone, "branch", "--list", lost["branch"]) == ""


def test_adopt_refuses_what_it_cannot_rebuild(team: Team, tmp_path: Path) -> None:
    engine = team.engine(tmp_path / "store.db")
    with pytest.raises(UsageError, match="either a hotfix branch or an issue"):
        adopt(engine, repo_path=team.work)
    with pytest.raises(UsageError, match="either"):
        adopt(engine, repo_path=team.work, branch="hotfix/X", issue="INC-8")
    with pytest.raises(NotFound, match="no hotfix branch of issue INC-404") as nf:
        adopt(engine, repo_path=team.work, issue="INC-404")
    assert nf.value.hint
    assert "--branch" in nf.value.hint
    with pytest.raises(NotFound, match="exists neither"):
        adopt(engine, repo_path=team.work, branch="hotfix/INC-8-20200101-000000")
    with pytest.raises(InvalidInput, match="Hotfix-Id"):
        adopt(engine, repo_path=team.work, branch="main")  # not a branch hotfix_fsm made
    with pytest.raises(InvalidInput, match="not a valid git ref"):
        adopt(engine, repo_path=team.work, branch="hotfix/..;rm -rf")

    hotfix_id = team.start(engine)
    stop_after("after_done", "push")
    with pytest.raises(Stop):
        engine.drive(hotfix_id)
    failpoints.set_hook(None)
    branch = engine.get(hotfix_id).context["branch"]
    with pytest.raises(UsageError, match="already in this store") as exists:
        adopt(engine, repo_path=team.work, branch=branch)
    assert exists.value.hint
    assert f"hotfix resume {hotfix_id}" in exists.value.hint

    # An adoption killed between its row and its journal is finished by adopting again.
    half = team.engine(tmp_path / "half.db")
    real_acquire = half.store.acquire_lease

    def crash(*_args: object, **_kwargs: object) -> None:
        raise Stop("killed after the row was written")

    half.store.acquire_lease = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(Stop):
        adopt(half, repo_path=team.work, branch=branch)
    assert [e.kind for e in half.journal(hotfix_id)] == ["created"]
    half.store.acquire_lease = real_acquire  # type: ignore[method-assign]
    finished = adopt(half, repo_path=team.work, branch=branch)
    assert finished.state == "pushed"
    assert half.journal(hotfix_id)[-1].payload["kind"] == "adopted"
    with pytest.raises(UsageError, match="already in this store"):
        adopt(half, repo_path=team.work, branch=branch)

    # A rollback that was started is not adopted: production needs a person's eyes.
    git(team.work, "push", "-q", "origin", f"{branch}:refs/heads/rollback/{hotfix_id}")
    other = team.engine(tmp_path / "other.db")
    with pytest.raises(IllegalTransition, match="rollback") as rolled:
        adopt(other, repo_path=team.work, branch=branch)
    assert rolled.value.hint
    assert other.list(include_finished=True) == []


def test_adopt_finds_a_fix_made_only_of_the_engineers_own_commits(
    team: Team, tmp_path: Path
) -> None:
    """No Hotfix-Id trailer anywhere (the tool made no commit): the pushed branch is the fix."""
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix = engine.start("INC-8", "Fix token expiry check", repo=team.work, yes=True)
    assert engine.drive(hotfix.id).state == "awaiting_fix"
    fixed = git(team.info.origin, "show", f"{team.info.fix_sha}:app.py")
    (team.work / "app.py").write_text(fixed + "\n", encoding="utf-8")
    git(team.work, "commit", "-q", "--author=Ada Lovelace <ada@example.org>", "-am", "Fix it")
    mine = git(team.work, "rev-parse", "HEAD")
    stop_after("after_done", "merge")
    with pytest.raises(Stop):
        engine.drive(hotfix.id)
    failpoints.set_hook(None)
    lost = engine.get(hotfix.id).context
    assert lost["fix_sha"] == mine
    lose_database(engine, db)
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", team.info.origin, str(clone))
    colleague = team.engine(tmp_path / "colleague.db")
    adopted = adopt(colleague, repo_path=clone, issue="INC-8", yes=True)
    assert adopted.id == hotfix.id
    assert adopted.state == "merged"
    assert adopted.context["fix_sha"] == mine
    assert adopted.context["base_sha"] == lost["base_sha"]
    commits = adopted.context["fix_commits"]
    assert [(c["sha"], c["author"]) for c in commits] == [(mine, "Ada Lovelace <ada@example.org>")]
    check_adopted(colleague, hotfix.id, lost)
    assert colleague.drive(hotfix.id).state == "done"
    team.assert_effects_once(lost["branch"])
