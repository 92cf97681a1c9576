"""The original workflow's checklist, ticked only from journaled evidence.

Each item is a function of the journal alone. A tick cites the sequence numbers of the rows
that prove it; an unticked item says what is missing. Items no journal row can prove stay
unticked with "(for a person)" — the tool never claims a root cause was found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.store import Hotfix, JournalEntry

FOR_A_PERSON = "(for a person)"
# The original asks for a 5-15 minute monitoring window.
MIN_MONITOR_SECONDS = 300.0


@dataclass
class ChecklistItem:
    text: str
    ticked: bool
    evidence: str = ""
    seqs: list[int] = field(default_factory=list)


@dataclass
class ChecklistSection:
    title: str
    items: list[ChecklistItem]


Finder = Callable[[Hotfix, Sequence[JournalEntry]], ChecklistItem]


def _facts(entry: JournalEntry) -> dict[str, Any]:
    facts = entry.payload.get("facts", entry.payload)
    return facts if isinstance(facts, dict) else {}


def last_end(journal: Sequence[JournalEntry], phase: str) -> JournalEntry | None:
    """The phase's last done/failed row (what it finally came to)."""
    for entry in reversed(journal):
        if entry.phase == phase and entry.kind in ("done", "failed"):
            return entry
    return None


def done_row(journal: Sequence[JournalEntry], phase: str) -> JournalEntry | None:
    end = last_end(journal, phase)
    return end if end is not None and end.kind == "done" else None


def _first_line(error: Any, limit: int = 160) -> str:
    """The gist of an error message: its first line, cut before any quoted output."""
    text = str(error or "").strip().splitlines()[0] if str(error or "").strip() else ""
    text = text.split("; last output:")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _person(text: str) -> ChecklistItem:
    return ChecklistItem(text, False, FOR_A_PERSON)


def _phase_item(text: str, phase: str, what: Callable[[dict[str, Any]], str]) -> Finder:
    def find(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
        row = done_row(journal, phase)
        if row is None:
            end = last_end(journal, phase)
            if end is not None:
                return ChecklistItem(
                    text,
                    False,
                    f"{phase} failed: {_first_line(end.payload.get('error'))}",
                    [end.seq],
                )
            return ChecklistItem(text, False, f"no record: {phase} never completed")
        return ChecklistItem(text, True, what(_facts(row)), [row.seq])

    return find


def _gate_item(text: str, gate: str) -> Finder:
    phase = f"gate:{gate}"

    def find(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
        end = last_end(journal, phase)
        if end is None:
            return ChecklistItem(text, False, f"no record: the {gate} gate never ran")
        if end.kind == "failed":
            return ChecklistItem(
                text,
                False,
                f"the {gate} gate failed: {_first_line(end.payload.get('error'))}",
                [end.seq],
            )
        sha = str(hotfix.context.get("fix_sha", ""))
        if sha and end.key and not end.key.endswith(sha):
            return ChecklistItem(
                text,
                False,
                f"the {gate} gate passed for another commit ({end.key}), not the fix {sha[:12]}",
                [end.seq],
            )
        facts = _facts(end)
        if facts.get("skipped"):
            return ChecklistItem(
                text, False, f"the {gate} gate was skipped ({facts.get('reason', '')})", [end.seq]
            )
        extra = f", exit code {facts['exit_code']}" if "exit_code" in facts else ""
        return ChecklistItem(
            text, True, f"{gate} gate passed for {sha[:12] or '?'}{extra}", [end.seq]
        )

    return find


def _fix_reviewed(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    text = "Fix implemented and code reviewed"
    row = done_row(journal, "commit_fix")
    if row is None:
        return ChecklistItem(text, False, "no record: the fix was never committed")
    sha = _facts(row).get("fix_sha") or hotfix.context.get("fix_sha")
    reviews = [
        e
        for e in journal
        if e.kind == "approval"
        and e.seq > row.seq
        and e.payload.get("gate") in ("fix", "deploy")
        and e.payload.get("sha") == sha
    ]
    if not reviews:
        return ChecklistItem(
            text,
            False,
            f"fix {str(sha)[:12]} committed "
            "but no person approved it (deploy approved by --yes/policy "
            "or not at all)",
            [row.seq],
        )
    who = ", ".join(sorted({str(e.payload.get("by")) for e in reviews}))
    return ChecklistItem(
        text,
        True,
        f"fix {str(sha)[:12]} committed and approved by {who}",
        [row.seq, reviews[0].seq],
    )


def _rollback_plan(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    text = "Rollback plan prepared"
    for entry in journal:
        target = _facts(entry).get("rollback_target") if entry.kind in ("done", "note") else None
        if isinstance(target, dict) and target.get("sha"):
            tag = f" (tag {target['tag']})" if target.get("tag") else ""
            return ChecklistItem(
                text,
                True,
                f"rollback target {str(target['sha'])[:12]}{tag} recorded before the deploy",
                [entry.seq],
            )
    return ChecklistItem(text, False, "no record: no rollback target was recorded")


def _pushed(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    text = "Changes committed and pushed"
    commit, push = done_row(journal, "commit_fix"), done_row(journal, "push")
    if commit is None or push is None:
        missing = "commit" if commit is None else "push"
        return ChecklistItem(
            text,
            False,
            f"no record of the {missing}",
            [r.seq for r in (commit, push) if r is not None],
        )
    sha = _facts(push).get("pushed_sha") or _facts(commit).get("fix_sha")
    return ChecklistItem(text, True, f"{str(sha)[:12]} pushed", [commit.seq, push.seq])


def _ci(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    text = "CI/CD checks passed"
    row = done_row(journal, "wait_ci")
    if row is None:
        end = last_end(journal, "wait_ci")
        if end is not None:
            return ChecklistItem(
                text, False, f"CI failed: {_first_line(end.payload.get('error'))}", [end.seq]
            )
        return ChecklistItem(text, False, "no record: CI was never waited for")
    ci = _facts(row).get("ci")
    if isinstance(ci, dict) and (
        ci.get("skipped") or ci.get("status") in ("skipped", "none") or ci.get("checks") == []
    ):
        return ChecklistItem(text, False, "CI was skipped or reported no checks", [row.seq])
    return ChecklistItem(text, True, _ci_text(ci), [row.seq])


def _ci_text(ci: Any) -> str:
    if isinstance(ci, dict):
        checks = ci.get("checks")
        if isinstance(checks, list) and checks:
            names = [str(c.get("name", c)) if isinstance(c, dict) else str(c) for c in checks]
            return "checks passed: " + ", ".join(names[:6])
        if ci.get("conclusion"):
            return f"CI concluded {ci['conclusion']}"
    return "CI passed"


def _monitor_summary(journal: Sequence[JournalEntry]) -> tuple[JournalEntry, dict[str, Any]] | None:
    """The last row carrying the monitor's summary (its done row, or a save before failing)."""
    for entry in reversed(journal):
        if entry.phase == "monitor" and entry.kind in ("done", "note"):
            summary = _facts(entry).get("monitor")
            if isinstance(summary, dict):
                return entry, summary
    return None


def _rounds(journal: Sequence[JournalEntry], window_id: Any) -> list[JournalEntry]:
    return [
        e
        for e in journal
        if e.kind == "measurement" and e.phase == "monitor" and e.payload.get("window") == window_id
    ]


def _monitor_window(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    text = "Monitoring enabled (5-15 minutes)"
    found = _monitor_summary(journal)
    if found is None:
        return ChecklistItem(text, False, "no record: production was never monitored")
    row, summary = found
    if summary.get("verdict") == "skipped":
        return ChecklistItem(
            text, False, f"monitoring was skipped ({summary.get('reason')})", [row.seq]
        )
    window = _dict(summary.get("window"))
    rounds = _rounds(journal, window.get("id"))
    started = window.get("started_at")
    length = row.at - float(started) if isinstance(started, int | float) else None
    seqs = [row.seq] + ([rounds[0].seq] if rounds else [])
    if length is None:
        return ChecklistItem(
            text,
            False,
            f"monitored {len(rounds)} rounds but the window length was not recorded",
            seqs,
        )
    if row.kind != "done":
        return ChecklistItem(
            text,
            False,
            f"monitoring stopped after {length:.0f}s "
            f"({summary.get('verdict')}: {summary.get('reason', '')})",
            seqs,
        )
    if length < MIN_MONITOR_SECONDS:
        return ChecklistItem(
            text,
            False,
            f"monitored for {length:.0f}s only ({len(rounds)} "
            "rounds), shorter than the 5 minutes asked",
            seqs,
        )
    return ChecklistItem(
        text, True, f"monitored for {length / 60:.1f} min ({len(rounds)} rounds)", seqs
    )


def _metric_item(text: str, names: tuple[str, ...]) -> Finder:
    def find(_h: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
        found = _monitor_summary(journal)
        if found is None:
            return ChecklistItem(text, False, "no record: production was never monitored")
        row, summary = found
        metrics = _dict(summary.get("metrics"))
        chosen = {k: v for k, v in metrics.items() if any(n in k.lower() for n in names)}
        if not chosen:
            return ChecklistItem(text, False, "no record: no such metric was measured", [row.seq])
        window = _dict(summary.get("window"))
        rounds = _rounds(journal, window.get("id"))
        seqs = [rounds[0].seq, rounds[-1].seq] if rounds else []
        phases = {k: (v.get("phase") if isinstance(v, dict) else None) for k, v in chosen.items()}
        bad = {k: p for k, p in phases.items() if p != "successful"}
        if bad or row.kind != "done":
            what = ", ".join(f"{k}: {p}" for k, p in (bad or phases).items())
            return ChecklistItem(text, False, f"not normal ({what})", [*seqs, row.seq])
        shown = ", ".join(f"{k} successful" for k in chosen)
        return ChecklistItem(
            text, True, f"{shown} over {summary.get('rounds')} rounds", [*seqs, row.seq]
        )

    return find


def _verify_text(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "production answered healthy after the deploy"
    version = f", version {str(summary['version'])[:12]}" if summary.get("version") else ""
    return (
        f"healthy after {summary.get('checks', '?')} checks "
        f"(HTTP {summary.get('status', '?')}{version})"
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


SECTIONS: tuple[tuple[str, tuple[Finder, ...]], ...] = (
    (
        "Pre-Deployment",
        (
            lambda h, j: _person("Issue severity confirmed (Critical/High)"),
            lambda h, j: _person("Root cause identified"),
            _fix_reviewed,
            _gate_item("Critical tests passing", "tests"),
            _gate_item("Security scan passed", "audit"),
            _gate_item("Build successful", "build"),
            _rollback_plan,
        ),
    ),
    (
        "Deployment",
        (
            _phase_item(
                "Hotfix branch created from production",
                "branch",
                lambda f: f"branch {f.get('branch', '?')} from {str(f.get('base_sha', '?'))[:12]}",
            ),
            _pushed,
            _phase_item(
                "Emergency PR created",
                "open_pr",
                lambda f: f"PR #{f.get('pr_number', '?')} {f.get('pr_url', '')}".strip(),
            ),
            _ci,
            _phase_item(
                "Production deployment triggered",
                "deploy",
                lambda f: (
                    f"deploy run {f.get('deploy_run_id', '?')} "
                    f"(correlation {f.get('deploy_correlation_id', '?')})"
                ),
            ),
            _phase_item(
                "Health checks passing",
                "verify",
                lambda f: _verify_text(f.get("verify")),
            ),
        ),
    ),
    (
        "Post-Deployment",
        (
            _monitor_window,
            _metric_item("Error rates normal", ("error",)),
            _metric_item("Performance metrics normal", ("response", "latency")),
            lambda h, j: _person("User impact mitigated"),
            lambda h, j: _person("Incident documented"),
            lambda h, j: _person("Post-mortem scheduled"),
        ),
    ),
)


def build_checklist(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> list[ChecklistSection]:
    sections = []
    for title, finders in SECTIONS:
        items = []
        for finder in finders:
            item = finder(hotfix, journal)
            item.evidence = redact(item.evidence)
            items.append(item)
        sections.append(ChecklistSection(title, items))
    return sections


__all__ = ["FOR_A_PERSON", "ChecklistItem", "ChecklistSection", "build_checklist"]
