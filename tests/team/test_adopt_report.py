"""The report after ``adopt``: nothing inferred is ticked; lines with evidence still are.

Real components as in ``test_adopt``: the served rehearsal sandbox (bare origin, GitHub API,
production app), the default phases and SQLite stores. A checklist line is ticked only from a
row that carries its evidence; an inferred row without it shows "[~] … inferred from …".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.recovery.adopt import adopt
from hotfix_fsm.reporting.checklist import ChecklistItem, build_checklist
from hotfix_fsm.reporting.postmortem import postmortem_markdown

from .conftest import Stop, Team, stop_after
from .test_adopt import lose_database

GATE_LINES = ("Critical tests passing", "Security scan passed", "Build successful")
WORLD_UNSEEN = (  # what no GitHub or git answer shows: a health answer, a monitoring window
    "Health checks passing",
    "Monitoring enabled (5-15 minutes)",
    "Error rates normal",
    "Performance metrics normal",
)
OPTIONS = {"fix_mode": "cherry-pick"}


def items(engine: HotfixEngine, hotfix_id: str) -> dict[str, ChecklistItem]:
    hotfix, journal = engine.get(hotfix_id), engine.journal(hotfix_id)
    return {i.text: i for s in build_checklist(hotfix, journal) for i in s.items}


def crash_and_adopt(
    team: Team, engine: HotfixEngine, db: Path, hotfix_id: str, phase: str
) -> tuple[HotfixEngine, dict[str, Any]]:
    """Drive until ``phase`` is done, lose the database, adopt the hotfix into a new one."""
    stop_after("after_done", phase)
    with pytest.raises(Stop):
        engine.drive(hotfix_id)
    failpoints.set_hook(None)
    lost = engine.get(hotfix_id).context
    lose_database(engine, db)
    engine = team.engine(db)
    options = {**OPTIONS, "cherry_pick": [team.info.fix_sha]}
    adopt(engine, repo_path=team.work, branch=lost["branch"], yes=True, options=options)
    return engine, lost


def assert_inferred(item: ChecklistItem, source: str) -> None:
    assert not item.ticked, item
    assert item.inferred, item
    assert f"inferred from {source}" in item.evidence, item
    assert "not ticked: needs" in item.evidence, item


def assert_no_tick_without_evidence(text: str) -> None:
    """In the markdown: no inferred line is ticked, and every tick cites journal rows."""
    for line in text.splitlines():
        if line.startswith("- [x]"):
            assert "inferred from" not in line, line
            assert "(journal #" in line, line
        if line.startswith("- [~]"):
            assert "inferred from" in line, line


def test_adopted_report_ticks_only_lines_whose_rows_carry_evidence(
    team: Team, tmp_path: Path
) -> None:
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix_id = team.start(engine)

    # Lost after the push: the gates' rows are inferred from the fix being on the remote.
    engine, lost = crash_and_adopt(team, engine, db, hotfix_id, "push")
    fix = str(lost["fix_sha"])
    assert engine.get(hotfix_id).state == "pushed"
    found = items(engine, hotfix_id)
    for text in GATE_LINES:
        assert_inferred(found[text], f"the fix {fix[:12]} being on the remote")
    for text in ("Hotfix branch created from production", "Changes committed and pushed"):
        assert found[text].ticked, found[text]  # read from the remote by adopt
        assert "`hotfix adopt`" in found[text].evidence
    text = postmortem_markdown(engine.get(hotfix_id), engine.journal(hotfix_id))
    assert "- [~] Critical tests passing — inferred from the fix" in text
    assert "- [x] Critical tests passing" not in text
    assert "| gate:tests | done | 0 | - | inferred from the fix" in text
    assert_no_tick_without_evidence(text)

    # Resumed, the PR opens: its body ticks no gate adopt inferred either.
    engine, lost = crash_and_adopt(team, engine, db, hotfix_id, "deploy")
    body = next(p["body"] for p in team.effects()["pull_requests"] if p["head"] == lost["branch"])
    assert "- [x]" not in body
    assert "- [ ] Critical tests — inferred from the fix" in body
    assert "no exit code was recorded" in body

    # Lost after the deploy: CI and the deploy run were read from GitHub, so they tick.
    assert engine.get(hotfix_id).state == "deployed"
    found = items(engine, hotfix_id)
    for text in GATE_LINES:
        assert_inferred(found[text], f"the fix {fix[:12]} being on the remote")
    ci = found["CI/CD checks passed"]
    assert ci.ticked, ci
    assert "checks passed: " in ci.evidence
    assert "read from the world by `hotfix adopt`" in ci.evidence
    deploy = found["Production deployment triggered"]
    assert deploy.ticked, deploy
    assert f"deploy run {lost['deploy_run_id']}" in deploy.evidence
    assert_inferred(found["Rollback plan prepared"], "production's head")
    assert not found["Health checks passing"].ticked  # verify has not run since
    assert not found["Fix implemented and code reviewed"].ticked  # no person approved

    # Lost after the merge: verify and monitor left no trace; the merge implies them.
    engine, lost = crash_and_adopt(team, engine, db, hotfix_id, "merge")
    merged = f"the PR being merged as {str(lost['merge_sha'])[:12]}"
    assert engine.get(hotfix_id).state == "merged"
    found = items(engine, hotfix_id)
    for text in WORLD_UNSEEN:
        assert_inferred(found[text], merged)
    for text in GATE_LINES:
        assert_inferred(found[text], f"the fix {fix[:12]} being on the remote")
    assert found["Production deployment triggered"].ticked
    text = postmortem_markdown(engine.get(hotfix_id), engine.journal(hotfix_id))
    assert f"- [~] Health checks passing — inferred from {merged}" in text
    assert "- [x] Health checks passing" not in text
    assert "- [x] Build successful" not in text
    assert "- [x] Security scan passed" not in text
    assert "verify: done (inferred by adopt)" in text
    assert_no_tick_without_evidence(text)

    # Finished from there: what never ran again stays inferred in the final post-mortem.
    assert engine.drive(hotfix_id).state == "done"
    team.assert_effects_once(lost["branch"])
    found = items(engine, hotfix_id)
    for text in (*GATE_LINES, "Health checks passing"):
        assert found[text].inferred, found[text]
        assert not found[text].ticked, found[text]
    assert_no_tick_without_evidence(
        postmortem_markdown(engine.get(hotfix_id), engine.journal(hotfix_id))
    )


def test_adopted_after_cleanup_with_ci_disabled(team: Team, tmp_path: Path) -> None:
    team.config.ci.enabled = False
    db = tmp_path / "laptop.db"
    engine = team.engine(db)
    hotfix_id = team.start(engine)
    engine, lost = crash_and_adopt(team, engine, db, hotfix_id, "cleanup")
    assert engine.get(hotfix_id).state == "cleaned_up"
    found = items(engine, hotfix_id)
    ci = found["CI/CD checks passed"]
    assert not ci.ticked, ci  # adopt once recorded no CI facts here, and the box got ticked
    assert ci.evidence.startswith("CI was skipped"), ci
    tag = f"tag {lost['release_tag']} existing on the merge commit"
    for text in (*GATE_LINES, *WORLD_UNSEEN):
        # Every row is inferred from the nearest later proof: the push for the gates, the
        # merge for verify and monitor (the tag and cleanup come after).
        assert found[text].inferred, found[text]
        assert not found[text].ticked, found[text]
        assert tag not in found[text].evidence
    assert "| cleanup | done |" in postmortem_markdown(
        engine.get(hotfix_id), engine.journal(hotfix_id)
    )


def test_a_driven_hotfix_ticks_from_evidence_and_from_what_probes_read(
    team: Team, tmp_path: Path
) -> None:
    engine = team.engine(tmp_path / "store.db")
    hotfix_id = team.start(engine)
    # Crashes after the effect, before its done row: the probe finds it and adopts it.
    for phase in ("push", "deploy"):
        stop_after("after_effect", phase)
        with pytest.raises(Stop):
            engine.drive(hotfix_id)
        failpoints.set_hook(None)
    assert engine.drive(hotfix_id).state == "done"
    journal = engine.journal(hotfix_id)
    probed = [e.phase for e in journal if e.kind == "done" and e.payload.get("inferred")]
    assert probed == ["push", "deploy"]
    team.assert_effects_once(engine.get(hotfix_id).context["branch"])

    found = items(engine, hotfix_id)
    for text in GATE_LINES:
        assert found[text].ticked, found[text]
        assert "exit code 0, log " in found[text].evidence
    health = found["Health checks passing"]
    assert health.ticked, health
    assert "HTTP 200" in health.evidence
    assert len(health.seqs) == 2  # the verify done row and the health answer itself
    for text in ("Changes committed and pushed", "Production deployment triggered"):
        assert found[text].ticked, found[text]  # the probe read it from the remote / GitHub
        assert found[text].evidence.endswith("(found by a probe after a crash)")
    for text in ("Emergency PR created", "CI/CD checks passed", "Rollback plan prepared"):
        assert found[text].ticked, found[text]
    assert not any(i.inferred for i in found.values())
    text = postmortem_markdown(engine.get(hotfix_id), engine.journal(hotfix_id))
    assert "- [~]" not in text
    assert "push: done (adopted after a probe)" in text
    assert_no_tick_without_evidence(text)
