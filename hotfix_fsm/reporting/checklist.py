"""The original workflow's checklist, ticked only from journaled evidence.

``CHECKLIST`` below is the one place that decides: a table of the checklist's lines, each
with the evidence that ticks it (``needs``, in words) and the function that looks for that
evidence in the journal. A line is ticked only from a row that *carries* its evidence — a
gate's done row with exit code 0 for the fix commit, a healthy answer from production's
health endpoint, a CI conclusion or a deploy run read from GitHub — and the tick cites that
row's sequence number; an unticked line says what is missing.

Who wrote the row does not decide, what it records does (``_judge``). A row marked
``inferred: true`` — rebuilt by ``hotfix adopt`` from the world, or written by the runner
when a probe found that a phase's effect had happened before a crash — ticks a line only
when it records the same evidence (adopt read the pull request, the CI checks and the
deploy run from GitHub; a probe read the pushed branch from the remote). An inferred row
without it leaves the line unticked and marked ``inferred``: it says what the row was
inferred from ("inferred from the PR being merged as …") and what would tick it. Items no
journal row can prove stay unticked with "(for a person)" — the tool never claims a root
cause was found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hotfix_fsm.core.redact import redact
from hotfix_fsm.phases.facts import (
    CIResult,
    Facts,
    GateResult,
    HealthSummary,
    MonitorSummary,
    MonitorWindowSummary,
    facts_of,
)
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
    # The line rests on an inferred row that lacks its evidence: shown "[~]", never ticked.
    inferred: bool = False


@dataclass
class ChecklistSection:
    title: str
    items: list[ChecklistItem]


@dataclass
class Found:
    """What a line's evidence function found in the journal."""

    ticked: bool
    evidence: str
    seqs: list[int] = field(default_factory=list)
    inferred: bool = False  # an inferred row without the line's evidence
    lacking: bool = False  # a row of the right phase, not inferred, without the evidence


Check = Callable[[Hotfix, Sequence[JournalEntry]], Found]
# A row's facts -> the evidence they carry for a line, in words; None when they carry none.
Proof = Callable[[Facts], str | None]


@dataclass(frozen=True)
class Line:
    """One checklist line: its text, the evidence that ticks it, and where that is looked for."""

    text: str
    needs: str
    check: Check


# -- rows ------------------------------------------------------------------------------------


def _facts(entry: JournalEntry) -> Facts:
    """The facts a phase's done row (or a ``ctx.save`` note) records."""
    facts = entry.payload.get("facts", entry.payload)
    return cast("Facts", facts) if isinstance(facts, dict) else {}


def gate_facts(entry: JournalEntry) -> GateResult:
    """The facts a gate's done row records."""
    facts = entry.payload.get("facts", entry.payload)
    return cast("GateResult", facts) if isinstance(facts, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def last_end(journal: Sequence[JournalEntry], phase: str) -> JournalEntry | None:
    """The phase's last done/failed row (what it finally came to)."""
    for entry in reversed(journal):
        if entry.phase == phase and entry.kind in ("done", "failed"):
            return entry
    return None


def done_row(journal: Sequence[JournalEntry], phase: str) -> JournalEntry | None:
    end = last_end(journal, phase)
    return end if end is not None and end.kind == "done" else None


def is_inferred(entry: JournalEntry) -> bool:
    """The row says it was inferred (by ``hotfix adopt``, or from a probe after a crash)."""
    return bool(entry.payload.get("inferred"))


def _by_adopt(entry: JournalEntry) -> bool:
    return bool(entry.payload.get("inferred_from") or entry.payload.get("evidence"))


def inferred_source(entry: JournalEntry, journal: Sequence[JournalEntry]) -> str:
    """What an inferred row was inferred from, in words ("the PR being merged as …")."""
    payload = entry.payload
    if payload.get("inferred_from"):
        return f"{payload['inferred_from']} (`hotfix adopt`)"
    if payload.get("evidence"):  # adopted before rows named their source
        return f"what `hotfix adopt` found ({payload['evidence']})"
    reason = ""
    for row in reversed(journal):
        if row.seq < entry.seq and row.kind == "probe" and row.phase == entry.phase:
            reason = str(row.payload.get("reason") or "")
            break
    return "a probe after a crash" + (f" ({reason})" if reason else "")


def _provenance(entry: JournalEntry) -> str:
    """Said after a tick from an inferred row: who read the evidence it records."""
    if not is_inferred(entry):
        return ""
    if _by_adopt(entry):
        return " (read from the world by `hotfix adopt`)"
    return " (found by a probe after a crash)"


def _judge(
    row: JournalEntry,
    journal: Sequence[JournalEntry],
    proof: str | None,
    seqs: list[int] | None = None,
) -> Found:
    """The rule for every line: a row ticks it only when the row carries its evidence.

    ``proof`` is that evidence in words (None: the row carries none). An inferred row
    without it says what it was inferred from; any other row says its evidence is missing.
    """
    cited = seqs or [row.seq]
    if proof is not None:
        return Found(True, proof + _provenance(row), cited)
    if is_inferred(row):
        return Found(False, "inferred from " + inferred_source(row, journal), cited, inferred=True)
    return Found(False, f"{row.phase} is done but its row records no evidence", cited, lacking=True)


def _first_line(error: Any, limit: int = 160) -> str:
    """The gist of an error message: its first line, cut before any quoted output."""
    text = str(error or "").strip().splitlines()[0] if str(error or "").strip() else ""
    text = text.split("; last output:")[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _for_a_person(_h: Hotfix, _j: Sequence[JournalEntry]) -> Found:
    return Found(False, FOR_A_PERSON)


# -- evidence, per line ----------------------------------------------------------------------


Cite = Callable[[Sequence[JournalEntry], JournalEntry], list[int]]


def _phase(phase: str, proof: Proof, cite: Cite | None = None) -> Check:
    """A line proven by the phase's done row, when its facts carry ``proof``."""

    def check(_h: Hotfix, journal: Sequence[JournalEntry]) -> Found:
        row = done_row(journal, phase)
        if row is None:
            end = last_end(journal, phase)
            if end is not None:
                return Found(
                    False, f"{phase} failed: {_first_line(end.payload.get('error'))}", [end.seq]
                )
            return Found(False, f"no record: {phase} never completed")
        evidence = proof(_facts(row))
        extra = cite(journal, row) if cite is not None and evidence is not None else []
        return _judge(row, journal, evidence, [row.seq, *extra])

    return check


def gate_proof(gate: str, sha: str, facts: GateResult) -> str | None:
    """A gate's evidence: exit code 0 from its command on the fix commit (and its log)."""
    code = facts.get("exit_code")
    if isinstance(code, bool) or not isinstance(code, int) or code != 0:
        return None
    log = f", log {facts['log']}" if facts.get("log") else ""
    return f"{gate} gate passed for {sha[:12] or '?'}, exit code 0{log}"


def _gate(gate: str) -> Check:
    phase = f"gate:{gate}"

    def check(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> Found:
        end = last_end(journal, phase)
        if end is None:
            return Found(False, f"no record: the {gate} gate never ran")
        if end.kind == "failed":
            return Found(
                False,
                f"the {gate} gate failed: {_first_line(end.payload.get('error'))}",
                [end.seq],
            )
        sha = facts_of(hotfix).get("fix_sha", "")
        if sha and end.key and not end.key.endswith(sha):
            return Found(
                False,
                f"the {gate} gate passed for another commit ({end.key}), not the fix {sha[:12]}",
                [end.seq],
            )
        facts = gate_facts(end)
        if facts.get("skipped"):
            return Found(
                False, f"the {gate} gate was skipped ({facts.get('reason', '')})", [end.seq]
            )
        return _judge(end, journal, gate_proof(gate, sha, facts))

    return check


def _github_reviews(journal: Sequence[JournalEntry]) -> JournalEntry | None:
    """The latest row recording the PR's reviews as the merge read them from GitHub."""
    found = None
    for entry in journal:
        if (
            entry.kind in ("note", "done")
            and entry.phase == "merge"
            and isinstance(_facts(entry).get("merge_reviews"), list)
            and not is_inferred(entry)
        ):
            found = entry
    return found


def _fix_reviewed(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> Found:
    row = done_row(journal, "commit_fix")
    if row is None:
        return Found(False, "no record: the fix was never committed")
    sha = _facts(row).get("fix_sha") or facts_of(hotfix).get("fix_sha")
    recorded = _github_reviews(journal)
    if recorded is not None:
        reviews = _facts(recorded).get("merge_reviews") or []
        latest: dict[str, str] = {}
        for review in reviews:
            if review.get("state") in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[str(review.get("user"))] = str(review.get("state"))
        approved = sorted(user for user, state in latest.items() if state == "APPROVED")
        if approved:
            pr = facts_of(hotfix).get("pr_number")
            return Found(
                True,
                f"fix {str(sha)[:12]} reviewed on PR #{pr}: approved by {', '.join(approved)} "
                "(GitHub reviews)",
                [row.seq, recorded.seq],
            )
    approvals = [
        e
        for e in journal
        if e.kind == "approval"
        and e.seq > row.seq
        and e.payload.get("gate") in ("fix", "deploy")
        and e.payload.get("sha") == sha
    ]
    if not approvals:
        return Found(
            False,
            f"fix {str(sha)[:12]} committed "
            "but no approving review on the PR and no person approved it (deploy approved "
            "by --yes/policy or not at all)",
            [row.seq],
        )
    who = ", ".join(sorted({str(e.payload.get("by")) for e in approvals}))
    return Found(
        False,
        f"fix {str(sha)[:12]} approved by {who} (not a review: no approving review on the PR)",
        [row.seq, approvals[0].seq],
    )


def _rollback_plan(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> Found:
    for entry in journal:
        target = _facts(entry).get("rollback_target") if entry.kind in ("done", "note") else None
        if isinstance(target, dict) and target.get("sha") and not target.get("inferred"):
            tag = f" (tag {target['tag']})" if target.get("tag") else ""
            return Found(
                True,
                f"rollback target {str(target['sha'])[:12]}{tag} recorded before the deploy",
                [entry.seq],
            )
    recorded = facts_of(hotfix).get("rollback_target")
    if isinstance(recorded, dict) and recorded.get("inferred"):  # computed by adopt afterwards
        how = str(recorded.get("note") or "").removeprefix("inferred by adopt: ")
        return Found(
            False,
            f"inferred from {how or 'what `hotfix adopt` found'} (`hotfix adopt`)",
            inferred=True,
        )
    return Found(False, "no record: no rollback target was recorded")


def _branch_proof(facts: Facts) -> str | None:
    if not facts.get("branch") or not facts.get("base_sha"):
        return None
    return f"branch {facts['branch']} from {str(facts['base_sha'])[:12]}"


def _pushed(_h: Hotfix, journal: Sequence[JournalEntry]) -> Found:
    commit, push = done_row(journal, "commit_fix"), done_row(journal, "push")
    if commit is None or push is None:
        missing = "commit" if commit is None else "push"
        return Found(
            False,
            f"no record of the {missing}",
            [r.seq for r in (commit, push) if r is not None],
        )
    seqs = [commit.seq, push.seq]
    if not _facts(commit).get("fix_sha"):
        return _judge(commit, journal, None, seqs)
    sha = _facts(push).get("pushed_sha")
    return _judge(push, journal, f"{str(sha)[:12]} pushed" if sha else None, seqs)


def _pr_proof(facts: Facts) -> str | None:
    if not facts.get("pr_number") and not facts.get("pr_url"):
        return None
    return f"PR #{facts.get('pr_number', '?')} {facts.get('pr_url', '')}".strip()


def _ci_text(ci: CIResult) -> str:
    checks = ci.get("checks")
    if isinstance(checks, list) and checks:
        names = [str(c.get("name", c)) if isinstance(c, dict) else str(c) for c in checks]
        return "checks passed: " + ", ".join(names[:6])
    return f"CI concluded {ci.get('conclusion')}"


def _ci_proof(ci: CIResult | None) -> str | None:
    """CI's evidence: a passing verdict read from GitHub, with its checks or conclusion."""
    if not isinstance(ci, dict) or ci.get("status", "passed") != "passed":
        return None
    checks = ci.get("checks")
    if (isinstance(checks, list) and checks) or ci.get("conclusion") == "success":
        return _ci_text(ci)
    return None


def _ci(_h: Hotfix, journal: Sequence[JournalEntry]) -> Found:
    row = done_row(journal, "wait_ci")
    if row is None:
        end = last_end(journal, "wait_ci")
        if end is not None:
            return Found(False, f"CI failed: {_first_line(end.payload.get('error'))}", [end.seq])
        return Found(False, "no record: CI was never waited for")
    ci = _facts(row).get("ci")
    if isinstance(ci, dict) and (
        ci.get("skipped") or ci.get("status") in ("skipped", "none", "no_checks")
    ):
        return Found(False, "CI was skipped or reported no checks", [row.seq])
    return _judge(row, journal, _ci_proof(ci))


def _deploy_proof(facts: Facts) -> str | None:
    """The deploy run read from GitHub (and, when recorded, its successful conclusion)."""
    run = facts.get("deploy_run_id")
    if run is None or facts.get("deploy_conclusion", "success") != "success":
        return None
    correlation = facts.get("deploy_correlation_id")
    return f"deploy run {run}" + (f" (correlation {correlation})" if correlation else "")


def _verify_text(summary: HealthSummary) -> str:
    version = f", version {str(summary['version'])[:12]}" if summary.get("version") else ""
    return (
        f"healthy after {summary.get('checks', '?')} checks "
        f"(HTTP {summary.get('status', '?')}{version})"
    )


def _health_proof(facts: Facts) -> str | None:
    """A health answer: verify's summary of production answering healthy, with its status."""
    summary = facts.get("verify")
    if not isinstance(summary, dict) or summary.get("healthy") is not True:
        return None
    status = summary.get("status")
    if isinstance(status, bool) or not isinstance(status, int):
        return None
    return _verify_text(summary)


def _health_answer(journal: Sequence[JournalEntry], row: JournalEntry) -> list[int]:
    """The last healthy verify measurement before ``row`` (the answer itself), if journaled."""
    for entry in reversed(journal):
        if (
            entry.seq < row.seq
            and entry.kind == "measurement"
            and entry.phase == "verify"
            and entry.payload.get("healthy") is True
        ):
            return [entry.seq]
    return []


def _monitor_summary(journal: Sequence[JournalEntry]) -> tuple[JournalEntry, MonitorSummary] | None:
    """The last row carrying the monitor's summary (its done row, or a save before failing)."""
    for entry in reversed(journal):
        if entry.phase == "monitor" and entry.kind in ("done", "note"):
            summary = _facts(entry).get("monitor")
            if isinstance(summary, dict):
                return entry, summary
    return None


def _monitor_unproven(
    journal: Sequence[JournalEntry], found: tuple[JournalEntry, MonitorSummary] | None
) -> Found | None:
    """The monitor's last done row when it carries no summary (an inferred row, say)."""
    done = done_row(journal, "monitor")
    if done is None or (found is not None and found[0].seq >= done.seq):
        return None
    return _judge(done, journal, None)


def _window(summary: MonitorSummary) -> MonitorWindowSummary:
    window = summary.get("window")
    return window if isinstance(window, dict) else {}


def _rounds(journal: Sequence[JournalEntry], window_id: Any) -> list[JournalEntry]:
    return [
        e
        for e in journal
        if e.kind == "measurement" and e.phase == "monitor" and e.payload.get("window") == window_id
    ]


def _monitor_window(_h: Hotfix, journal: Sequence[JournalEntry]) -> Found:
    found = _monitor_summary(journal)
    unproven = _monitor_unproven(journal, found)
    if unproven is not None:
        return unproven
    if found is None:
        return Found(False, "no record: production was never monitored")
    row, summary = found
    if summary.get("verdict") == "skipped":
        return Found(False, f"monitoring was skipped ({summary.get('reason')})", [row.seq])
    window = _window(summary)
    rounds = _rounds(journal, window.get("id"))
    started = window.get("started_at")
    length = row.at - float(started) if isinstance(started, int | float) else None
    seqs = [row.seq] + ([rounds[0].seq] if rounds else [])
    if length is None:
        return Found(
            False, f"monitored {len(rounds)} rounds but the window length was not recorded", seqs
        )
    if row.kind != "done":
        return Found(
            False,
            f"monitoring stopped after {length:.0f}s "
            f"({summary.get('verdict')}: {summary.get('reason', '')})",
            seqs,
        )
    if length < MIN_MONITOR_SECONDS:
        return Found(
            False,
            f"monitored for {length:.0f}s only ({len(rounds)} "
            "rounds), shorter than the 5 minutes asked",
            seqs,
        )
    return Found(True, f"monitored for {length / 60:.1f} min ({len(rounds)} rounds)", seqs)


def _metric(names: tuple[str, ...]) -> Check:
    def check(_h: Hotfix, journal: Sequence[JournalEntry]) -> Found:
        found = _monitor_summary(journal)
        unproven = _monitor_unproven(journal, found)
        if unproven is not None:
            return unproven
        if found is None:
            return Found(False, "no record: production was never monitored")
        row, summary = found
        metrics = _dict(summary.get("metrics"))
        chosen = {k: v for k, v in metrics.items() if any(n in k.lower() for n in names)}
        if not chosen:
            return Found(False, "no record: no such metric was measured", [row.seq])
        window = _window(summary)
        rounds = _rounds(journal, window.get("id"))
        seqs = [rounds[0].seq, rounds[-1].seq] if rounds else []
        phases = {k: (v.get("phase") if isinstance(v, dict) else None) for k, v in chosen.items()}
        bad = {k: p for k, p in phases.items() if p != "successful"}
        if bad or row.kind != "done":
            what = ", ".join(f"{k}: {p}" for k, p in (bad or phases).items())
            return Found(False, f"not normal ({what})", [*seqs, row.seq])
        shown = ", ".join(f"{k} successful" for k in chosen)
        return Found(True, f"{shown} over {summary.get('rounds')} rounds", [*seqs, row.seq])

    return check


# -- the table -------------------------------------------------------------------------------

PERSON = "a person's judgement"

CHECKLIST: tuple[tuple[str, tuple[Line, ...]], ...] = (
    (
        "Pre-Deployment",
        (
            Line("Issue severity confirmed (Critical/High)", PERSON, _for_a_person),
            Line("Root cause identified", PERSON, _for_a_person),
            Line(
                "Fix implemented and code reviewed",
                "an approving review of the PR, read from GitHub by the merge",
                _fix_reviewed,
            ),
            Line(
                "Critical tests passing",
                "the tests gate's exit code 0 on the fix commit",
                _gate("tests"),
            ),
            Line(
                "Security scan passed",
                "the audit gate's exit code 0 on the fix commit",
                _gate("audit"),
            ),
            Line(
                "Build successful",
                "the build gate's exit code 0 on the fix commit",
                _gate("build"),
            ),
            Line(
                "Rollback plan prepared",
                "a rollback target recorded before the deploy",
                _rollback_plan,
            ),
        ),
    ),
    (
        "Deployment",
        (
            Line(
                "Hotfix branch created from production",
                "the branch and the production commit it was cut from",
                _phase("branch", _branch_proof),
            ),
            Line(
                "Changes committed and pushed",
                "the fix commit and the sha the remote received",
                _pushed,
            ),
            Line(
                "Emergency PR created",
                "the pull request read from GitHub",
                _phase("open_pr", _pr_proof),
            ),
            Line(
                "CI/CD checks passed",
                "a passing CI verdict on the fix read from GitHub",
                _ci,
            ),
            Line(
                "Production deployment triggered",
                "a successful deploy run of the fix read from GitHub",
                _phase("deploy", _deploy_proof),
            ),
            Line(
                "Health checks passing",
                "a healthy answer from production's health endpoint (verify)",
                _phase("verify", _health_proof, _health_answer),
            ),
        ),
    ),
    (
        "Post-Deployment",
        (
            Line(
                "Monitoring enabled (5-15 minutes)",
                "a monitoring window of at least 5 minutes with its rounds",
                _monitor_window,
            ),
            Line(
                "Error rates normal",
                "error-rate metrics judged normal over the monitoring rounds",
                _metric(("error",)),
            ),
            Line(
                "Performance metrics normal",
                "response-time metrics judged normal over the monitoring rounds",
                _metric(("response", "latency")),
            ),
            Line("User impact mitigated", PERSON, _for_a_person),
            Line("Incident documented", PERSON, _for_a_person),
            Line("Post-mortem scheduled", PERSON, _for_a_person),
        ),
    ),
)


def checklist_item(line: Line, hotfix: Hotfix, journal: Sequence[JournalEntry]) -> ChecklistItem:
    """One line decided: ticked only with evidence and a cited row; else what it lacks."""
    found = line.check(hotfix, journal)
    evidence = found.evidence
    if found.inferred or found.lacking:
        evidence += f"; not ticked: needs {line.needs}"
    ticked = found.ticked and not found.inferred and bool(found.seqs)  # a tick cites its row
    return ChecklistItem(line.text, ticked, redact(evidence), list(found.seqs), found.inferred)


def declared_items(journal: Sequence[JournalEntry]) -> list[ChecklistItem]:
    """Lines a phase declared in the registry (``PhaseSpec.checklist``), one per phase.

    Its done row journals the line and the evidence its facts carry, so every reader of the
    store shows it whether or not the registry that added the phase is loaded here. The
    latest done row of the phase decides; an inferred one never ticks.
    """
    latest: dict[str, JournalEntry] = {}
    for entry in journal:
        if entry.kind == "done" and isinstance(entry.payload.get("checklist"), dict):
            latest[entry.phase or ""] = entry
    items = []
    for entry in latest.values():
        declared = entry.payload["checklist"]
        proof = declared.get("evidence")
        text = str(declared.get("line") or entry.phase)
        if proof:  # evidence the phase's facts carry, whoever recorded the row
            evidence = redact(f"{proof}{_provenance(entry)}")
            items.append(ChecklistItem(text, True, evidence, [entry.seq]))
        elif is_inferred(entry):
            why = f"inferred from {entry.payload.get('evidence') or 'a probe'}"
            items.append(
                ChecklistItem(
                    text,
                    False,
                    redact(f"{why}; not ticked: needs the phase's evidence"),
                    [entry.seq],
                    True,
                )
            )
        else:
            items.append(
                ChecklistItem(text, False, f"{entry.phase} recorded no evidence", [entry.seq])
            )
    return items


def build_checklist(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> list[ChecklistSection]:
    sections = [
        ChecklistSection(title, [checklist_item(line, hotfix, journal) for line in lines])
        for title, lines in CHECKLIST
    ]
    declared = declared_items(journal)
    if declared:
        sections.append(ChecklistSection("Added phases", declared))
    return sections


__all__ = [
    "CHECKLIST",
    "FOR_A_PERSON",
    "ChecklistItem",
    "ChecklistSection",
    "Line",
    "build_checklist",
    "checklist_item",
    "gate_facts",
    "gate_proof",
    "inferred_source",
    "is_inferred",
]
