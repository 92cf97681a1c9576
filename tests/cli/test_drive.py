"""Drive real hotfixes with the ``hotfix`` command against a served sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from hotfix_fsm.errors import ExitCode
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.store import open_store
from tests.cli.conftest import Cli, Result

ISSUE = "INC-7"


def _no_hotfix_traceback(result: Result) -> None:
    """No traceback of our own code (a failing gate may quote the app's test output)."""
    for text in (result.out, result.err):
        assert "hotfix_fsm/" not in text or "Traceback" not in text, text


def _status(cli: Cli, ref: str) -> dict[str, object]:
    result = cli("status", ref, "--json")
    assert result.code == 0, result
    doc = json.loads(result.out)
    assert isinstance(doc, dict)
    return doc


def test_pause_at_deploy_gate_lease_held_then_approve_and_finish(
    cli: Cli, served: RunningSandbox, cli_env: dict[str, str], tmp_path: Path
) -> None:
    info = served.info
    work = Path(info.work)
    started = cli("start", ISSUE, "Fix token expiry check", "--cherry-pick", info.fix_sha, cwd=work)
    assert started.code == ExitCode.PAUSED, started
    _no_hotfix_traceback(started)
    assert f"hotfix approve {ISSUE}" in started.out or "hotfix approve" in started.out
    assert "deploy" in started.out
    doc = _status(cli, ISSUE)
    assert doc["schema"] == "hotfix-fsm/status@1"
    assert doc["state"] == "awaiting_deploy_approval"
    assert doc["paused"] == {"gate": "deploy", "reason": doc["paused"]["reason"]}  # type: ignore[index]
    hotfix_id = str(doc["id"])
    names = [p["name"] for p in doc["phases"]]  # type: ignore[union-attr]
    assert names[:3] == ["branch", "commit_fix", names[2]]
    assert {"gate:tests", "gate:build", "gate:audit", "push", "open_pr", "wait_ci"} <= set(names)
    assert all(p["status"] == "done" for p in doc["phases"] if p["name"] != "approve_deploy")  # type: ignore[union-attr, index]

    # Another driver holds the hotfix: resume is refused with exit 4, naming the holder.
    store = open_store(cli_env["HOTFIX_FSM_DB"])
    try:
        lease = store.acquire_lease(hotfix_id, "ops-laptop:4242:beef", ttl=300)
        held = cli("resume", hotfix_id)
        assert held.code == ExitCode.LEASE_HELD, held
        assert "ops-laptop:4242:beef" in held.err
        assert "Traceback" not in held.err
        no_confirm = cli("resume", hotfix_id, "--take-over")
        assert no_confirm.code == ExitCode.USAGE
        assert "--yes" in no_confirm.err
        store.release_lease(lease)
    finally:
        store.engine.dispose()

    approved = cli("approve", hotfix_id, "deploy")
    assert approved.code == 0, approved
    assert "deploy approved by" in approved.out
    resumed = cli("resume", hotfix_id)
    assert resumed.code == ExitCode.OK, resumed
    assert f"{hotfix_id}: done" in resumed.out

    final = _status(cli, hotfix_id)
    assert final["state"] == "done"
    assert final["paused"] is None
    facts = final["facts"]
    assert isinstance(facts, dict)
    assert facts["release_tag"] == "v1.0.1"
    assert facts["rollback_target"]["sha"] == info.production_sha

    # A deploy approval once it is done changes nothing: refused, nothing recorded.
    rows = len(json.loads(cli("log", hotfix_id, "--json").out)["entries"])
    late = cli("approve", hotfix_id, "deploy")
    assert late.code == ExitCode.USAGE, late
    assert "the hotfix is done; nothing to approve" in late.err
    assert "Traceback" not in late.err
    assert len(json.loads(cli("log", hotfix_id, "--json").out)["entries"]) == rows

    log = json.loads(cli("log", hotfix_id, "--json").out)
    assert log["schema"] == "hotfix-fsm/log@1"
    seqs = [e["seq"] for e in log["entries"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert {"seq", "at", "kind", "phase", "attempt", "key", "summary", "payload"} <= set(
        log["entries"][0]
    )

    listed = json.loads(cli("list", "--all", "--json").out)
    assert [h["id"] for h in listed["hotfixes"]] == [hotfix_id]

    report = cli("report", hotfix_id)
    assert report.code == 0
    text = report.out
    # A person approved this sha, but nobody reviewed the PR on GitHub.
    assert "- [ ] Fix implemented and code reviewed — fix " in text
    assert "(not a review: no approving review on the PR)" in text
    assert "- [x] Critical tests passing" in text
    assert "- [x] Production deployment triggered" in text
    assert "- [ ] Root cause identified — (for a person)" in text
    assert "- [ ] Post-mortem scheduled — (for a person)" in text
    assert "- [ ] Monitoring enabled (5-15 minutes) — monitored for" in text
    for line in text.splitlines():
        if line.startswith("- [x]"):
            assert "(journal #" in line, line

    effects = json.loads(cli("sandbox", "effects", info.root, "--json").out)
    deploys = [d for d in effects["dispatches"] if d["workflow"] == "deploy-production.yml"]
    assert len(deploys) == 1
    assert len(effects["pull_requests"]) == 2  # the hotfix PR and the back-merge PR
    assert effects["force_updates"] == []
    assert served.production.version == final["facts"]["deployed_sha"]  # type: ignore[index]

    # A manual rollback of the finished hotfix redeploys the recorded target.
    rolled = cli("rollback", hotfix_id, "--reason", "drill")
    assert rolled.code == ExitCode.OK, rolled  # 0: production runs the verified target
    assert f"{hotfix_id}: rolled_back" in rolled.out
    assert served.production.version == info.production_sha
    assert "- What the rollback did:" in cli("report", hotfix_id).out

    # The sandbox token never reaches an output, the JSON log or the store.
    state_dir = Path(cli_env.get("HOTFIX_FSM_STATE_DIR", tmp_path / "hotfix-state"))
    logs = list(state_dir.glob("hotfixes/*/log.jsonl"))
    assert logs, "the hotfix's JSON log was written"
    db_files = Path(cli_env["HOTFIX_FSM_DB"]).parent.glob("cli-store.db*")
    for blob in (
        report.out,
        json.dumps(log),
        json.dumps(final),
        *(p.read_text() for p in logs),
        *(f.read_bytes().decode("utf-8", "replace") for f in db_files),
    ):
        assert info.token not in blob


def test_manual_fix_pauses_at_the_fix_gate_and_abort_cancels(
    cli: Cli, served: RunningSandbox
) -> None:
    work = Path(served.info.work)
    started = cli("start", "INC-8", "Fix it by hand", cwd=work)
    assert started.code == ExitCode.PAUSED, started
    doc = _status(cli, "INC-8")
    assert doc["state"] == "awaiting_fix"
    aborted = cli("abort", "INC-8", "--reason", "drill over")
    assert aborted.code == 0, aborted
    assert ": cancelled" in aborted.out
    again = cli("abort", "INC-8")
    assert again.code == ExitCode.USAGE
    assert "cannot be aborted" in again.err
    assert "Traceback" not in again.err
    assert _status(cli, "INC-8")["state"] == "cancelled"


def test_failing_gates_fail_the_hotfix_before_github(cli: Cli, served: RunningSandbox) -> None:
    info = served.info
    result = cli(
        "start",
        ISSUE,
        "Rewrite token expiry",
        "--cherry-pick",
        info.broken_fix_sha,
        "--yes",
        cwd=Path(info.work),
    )
    assert result.code == ExitCode.FAILED, result
    _no_hotfix_traceback(result)
    assert "gate tests failed" in result.out or "gate tests failed" in result.err
    doc = _status(cli, ISSUE)
    assert doc["state"] == "failed"
    report = cli("report", ISSUE).out
    assert "- [ ] Critical tests passing — the tests gate failed" in report
    assert "- [x] Build successful" in report
    assert "- [ ] Emergency PR created — no record" in report
    assert "- [ ] Production deployment triggered — no record" in report
    effects = served.effects()
    assert effects["pull_requests"] == []
    assert effects["dispatches"] == []
