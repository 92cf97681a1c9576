"""Four eyes on the deploy gate through the engine, against the served sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hotfix_fsm.engine import _user
from hotfix_fsm.errors import ApprovalRefused, ExitCode
from hotfix_fsm.reporting.postmortem import postmortem_markdown
from hotfix_fsm.store import Entry

from .conftest import Team


def test_a_starters_approval_never_counts_and_a_second_persons_comment_is_kept(
    team: Team, tmp_path: Path
) -> None:
    team.config.deploy.distinct_approver = True
    engine = team.engine(tmp_path / "store.db")
    hotfix_id = team.start(engine, yes=False)
    starter = engine.get(hotfix_id).options["started_by"]
    assert starter == _user()
    paused = engine.drive(hotfix_id)
    assert paused.state == "awaiting_deploy_approval"
    assert f"anyone but {starter}" in (paused.paused_reason or "")

    with pytest.raises(ApprovalRefused) as refused:
        engine.approve(hotfix_id, "deploy")
    assert refused.value.exit_code == ExitCode.USAGE
    assert f"{starter} started this hotfix" in refused.value.message
    assert f"anyone but {starter}" in (refused.value.hint or "")
    assert not [e for e in engine.journal(hotfix_id) if e.kind == "approval"]

    # An approval row by the starter (written by an older version, say) does not pass either.
    hotfix = engine.get(hotfix_id)
    row = {"gate": "deploy", "by": starter, "sha": hotfix.context["fix_sha"], "at": time.time()}
    engine.writer.write(hotfix, [Entry("approval", "deploy", 0, None, row)])
    again = engine.drive(hotfix_id)
    assert again.state == "awaiting_deploy_approval"
    assert "does not count" in (again.paused_reason or "")

    entry = engine.approve(hotfix_id, "deploy", by="bob", comment="  read the diff and the tests ")
    assert entry.payload["by"] == "bob"
    assert entry.payload["comment"] == "read the diff and the tests"
    assert engine.drive(hotfix_id).state == "done"
    done = engine.get(hotfix_id)
    assert done.context["deploy_approval"]["by"] == "bob"
    assert done.context["deploy_approval"]["comment"] == "read the diff and the tests"
    text = postmortem_markdown(done, engine.journal(hotfix_id))
    assert "approved by bob" in text
    assert "read the diff and the tests" in text
    (line,) = [ln for ln in text.splitlines() if "Fix implemented and code reviewed" in ln]
    assert line.startswith("- [ ]"), line
    assert "bob" in line, line
    assert "(not a review" in line, line
