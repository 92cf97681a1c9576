"""Hand-off and adopt publish their rows like everything else (the rehearsal sandbox).

Machine A drives to the deploy gate; machine B, sharing the store, takes the hotfix into its
own clone (``prepare_work_tree``), approves and drives until the deploy is done — then the
store is lost, and machine C adopts the hotfix from the world and finishes it. Each engine's
subscribers must have received exactly the rows it wrote, in sequence order, and together
every row ``hotfix log`` shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.recovery.adopt import adopt
from hotfix_fsm.recovery.handoff import prepare_work_tree
from tests.helpers_events import Seen, journal_rows

from .conftest import Stop, Team, git, stop_after


def test_hand_off_and_adopt_rows_reach_subscribers(team: Team, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    a, seen_a = team.engine(db), Seen()
    a.subscribe(seen_a)
    hotfix_id = team.start(a, yes=False)
    assert a.drive(hotfix_id).paused_gate == "deploy"
    seen_a.assert_saw_every_row(a, hotfix_id)

    b, seen_b = team.engine(db), Seen()
    b.subscribe(seen_b)
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", team.info.origin, str(clone))
    prepare_work_tree(b, hotfix_id, clone)
    b.approve(hotfix_id, "deploy", by="machine-b")
    stop_after("after_done", "deploy")
    with pytest.raises(Stop):
        b.drive(hotfix_id)
    failpoints.set_hook(None)
    journal = journal_rows(b, hotfix_id)
    handed = [row for row in seen_b.rows[hotfix_id] if row[1] == "note" and "handoff" in row[3]]
    assert len(handed) == 1
    assert seen_b.seqs(hotfix_id)[0] == seen_a.seqs(hotfix_id)[-1] + 1  # B's first: the move
    assert seen_a.rows[hotfix_id] + seen_b.rows[hotfix_id] == journal

    for engine in (a, b):  # the laptop with the store is gone
        engine.close()
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    c, seen_c = team.engine(db), Seen()
    c.subscribe(seen_c)
    adopted = adopt(c, repo_path=clone, issue="INC-8", yes=True)
    assert adopted.id == hotfix_id
    assert adopted.state == "deployed"
    seen_c.assert_saw_every_row(c, hotfix_id)  # the created row and every inferred one
    assert c.drive(hotfix_id).state == "done"
    seen_c.assert_saw_every_row(c, hotfix_id)
    assert seen_c.progress > 0  # waits were reported too, without a row
