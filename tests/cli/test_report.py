"""The report's view models over hand-written journals: ticks need evidence, secrets are masked."""

from __future__ import annotations

from typing import Any

from hotfix_fsm.core.redact import register_secret
from hotfix_fsm.reporting.checklist import FOR_A_PERSON, build_checklist
from hotfix_fsm.reporting.postmortem import render_markdown
from hotfix_fsm.reporting.report import list_document, phase_rows, status_document, summarize
from hotfix_fsm.store import Hotfix, JournalEntry

SHA = "a" * 40
T0 = 1_700_000_000.0


def _hotfix(state: str = "done", **context: Any) -> Hotfix:
    return Hotfix(
        id="INC-1-20240101-000000",
        issue="INC-1",
        description="Fix token expiry",
        repo="/repo",
        state=state,
        failed_from=None,
        paused_reason=None,
        paused_gate=None,
        error=None,
        context={"fix_sha": SHA, **context},
        options={"started_by": "ana"},
        graph_hash="x",
        created_at=T0,
        updated_at=T0 + 60,
        last_seq=0,
        lease_owner=None,
        lease_acquired_at=None,
        lease_expires_at=None,
        fencing_token=0,
    )


class Journal:
    def __init__(self) -> None:
        self.rows: list[JournalEntry] = []

    def add(
        self,
        kind: str,
        phase: str | None = None,
        payload: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        at: float | None = None,
    ) -> int:
        seq = len(self.rows) + 1
        self.rows.append(
            JournalEntry(
                "INC-1-20240101-000000", seq, at or T0 + seq, kind, phase, 1, key, payload or {}
            )
        )
        return seq

    def phase(
        self,
        name: str,
        facts: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        failed: str | None = None,
    ) -> int:
        self.add("intent", name, key=key)
        if failed:
            return self.add("failed", name, {"error": failed}, key=key)
        return self.add("done", name, {"facts": facts or {}}, key=key)


def _happy(monitor_seconds: float = 3.0) -> Journal:
    j = Journal()
    j.add("created", None, {"issue": "INC-1"})
    j.phase("branch", {"branch": "hotfix/INC-1", "base_sha": "b" * 40})
    j.phase("commit_fix", {"fix_sha": SHA})
    for gate in ("tests", "build", "audit"):
        j.add("intent", f"gate:{gate}", key=f"{gate}:{SHA}")
        j.add("done", f"gate:{gate}", {"exit_code": 0}, key=f"{gate}:{SHA}")
    j.phase("push", {"pushed_sha": SHA})
    j.phase("open_pr", {"pr_number": 1, "pr_url": "https://gh/pr/1"})
    j.phase("wait_ci", {"ci": {"checks": [{"name": "ci/test"}]}})
    j.phase("approve_deploy", {"deploy_approval": {"by": "policy", "auto": True}})
    j.add("note", "deploy", {"facts": {"rollback_target": {"sha": "b" * 40, "tag": "v1.0.0"}}})
    j.phase("deploy", {"deploy_run_id": 7, "deploy_correlation_id": "c-1"})
    j.phase("verify", {"verify": {"healthy": True, "checks": 1, "status": 200}})
    j.add("intent", "monitor")
    start = j.rows[-1].at
    j.add("note", "monitor", {"facts": {"monitor_window": {"id": "w", "started_at": start}}})
    j.add(
        "measurement",
        "monitor",
        {
            "window": "w",
            "round": 0,
            "values": {"error_rate": 0.1},
            "verdicts": {"error_rate": "success"},
        },
    )
    summary = {
        "verdict": "successful",
        "rounds": 1,
        "window": {"id": "w", "started_at": start},
        "metrics": {
            "error_rate": {"phase": "successful"},
            "response_time": {"phase": "successful"},
        },
    }
    j.add("done", "monitor", {"facts": {"monitor": summary}}, at=start + monitor_seconds)
    return j


def _items(hotfix: Hotfix, journal: Journal) -> dict[str, Any]:
    return {i.text: i for s in build_checklist(hotfix, journal.rows) for i in s.items}


def test_every_tick_cites_a_journal_row_and_people_items_stay_unticked() -> None:
    items = _items(_hotfix(), _happy())
    for text in (
        "Critical tests passing",
        "Security scan passed",
        "Build successful",
        "Rollback plan prepared",
        "Hotfix branch created from production",
        "Changes committed and pushed",
        "Emergency PR created",
        "CI/CD checks passed",
        "Production deployment triggered",
        "Health checks passing",
        "Error rates normal",
        "Performance metrics normal",
    ):
        assert items[text].ticked, (text, items[text])
        assert items[text].seqs, text
    for text in (
        "Issue severity confirmed (Critical/High)",
        "Root cause identified",
        "User impact mitigated",
        "Incident documented",
        "Post-mortem scheduled",
    ):
        assert not items[text].ticked
        assert items[text].evidence == FOR_A_PERSON
    # --yes approved the deploy: nobody reviewed the code.
    assert not items["Fix implemented and code reviewed"].ticked
    # A 3-second window is not the 5-15 minutes the checklist asks for.
    assert not items["Monitoring enabled (5-15 minutes)"].ticked
    assert _items(_hotfix(), _happy(monitor_seconds=420))[
        "Monitoring enabled (5-15 minutes)"
    ].ticked


def test_only_an_approving_github_review_ticks_code_reviewed() -> None:
    journal = _happy()
    journal.add("approval", "deploy", {"gate": "deploy", "by": "bo", "sha": "c" * 40})
    assert "bo" not in _items(_hotfix(), journal)["Fix implemented and code reviewed"].evidence
    seq = journal.add("approval", "deploy", {"gate": "deploy", "by": "bo", "sha": SHA})
    item = _items(_hotfix(), journal)["Fix implemented and code reviewed"]
    assert not item.ticked  # a deploy approval is not a code review
    assert seq in item.seqs
    assert "approved by bo (not a review" in item.evidence

    def review(user: str, state: str) -> dict[str, str]:
        return {"user": user, "state": state, "commit_id": SHA, "submitted_at": "2026-01-01"}

    journal.add("note", "merge", {"facts": {"merge_reviews": [review("al", "COMMENTED")]}})
    assert not _items(_hotfix(), journal)["Fix implemented and code reviewed"].ticked
    noted = journal.add(
        "note",
        "merge",
        {"facts": {"merge_reviews": [review("al", "APPROVED"), review("cy", "APPROVED")]}},
    )
    item = _items(_hotfix(), journal)["Fix implemented and code reviewed"]
    assert item.ticked
    assert noted in item.seqs
    assert "approved by al, cy (GitHub reviews)" in item.evidence


def test_failed_or_foreign_or_skipped_gates_leave_boxes_unticked() -> None:
    j = Journal()
    j.add("created")
    j.phase("commit_fix", {"fix_sha": SHA})
    j.add("intent", "gate:tests", key=f"tests:{SHA}")
    j.add(
        "failed",
        "gate:tests",
        {"error": "gate tests failed: exit 1; last output:\nboom"},
        key=f"tests:{SHA}",
    )
    j.add("intent", "gate:build", key=f"build:{'d' * 40}")
    j.add("done", "gate:build", {"exit_code": 0}, key=f"build:{'d' * 40}")
    j.add("intent", "gate:audit", key=f"audit:{SHA}")
    j.add("done", "gate:audit", {"skipped": True, "reason": "disabled"}, key=f"audit:{SHA}")
    items = _items(_hotfix("failed"), j)
    tests = items["Critical tests passing"]
    assert not tests.ticked
    assert tests.evidence == "the tests gate failed: gate tests failed: exit 1"
    assert not items["Build successful"].ticked
    assert "another commit" in items["Build successful"].evidence
    assert not items["Security scan passed"].ticked
    assert "skipped" in items["Security scan passed"].evidence
    for text in (
        "Emergency PR created",
        "Production deployment triggered",
        "Health checks passing",
        "Error rates normal",
    ):
        assert not items[text].ticked
        assert items[text].evidence.startswith("no record"), items[text]


def test_phase_rows_have_durations_and_attempts() -> None:
    j = Journal()
    j.add("intent", "push", at=T0)
    j.add("failed", "push", {"error": "network"}, at=T0 + 1)
    j.add("intent", "push", at=T0 + 5)
    j.add("done", "push", {"facts": {}, "inferred": True}, at=T0 + 7)
    j.add("intent", "open_pr", at=T0 + 8)
    rows = {r.name: r for r in phase_rows(j.rows)}
    assert rows["push"].status == "done"
    assert rows["push"].attempts == 2
    assert rows["push"].duration == 7
    assert rows["push"].inferred
    assert rows["open_pr"].status == "running"
    assert rows["open_pr"].duration is None


def test_secrets_never_reach_documents_or_markdown() -> None:
    secret = "sandbox-5ecre7-token-value"
    register_secret(secret)
    j = _happy()
    j.add("failed", "deploy", {"error": f"401 with token {secret}"})
    hotfix = _hotfix(pr_url=f"https://x/?t={secret}")
    text = render_markdown(hotfix, j.rows)
    assert secret not in text
    assert secret not in str(status_document(hotfix, j.rows))
    assert secret not in str(list_document([hotfix], include_finished=True))
    assert all(secret not in summarize(e) for e in j.rows)
    assert "***" in text


def _adopted(
    j: Journal, phase: str, facts: dict[str, Any], source: str | None, *, key: str | None = None
) -> int:
    payload: dict[str, Any] = {"facts": facts, "inferred": True, "evidence": "seen"}
    if source is not None:
        payload["inferred_from"] = source
    return j.add("done", phase, payload, key=key)


def test_inferred_rows_tick_only_what_they_carry_evidence_for() -> None:
    j = Journal()
    j.add("created", None, {"issue": "INC-1"})
    _adopted(j, "branch", {"branch": "hotfix/INC-1", "base_sha": "b" * 40}, "the branch")
    _adopted(j, "commit_fix", {"fix_sha": SHA}, "the commit")
    merged = "the PR being merged as cccccccccccc"
    for gate in ("tests", "build", "audit"):
        facts = {"gate": gate, "sha": SHA, "status": "inferred"}
        _adopted(j, f"gate:{gate}", facts, "the fix being on the remote", key=f"{gate}:{SHA}")
    _adopted(j, "push", {"pushed_sha": SHA}, "the fix being on the remote")
    _adopted(j, "open_pr", {"pr_number": 1, "pr_url": "https://gh/pr/1"}, "PR #1 existing")
    checks = [{"name": "ci/test", "state": "failed"}]
    _adopted(j, "wait_ci", {"ci": {"status": "inferred", "checks": checks}}, merged)
    run = {"deploy_run_id": 7, "deploy_conclusion": "failure"}
    _adopted(j, "deploy", run, merged)
    _adopted(j, "verify", {}, merged)
    _adopted(j, "monitor", {}, merged)
    target = {"sha": "b" * 40, "inferred": True, "note": "inferred by adopt: production's head"}
    items = _items(_hotfix("merged", rollback_target=target), j)

    for text in ("Hotfix branch created from production", "Emergency PR created"):
        assert items[text].ticked, items[text]  # the branch and the PR were read by adopt
        assert items[text].evidence.endswith("(read from the world by `hotfix adopt`)")
    assert items["Changes committed and pushed"].ticked
    for text, source in (
        ("Critical tests passing", "the fix being on the remote"),
        ("Security scan passed", "the fix being on the remote"),
        ("Build successful", "the fix being on the remote"),
        ("CI/CD checks passed", merged),  # GitHub said failed: adopt marked it inferred
        ("Production deployment triggered", merged),  # the run it found had failed
        ("Health checks passing", merged),
        ("Monitoring enabled (5-15 minutes)", merged),
        ("Error rates normal", merged),
        ("Rollback plan prepared", "production's head"),
    ):
        item = items[text]
        assert not item.ticked, item
        assert item.inferred, item
        assert item.evidence.startswith(f"inferred from {source} (`hotfix adopt`)"), item
        assert "; not ticked: needs " in item.evidence, item
    text = render_markdown(_hotfix("merged", rollback_target=target), j.rows)
    assert f"- [~] Health checks passing — inferred from {merged}" in text
    assert "- [x] Critical tests passing" not in text


def test_rows_adopted_before_they_named_a_source_and_rows_a_probe_adopted() -> None:
    j = Journal()
    j.add("intent", "gate:tests", key=f"tests:{SHA}")
    legacy = {"facts": {"status": "inferred"}, "inferred": True, "evidence": "implied by the push"}
    j.add("done", "gate:tests", legacy, key=f"tests:{SHA}")
    j.add("intent", "wait_ci")
    j.add("done", "wait_ci", {"facts": {}, "inferred": True, "evidence": "CI on the fix passed"})
    j.add("intent", "gate:build", key=f"build:{SHA}")
    j.add("probe", "gate:build", {"status": "done", "reason": "artifact found"})
    j.add("done", "gate:build", {"facts": {"status": "ok"}, "inferred": True})
    j.add("intent", "deploy")
    j.add("probe", "deploy", {"status": "done", "reason": ""})
    seq = j.add("done", "deploy", {"facts": {"deploy_run_id": 9}, "inferred": True})
    j.add("intent", "gate:audit", key=f"audit:{SHA}")
    j.add("done", "gate:audit", {"status": "passed"}, key=f"audit:{SHA}")
    items = _items(_hotfix(), j)

    tests = items["Critical tests passing"]
    assert not tests.ticked
    assert tests.inferred
    assert tests.evidence.startswith("inferred from what `hotfix adopt` found (implied by")
    ci = items["CI/CD checks passed"]  # an old adoption with CI disabled recorded no facts
    assert not ci.ticked
    assert ci.inferred
    build = items["Build successful"]
    assert not build.ticked
    assert build.evidence.startswith("inferred from a probe after a crash (artifact found)")
    deploy = items["Production deployment triggered"]  # the probe read the run from GitHub
    assert deploy.ticked
    assert deploy.seqs == [seq]
    assert deploy.evidence == "deploy run 9 (found by a probe after a crash)"
    audit = items["Security scan passed"]  # not inferred, but no exit code either
    assert not audit.ticked
    assert not audit.inferred
    assert audit.evidence == (
        "gate:audit is done but its row records no evidence; "
        "not ticked: needs the audit gate's exit code 0 on the fix commit"
    )
    text = render_markdown(_hotfix(), j.rows)
    assert "- [ ] Security scan passed — gate:audit is done" in text
    assert "- [~] Build successful — inferred from a probe after a crash" in text
