"""The page rendered from hostile records: every field a person or a remote can put in the
store — issue, repository, lease owner, error, approval, rollback target, tag, phase and gate
names, alert events and targets — is text on the page, never markup."""

from __future__ import annotations

from dataclasses import replace

from hotfix_fsm.dashboard import page
from hotfix_fsm.store import Hotfix, JournalEntry
from tests.dashboard.test_server import Page, assert_nothing_injected

X = '"><img src=x onerror="window.__pwned=9">'  # each field below carries one
NOW = 1_800_000_000.0
RUN = 'https://example.test/run/1"><svg/onload=window.__pwned=8>'  # no space: still a link


def _row(seq: int, kind: str, phase: str | None, payload: dict[str, object]) -> JournalEntry:
    return JournalEntry("INC-9", seq, NOW - 100 + seq, kind, phase, 1, None, payload)


def hostile() -> tuple[Hotfix, list[JournalEntry]]:
    hotfix = Hotfix(
        id="INC-9-20260101-000000",
        issue=f"INC{X}",
        description=f"desc{X}",
        repo=f"/tmp/{X}",
        state="failed",
        failed_from="verifying",
        paused_reason=None,
        paused_gate=None,
        error=f"boom{X}",
        context={
            "branch": f"hotfix/{X}",
            "release_tag": f"v1{X}",
            "rollback_target": {"sha": f"abc{X}", "tag": f"v0{X}"},
            "pr_url": f"https://example.test/pr/1{X}",
            "pr_number": f"1{X}",
            "backport_pr_url": f"javascript:alert(1)//{X}",
            "deploy_run_url": RUN,
            "merge_reviews": [
                {
                    "user": f"rita{X}",
                    "state": "APPROVED",
                    "commit_id": f"def{X}",
                    "submitted_at": f"2026-01-01T00:00:00Z{X}",
                }
            ],
            "merge_required_reviews": 1,
        },
        options={"started_by": f"eve{X}"},
        graph_hash="h",
        created_at=NOW - 200,
        updated_at=NOW - 10,
        last_seq=9,
        lease_owner=f"host{X}:1:ab",
        lease_acquired_at=NOW - 50,
        lease_expires_at=NOW + 50,
        fencing_token=3,
    )
    journal = [
        _row(1, "intent", f"phase{X}", {}),
        _row(2, "failed", f"phase{X}", {"error": f"err{X}"}),
        _row(3, "approval", f"gate{X}", {"gate": f"gate{X}", "by": f"mallory{X}", "sha": X}),
        _row(4, "alert_owed", None, {"event": f"paused{X}", "message": X}),
        _row(5, "alert", None, {"event": f"failed{X}", "owed": 99, "delivered": [f"pd{X}"]}),
        _row(6, "transition", "fail", {"from": "verifying", "to": "failed", "reason": X}),
        _row(
            7,
            "done",
            "environment_approval",
            {
                "facts": {
                    "environment_approval": {
                        "environments": [f"production{X}"],
                        "approved_by": f"ann{X}",
                        "by": f"ann{X}",
                        "run_id": 12,
                        "at": NOW - 5,
                        "comment": f"ok{X}",
                    }
                }
            },
        ),
    ]
    return hotfix, journal


def test_every_stored_field_is_text_in_the_section() -> None:
    hotfix, journal = hostile()
    html = page.document("t", page.hotfix_section(hotfix, journal, NOW))
    parsed = Page(html)
    assert_nothing_injected(parsed)
    text = parsed.all_text()
    for shown in (
        f"INC{X}",
        f"/tmp/{X}",
        f"host{X}:1:ab",
        f"boom{X}",
        f"mallory{X}",
        f"v1{X}",
        f"v0{X}",
        f"hotfix/{X}",
        f"eve{X}",
        f"desc{X}",
        f"pd{X}",
        f"paused{X} owed since",
        f"javascript:alert(1)//{X}",
        f"https://example.test/pr/1{X}",  # a space in it: shown, not linked
        f"environment production{X} approved by ann{X} for run 12",
        f"ok{X}",
        f"approved by rita{X} at 2026-01-01T00:00:00Z{X}",
        "1 approving review(s) required by the branch's rules",
    ):
        assert shown in text, shown
    # Links only to http(s), their quotes kept inside the attribute.
    hrefs = [a.get("href") for t, a in parsed.tags if t == "a"]
    assert RUN in hrefs
    assert not [h for h in hrefs if h and h.startswith("javascript")]


def test_the_recent_table_escapes_a_finished_hotfix() -> None:
    hotfix, journal = hostile()
    done = replace(hotfix, state=f"done{X}")

    class Store:
        def list_hotfixes(self, *, include_finished: bool, limit: int) -> list[Hotfix]:
            return [done] if include_finished else []

        def journal(self, hotfix_id: str) -> list[JournalEntry]:
            return journal

    parsed = Page(page.overview(Store(), now=NOW))
    assert_nothing_injected(parsed)
    assert f"desc{X}" in parsed.all_text()
    assert f"done{X}" in parsed.all_text()
