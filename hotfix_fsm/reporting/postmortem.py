"""The post-mortem: timeline, evidence-only checklist, gates, measurements, approvals, rollback.

``build_report`` gathers everything from the journal as data; ``render_markdown`` is the
``hotfix report`` rendering of it. Every string passes ``hotfix_fsm.core.redact``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.core.sanitize import sanitize
from hotfix_fsm.phases.facts import facts_of
from hotfix_fsm.reporting.charts import (
    gantt_mermaid,
    mermaid_text,
    metric_note,
    metric_series,
    phase_spans,
    xychart_mermaid,
)
from hotfix_fsm.reporting.checklist import (
    ChecklistItem,
    ChecklistSection,
    build_checklist,
    inferred_source,
    is_inferred,
)
from hotfix_fsm.reporting.report import (
    PhaseRow,
    fmt_duration,
    iso,
    measurement_text,
    phase_rows,
    redacted_doc,
    short,
    summarize,
    timeline,
)
from hotfix_fsm.store import Hotfix, JournalEntry

REPORT_SCHEMA = "hotfix-fsm/report@1"


@dataclass
class Report:
    """Everything the post-mortem shows, as data (the markdown is one rendering of it)."""

    hotfix: Hotfix
    phases: list[PhaseRow]
    checklist: list[ChecklistSection]
    gates: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    rollback: list[dict[str, Any]] = field(default_factory=list)
    time_to_production: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return redacted_doc(
            {
                "schema": REPORT_SCHEMA,
                "hotfix": self.hotfix.id,
                "issue": self.hotfix.issue,
                "description": self.hotfix.description,
                "state": self.hotfix.state,
                "phases": [p.as_json() for p in self.phases],
                "checklist": [asdict(s) for s in self.checklist],
                "gates": self.gates,
                "measurements": self.measurements,
                "approvals": self.approvals,
                "rollback": self.rollback,
                "time_to_production": self.time_to_production,
                "timeline": self.timeline,
            }
        )


def build_report(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> Report:
    gates = []
    for entry in journal:
        if entry.phase and entry.phase.startswith("gate:") and entry.kind in ("done", "failed"):
            facts = entry.payload.get("facts", entry.payload)
            gates.append(
                {
                    "seq": entry.seq,
                    "gate": entry.phase[5:],
                    "result": entry.kind,
                    "key": entry.key,
                    "at": iso(entry.at),
                    "details": facts,
                }
            )
    measurements = [
        {**e.payload, "seq": e.seq, "at": iso(e.at), "phase": e.phase}
        for e in journal
        if e.kind == "measurement"
    ]
    approvals = [
        {
            "seq": e.seq,
            "at": iso(e.at),
            "gate": e.payload.get("gate"),
            "by": e.payload.get("by"),
            "sha": e.payload.get("sha"),
            "comment": e.payload.get("comment"),
        }
        for e in journal
        if e.kind == "approval"
    ]
    rollback = [
        {"seq": e.seq, "at": iso(e.at), "kind": e.kind, "phase": e.phase, "summary": summarize(e)}
        for e in journal
        if (e.phase or "").startswith("rollback")
        or e.phase in ("start_rollback", "finish_rollback")
    ]
    ttp = None
    for e in journal:
        if e.kind == "note" and "time_to_production_s" in e.payload:
            ttp = {"seq": e.seq, **e.payload}
    return Report(
        hotfix=hotfix,
        phases=phase_rows(journal),
        checklist=build_checklist(hotfix, journal),
        gates=gates,
        measurements=measurements,
        approvals=approvals,
        rollback=rollback,
        time_to_production=ttp,
        timeline=timeline(journal),
    )


def _no_backtick(text: str) -> str:
    return text.replace("`", "'")


def _fence(mermaid: str) -> list[str]:
    return ["```mermaid", *mermaid.splitlines(), "```"]


def _chart_section(journal: Sequence[JournalEntry]) -> list[str]:
    """Each monitored metric of each monitoring window as a chart with its thresholds."""
    series = metric_series(journal)
    out = ["", "## Monitoring charts", ""]
    if not series:
        return [*out, "- no monitoring window was measured"]
    for s in series:
        name, window = _md_escape(mermaid_text(s.metric)), _md_escape(mermaid_text(s.window))
        out.append(f"### {name} (window {window})")
        out.append("")
        if s.numeric:
            out += _fence(xychart_mermaid(s))
            out.append("")
            out.append(
                "The first line is the measured value; the flat lines are the thresholds ("
                + ", ".join(
                    f"{name} `{_no_backtick(cond)}`"
                    for name, cond in (("success", s.success), ("failure", s.failure))
                    if cond
                )
                + ")."
                if s.success or s.failure
                else "No thresholds were recorded for this window."
            )
        note = metric_note(s)
        if note:
            out.append(f"- {note}")
        out.append("")
    return out[:-1]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _item_line(item: ChecklistItem) -> str:
    box = "[x]" if item.ticked else "[~]" if item.inferred else "[ ]"
    line = f"- {box} {item.text}"
    if item.evidence:
        line += " — " + _md_escape(item.evidence)
    if item.seqs:
        line += " (journal " + ", ".join(f"#{s}" for s in item.seqs) + ")"
    return line


def _commit_lines(commits: object) -> list[str]:
    """The fix's commits and who made each: the engineer's kept as they were, or the tool's."""
    if not isinstance(commits, list) or not commits:
        return []
    out = ["- Fix commits:"]
    for c in commits:
        if not isinstance(c, dict):
            continue
        author = str(c.get("author") or "author not recorded")
        made = (
            f"made by hotfix_fsm from the changes left uncommitted (as {author})"
            if c.get("by_tool")
            else f"by {author}"
        )
        out.append(f"  - `{short(c.get('sha'))}` {_md_escape(str(c.get('subject', '')))} — {made}")
    return out


def render_markdown(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> str:
    """The ``hotfix report`` document (markdown)."""
    rep = build_report(hotfix, journal)
    facts = facts_of(hotfix)
    out: list[str] = [f"# Post-mortem: {hotfix.issue} — {hotfix.description.splitlines()[0]}"]
    out += [
        "",
        f"- Hotfix: `{hotfix.id}`",
        f"- Outcome: **{hotfix.state}**" + (f" (error: {hotfix.error})" if hotfix.error else ""),
        f"- Started: {iso(hotfix.created_at)} by {hotfix.options.get('started_by', '?')}",
        f"- Last change: {iso(hotfix.updated_at)}",
        f"- Repository: `{hotfix.repo}`",
        f"- Severity (as started): {hotfix.options.get('severity', '?')}",
        f"- Fix mode: {hotfix.options.get('fix_mode', '?')}",
    ]
    out += _commit_lines(facts.get("fix_commits"))
    if rep.time_to_production:
        t = rep.time_to_production
        target = t.get("target_s")
        verdict = "over" if t.get("breached") else "within"
        out.append(
            f"- Time to production: {fmt_duration(float(t['time_to_production_s']))} "
            f"({verdict} the {fmt_duration(float(target)) if target else '?'} target; "
            f"journal #{t['seq']})"
        )
    else:
        out.append(
            "- Time to production: not reached (production was never verified healthy with the fix)"
        )
    out += [
        "",
        "## Checklist",
        "",
        "Ticked only where the journal proves it; each tick cites the journal rows. "
        "`[~]` marks a line resting on a row inferred (by `hotfix adopt`, or from a probe "
        "after a crash) without the evidence that would tick it.",
        "",
    ]
    for section in rep.checklist:
        out += [f"### {section.title}", ""]
        out += [_item_line(item) for item in section.items]
        out.append("")
    out += [
        "## Phases",
        "",
        "| Phase | Status | Attempts | Duration | Notes |",
        "|---|---|---|---|---|",
    ]
    inferred_by = {
        e.phase: "inferred from " + inferred_source(e, journal)
        for e in journal
        if e.kind == "done" and is_inferred(e)
    }
    for row in rep.phases:
        note = (
            inferred_by.get(row.name, "inferred")
            if row.inferred
            else (row.error or (f"skipped: {row.skipped}" if row.skipped else ""))
        )
        out.append(
            f"| {row.name} | {row.status} | {row.attempts} | "
            f"{fmt_duration(row.duration)} | {_md_escape(note)} |"
        )
    out += ["", "## Gate results", ""]
    if rep.gates:
        for g in rep.gates:
            details = g["details"] if isinstance(g["details"], dict) else {}
            bits = [
                f"{k}={v}"
                for k, v in details.items()
                if k
                in ("exit_code", "duration_s", "command", "log", "artifact", "skipped", "reason")
            ]
            out.append(
                f"- {g['gate']}: **{g['result']}** (journal #{g['seq']})"
                + (" — " + _md_escape(", ".join(bits)) if bits else "")
            )
    else:
        out.append("- no gate ran")
    out += ["", "## Measurements", ""]
    if rep.measurements:
        out += ["| # | Time | Phase | Measurement |", "|---|---|---|---|"]
        for m in rep.measurements:
            fields = {k: v for k, v in m.items() if k not in ("seq", "at", "phase")}
            out.append(
                f"| {m['seq']} | {m['at']} | {m['phase']} | "
                f"{_md_escape(measurement_text(fields))} |"
            )
    else:
        out.append("- no measurement was recorded")
    out += _chart_section(journal)
    out += ["", "## Approvals", ""]
    if rep.approvals:
        for a in rep.approvals:
            out.append(
                f"- {a['gate']}: approved by {a['by']} at {a['at']} for "
                f"`{short(a['sha'])}` (journal #{a['seq']})"
                + (f": “{_md_escape(str(a['comment']))}”" if a.get("comment") else "")
            )
    else:
        auto = facts.get("deploy_approval")
        if isinstance(auto, dict) and auto.get("auto"):
            out.append(
                "- deploy: approved automatically (--yes or deploy.approval = auto); "
                "no person reviewed it"
            )
        else:
            out.append("- none recorded")
    out += ["", "## Rollback", ""]
    target = facts.get("rollback_target")
    if isinstance(target, dict):
        out.append(
            f"- Plan: redeploy `{short(target.get('sha'))}`"
            + (f" (tag {target['tag']})" if target.get("tag") else "")
            + " with the rollback workflow if verification or monitoring fails"
        )
    else:
        out.append("- Plan: none recorded (the hotfix never reached the deploy)")
    if rep.rollback:
        out.append("- What the rollback did:")
        out += [f"  - #{r['seq']} {r['at']} {_md_escape(r['summary'])}" for r in rep.rollback]
    else:
        out.append("- No rollback was needed or started")
    out += ["", "## Timeline", ""]
    out += _fence(gantt_mermaid(phase_spans(journal), f"{hotfix.id} phases"))
    out += ["", "| # | Time (UTC) | Event |", "|---|---|---|"]
    out += [f"| {t['seq']} | {t['at']} | {_md_escape(t['summary'])} |" for t in rep.timeline]
    out.append("")
    # Outside text (descriptions, URLs, check names, health answers) cannot drive a terminal
    # that shows the report, nor hide text from a Markdown reader: control characters and
    # bidi overrides are shown escaped; the report's own line breaks stay.
    return sanitize(redact("\n".join(out)), keep_newlines=True)


__all__ = ["REPORT_SCHEMA", "Report", "build_report", "render_markdown", "report_document"]


def postmortem_markdown(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> str:
    """The ``hotfix report`` document (Markdown)."""
    return render_markdown(hotfix, journal)


def report_document(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> dict[str, Any]:
    """The stable ``hotfix report --json`` document (keys are only ever added)."""
    return build_report(hotfix, journal).as_json()
