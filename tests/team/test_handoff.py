"""Hand-off between two machines sharing one store (SQLite file or PostgreSQL).

Machine A is a real ``python`` process killed with SIGKILL at a checkpoint boundary while it
holds the lease (or an in-process engine stopped at a phase); machine B is another engine, with
its own owner and its own work tree, that is refused while A's lease lives, then takes over
(or waits for the lease to expire), prepares its work tree from the remote and finishes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import InvalidInput, LeaseHeld, UsageError
from hotfix_fsm.recovery.handoff import prepare_work_tree, same_remote

from .conftest import Stop, Team, git, stop_after

REPO_ROOT = Path(__file__).resolve().parents[2]

# Machine A: start a hotfix, say who it is, drive until the failpoint SIGKILLs the process.
# Its lease names another host, as a laptop's would: the store reclaims at once only a lease
# whose holder ran on this host and is dead, so this one is refused until it expires.
MACHINE_A = """
import json, os, sys
from hotfix_fsm.config import load_config
from hotfix_fsm.engine import HotfixEngine

db, work, fix, ttl = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
config = load_config(work)
config.ci.poll_interval = config.deploy.poll_interval = config.verify.interval = 0.05
config.monitor.duration, config.monitor.interval = 1.0, 0.2
engine = HotfixEngine(db, config=config, lease_ttl=ttl, backoff_base=0.01)
# Another machine: a lease held from this host by a dead pid would be reclaimed at once.
engine.runner.owner = "laptop-a.invalid:4242:" + os.urandom(4).hex()
hotfix = engine.start("INC-8", "Fix token expiry check", repo=work, cherry_pick=[fix], yes=True)
print(json.dumps({"id": hotfix.id, "owner": engine.runner.owner}), flush=True)
engine.drive(hotfix.id)
print(json.dumps({"finished": True}), flush=True)
"""


def run_machine_a(team: Team, db: str, failpoint: str, ttl: float) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "HOTFIX_FSM_FAILPOINTS": failpoint,
    }
    proc = subprocess.run(
        [sys.executable, "-c", MACHINE_A, db, str(team.work), team.info.fix_sha, str(ttl)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stdout
    assert "finished" not in lines[-1], proc.stdout
    return dict(lines[0])


def wait_for(check: object, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_machine_b_takes_over_from_a_killed_machine(
    store_url: str, team: Team, tmp_path: Path
) -> None:
    check_hand_off(team, store_url, tmp_path, "take_over")


def test_machine_b_continues_once_the_lease_of_a_killed_machine_expires(
    team: Team, tmp_path: Path
) -> None:
    check_hand_off(team, f"sqlite:///{tmp_path / 'shared.db'}", tmp_path, "lease_expiry")


def check_hand_off(team: Team, store_url: str, tmp_path: Path, how: str) -> None:
    ttl = 2.0 if how == "lease_expiry" else 60.0
    a = run_machine_a(team, store_url, "deploy:before_effect", ttl)  # deploy in doubt
    hotfix_id, owner_a = a["id"], a["owner"]
    b = team.engine(store_url)
    assert b.runner.owner != owner_a
    stranded = b.get(hotfix_id)
    assert stranded.state == "deploying"
    assert stranded.lease_owner == owner_a
    assert stranded.lease_live()

    b_tree = tmp_path / "machine-b" / "shop"
    with pytest.raises(LeaseHeld, match=re.escape(owner_a)) as held:
        b.drive(hotfix_id)
    assert held.value.hint
    assert "--take-over" in held.value.hint
    with pytest.raises(LeaseHeld, match="another driver holds this hotfix"):
        prepare_work_tree(b, hotfix_id, b_tree)
    assert not b_tree.exists()  # refused before touching anything

    if how == "lease_expiry":
        wait_for(lambda: not b.get(hotfix_id).lease_live(), timeout=ttl + 120)
        moved = prepare_work_tree(b, hotfix_id, b_tree)
    else:
        moved = prepare_work_tree(b, hotfix_id, b_tree, take_over=True)
    fix = moved.context["fix_sha"]
    assert moved.repo == str(b_tree.resolve())
    assert moved.state == "deploying"
    assert git(b_tree, "rev-parse", "HEAD") == fix
    assert git(b_tree, "branch", "--show-current") == moved.context["branch"]
    note = b.journal(hotfix_id)[-1]
    assert note.kind == "note"
    record = note.payload["handoff"]
    assert record["cloned"] is True
    assert record["to_repo"] == str(b_tree.resolve())
    assert record["checked_out"] == fix
    assert record["took_over_from"] == (owner_a if how == "take_over" else None)

    outcome = b.drive(hotfix_id)
    assert outcome.state == "done", outcome
    team.assert_effects_once(moved.context["branch"])
    kinds = [(e.kind, e.phase) for e in b.journal(hotfix_id)]
    assert ("probe", "deploy") in kinds  # B probed A's deploy before dispatching


def test_hand_off_before_the_push_makes_the_fix_again(team: Team, tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    a = team.engine(db)
    hotfix_id = team.start(a)
    stop_after("before_effect", "push")  # the fix commit exists on A's laptop only
    with pytest.raises(Stop):
        a.drive(hotfix_id)
    failpoints.set_hook(None)
    lost = a.get(hotfix_id).context
    assert a.get(hotfix_id).state == "gates_passed"

    b = team.engine(db)
    b_tree = tmp_path / "machine-b"
    b_tree.mkdir()  # an empty directory is cloned into
    moved = prepare_work_tree(b, hotfix_id, b_tree)
    assert moved.state == "branched"
    assert "fix_sha" not in moved.context
    assert "gates" not in moved.context
    assert git(b_tree, "rev-parse", "HEAD") == lost["base_sha"]
    rewind = [e for e in b.journal(hotfix_id) if e.kind == "transition" and e.phase == "handoff"]
    assert len(rewind) == 1
    assert rewind[0].payload["from"] == "gates_passed"
    assert rewind[0].payload["to"] == "branched"
    assert rewind[0].payload["lost"]["fix_sha"] == lost["fix_sha"]
    assert "never pushed" in rewind[0].payload["reason"]

    outcome = b.drive(hotfix_id)
    assert outcome.state == "done", outcome
    done = b.get(hotfix_id).context
    team.assert_effects_once(done["branch"])
    pushes = [r for r in team.effects()["refs"] if r["ref"] == f"refs/heads/{done['branch']}"]
    assert pushes[0]["new"] == done["fix_sha"]  # A's lost commit never reached the remote
    assert git(b_tree, "cat-file", "-t", done["fix_sha"]) == "commit"


def test_hand_off_at_the_deploy_gate_into_an_existing_clone(
    store_url: str, team: Team, tmp_path: Path
) -> None:
    a = team.engine(store_url)
    hotfix_id = team.start(a, yes=False)
    paused = a.drive(hotfix_id)
    assert paused.state == "awaiting_deploy_approval"
    assert paused.paused_gate == "deploy"
    b = team.engine(store_url)
    hotfix = b.get(hotfix_id)
    branch, fix = hotfix.context["branch"], hotfix.context["fix_sha"]

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a clone\n")
    with pytest.raises(InvalidInput, match="not inside a git work tree"):
        prepare_work_tree(b, hotfix_id, junk)
    stranger = tmp_path / "stranger"
    git(tmp_path, "init", "-q", str(stranger))
    git(stranger, "remote", "add", "origin", str(tmp_path / "elsewhere.git"))
    with pytest.raises(InvalidInput, match="hotfix's remote is"):
        prepare_work_tree(b, hotfix_id, stranger)

    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", team.info.origin, str(clone))
    (clone / "app.py").write_text("# local experiment\n")
    with pytest.raises(UsageError, match="has changes"):
        prepare_work_tree(b, hotfix_id, clone)
    git(clone, "checkout", "-q", "--", "app.py")
    git(clone, "branch", "-q", branch, "origin/main")
    with pytest.raises(UsageError, match="already exists") as exists:
        prepare_work_tree(b, hotfix_id, clone)
    assert exists.value.hint
    assert "git branch -m" in exists.value.hint
    git(clone, "branch", "-q", "-D", branch)
    assert b.get(hotfix_id).repo == hotfix.repo  # every refusal changed nothing

    moved = prepare_work_tree(b, hotfix_id, clone)
    assert moved.repo == str(clone.resolve())
    assert moved.paused_gate == "deploy"  # still waiting for the same approval
    assert git(clone, "rev-parse", "HEAD") == fix
    assert b.journal(hotfix_id)[-1].payload["handoff"]["cloned"] is False
    b.approve(hotfix_id, "deploy", by="machine-b")
    assert b.drive(hotfix_id).state == "done"
    team.assert_effects_once(branch)


def test_same_remote_ignores_credentials_and_suffixes(tmp_path: Path) -> None:
    assert same_remote("https://user:tok@github.com/acme/shop.git", "https://github.com/acme/shop")
    assert same_remote("https://GitHub.com/acme/shop/", "https://github.com/acme/shop.git")
    assert same_remote(str(tmp_path / "origin.git"), f"file://{tmp_path}/origin.git")
    assert not same_remote("https://github.com/acme/shop", "https://github.com/acme/shop2")
    assert not same_remote("git@github.com:acme/shop.git", "git@github.com:other/shop.git")
