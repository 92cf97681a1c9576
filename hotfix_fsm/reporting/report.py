"""What a person reads: status, phase table, timeline and the post-mortem, all from the journal.

Nothing here looks at the world or guesses. The post-mortem's checklist — the original
workflow's pre-deployment, deployment and post-deployment items — ticks an item only when a
journal row proves it, and cites that row's sequence number; items no machine can prove
("Root cause identified", "Post-mortem scheduled") stay unticked, marked "(for a person)".
Every string that leaves this module passes ``hotfix_fsm.core.redact``.

The JSON documents (``status_document``, ``list_document``, ``log_document``) are the stable
``--json`` output of the command: keys are only ever added, never renamed or removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from hotfix_fsm.core import machine
from hotfix_fsm.core.outcome import HotfixLike, driven_now, next_action_for, possible_commands
from hotfix_fsm.core.redact import redact, redact_obj
from hotfix_fsm.phases.facts import FactKey, Facts, facts_of
from hotfix_fsm.store import Hotfix, JournalEntry

STATUS_SCHEMA = "hotfix-fsm/status@1"
LIST_SCHEMA = "hotfix-fsm/list@1"
LOG_SCHEMA = "hotfix-fsm/log@1"
# Facts worth showing in a status view, in this order.
KEY_FACTS: tuple[FactKey, ...] = (
    "branch",
    "base_sha",
    "fix_sha",
    "pushed_sha",
    "pr_number",
    "pr_url",
    "deploy_run_id",
    "deploy_run_url",
    "deployed_sha",
    "merge_sha",
    "release_tag",
    "backport_pr_url",
    "rollback_target",
    "time_to_production",
)
# Facts a timeline row of a done phase shows, in this order.
_SUMMARY_FACTS: tuple[FactKey, ...] = (
    "branch",
    "fix_sha",
    "pushed_sha",
    "pr_url",
    "deploy_run_url",
    "deployed_sha",
    "merge_sha",
    "release_tag",
    "backport_pr_url",
)
_PHASE_KINDS = ("intent", "done", "failed", "paused", "probe")


def redacted_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with every secret masked."""
    return cast("dict[str, Any]", redact_obj(doc))


def iso(ts: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC (seconds), or None."""
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def short(sha: Any) -> str:
    return str(sha)[:12] if sha else "-"


def whole(sha: Any) -> str:
    """A sha in full (``short``'s counterpart, for output where values must be whole)."""
    return str(sha) if sha else "-"


def fmt_duration(seconds: float | None) -> str:
    """A duration with its units: ``41.7 s``, ``2 min 5 s``, ``1 h 3 min`` (``-`` if None)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def human_time(ts: float | None) -> str:
    """An epoch time for a person: ``2026-11-30 01:20:45 UTC`` (``-`` if None)."""
    text = iso(ts)
    return text.replace("T", " ").replace("Z", " UTC") if text else "-"


def fact_text(key: str, value: Any) -> str:
    """A fact as a person reads it: durations with units, times in UTC, shas short."""
    if key == "time_to_production" and isinstance(value, int | float):
        return fmt_duration(float(value))
    if isinstance(value, dict):
        parts = []
        for k, v in value.items():
            if v in (None, "", False):
                continue
            if (k.endswith("_at") or k == "at") and isinstance(v, int | float):
                parts.append(f"{k} {human_time(float(v))}")
            elif k.endswith("_s") and isinstance(v, int | float):
                parts.append(f"{k[:-2]} {fmt_duration(float(v))}")
            else:
                parts.append(f"{k} {v}")
        return ", ".join(parts)
    return str(value)


# -- phases ---------------------------------------------------------------------------------


@dataclass
class PhaseRow:
    """One phase as the journal saw it."""

    name: str
    status: str  # done | failed | paused | running
    attempts: int
    started_at: float | None
    ended_at: float | None
    first_seq: int
    last_seq: int
    inferred: bool = False
    error: str | None = None
    skipped: str | None = None  # why the phase had nothing to do (its facts' reason)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "attempts": self.attempts,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "duration_s": None if self.duration is None else round(self.duration, 3),
            "inferred": self.inferred,
            "error": self.error,
            "skipped": self.skipped,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }


def skipped_reason(facts: Any) -> str | None:
    """Why a phase whose ``facts`` say ``skipped`` had nothing to do, else None."""
    if not isinstance(facts, dict):
        return None
    if facts.get("backport_skipped"):
        return redact(str(facts["backport_skipped"]))
    if not facts.get("skipped"):
        return None
    return redact(str(facts.get("reason") or "no reason recorded"))


def phase_rows(journal: Sequence[JournalEntry]) -> list[PhaseRow]:
    """Effectful phases (and gates) in the order they first ran, with durations."""
    rows: dict[str, PhaseRow] = {}
    for entry in journal:
        if entry.kind not in _PHASE_KINDS or not entry.phase:
            continue
        row = rows.get(entry.phase)
        if row is None:
            row = PhaseRow(entry.phase, "running", 0, None, None, entry.seq, entry.seq)
            rows[entry.phase] = row
        row.last_seq = entry.seq
        if entry.kind == "intent":
            row.attempts += 1
            if row.started_at is None:
                row.started_at = entry.at
            row.status, row.ended_at, row.error, row.inferred = "running", None, None, False
        elif entry.kind == "done":
            row.status, row.ended_at = "done", entry.at
            row.inferred = bool(entry.payload.get("inferred"))
            row.error = None
            row.skipped = skipped_reason(entry.payload.get("facts"))
        elif entry.kind in ("failed", "paused"):
            row.status, row.ended_at = entry.kind, entry.at
            row.error = redact(str(entry.payload.get("error") or ""))
    return list(rows.values())


# -- timeline -------------------------------------------------------------------------------


def _facts_summary(facts: Facts, cut: Callable[[Any], str] = short) -> str:
    skipped = skipped_reason(facts)
    parts = [f"skipped: {skipped}"] if skipped else []
    for key in _SUMMARY_FACTS:
        value = facts.get(key)
        if value:
            parts.append(f"{key}={cut(value) if key.endswith('sha') else value}")
    # A person's environment approval: its row's facts, never the hotfix's (it runs beside).
    env = cast("dict[str, Any]", facts).get("environment_approval")
    if isinstance(env, dict):
        parts.append(environment_approval_text(env))
    return ", ".join(parts)


def environment_approval_text(record: Mapping[str, Any]) -> str:
    """ "environment production approved by alice (as ann) for run 12 at …"."""
    envs = ", ".join(str(e) for e in record.get("environments") or []) or "?"
    who = str(record.get("approved_by") or "?")
    if record.get("by") and record.get("by") != who:
        who += f" (as {record['by']})"
    at = iso(record.get("at")) if isinstance(record.get("at"), int | float) else None
    text = f"environment {envs} approved by {who} for run {record.get('run_id')}"
    text += f" at {at}" if at else ""
    if record.get("comment"):
        text += f": {record['comment']}"
    return text


def summarize(entry: JournalEntry, *, full: bool = False) -> str:
    """One line of text for a journal row (shas cut to 12 characters unless ``full``)."""
    cut = whole if full else short
    p = entry.payload
    phase = entry.phase or ""
    kind = entry.kind
    if kind == "created":
        text = f"hotfix created for issue {p.get('issue', '?')} in {p.get('repo', '?')}"
    elif kind == "intent":
        text = f"{phase}: started (attempt {entry.attempt})"
        if entry.key:
            text += f", key {entry.key}"
    elif kind == "done":
        facts = p.get("facts", p)
        extra = _facts_summary(cast("Facts", facts), cut) if isinstance(facts, dict) else ""
        text = f"{phase}: done"
        if p.get("inferred"):  # adopt's rows name their evidence; a probe's do not
            by_adopt = p.get("inferred_from") or p.get("evidence")
            text += " (inferred by adopt)" if by_adopt else " (adopted after a probe)"
        text += f" — {extra}" if extra else ""
    elif kind in ("failed", "paused"):
        text = f"{phase}: {kind}: {p.get('error', '')}"
    elif kind == "pause":
        gate = f" [gate {p['gate']}]" if p.get("gate") else ""
        text = f"paused{gate}: {p.get('reason', '')}"
    elif kind == "probe":
        text = f"{phase}: probe says {p.get('status')}"
        text += f" ({p['reason']})" if p.get("reason") else ""
    elif kind == "transition":
        text = f"{p.get('from', '?')} → {p.get('to', '?')} ({phase})"
        for extra_key in ("note", "reason"):
            if p.get(extra_key):
                text += f" — {p[extra_key]}"
    elif kind == "approval":
        text = f"{p.get('by', '?')} approved {p.get('gate', '?')} for {cut(p.get('sha'))}"
        if p.get("comment"):
            text += f": {p['comment']}"
    elif kind == "measurement":
        text = f"{phase}: measured " + measurement_text(p, cut)
    elif kind == "alert":
        text = f"alert {p.get('event', '?')}: " + ", ".join(
            f"{k}={v}" for k, v in p.items() if k not in ("event", "owed")
        )
    elif kind == "alert_owed":
        text = f"alert {p.get('event', '?')} owed: {p.get('message', '')}"
    elif kind == "note":
        text = (phase + ": " if phase else "") + _note_text(p, cut)
    else:
        text = f"{kind} {phase} {p}"
    return redact(text)


def _note_text(p: dict[str, Any], cut: Callable[[Any], str] = short) -> str:
    facts = p.get("facts")
    if isinstance(facts, dict):
        parts = []
        for key, value in facts.items():
            if isinstance(value, dict):
                inner = ", ".join(
                    f"{k} {cut(v) if 'sha' in k else v}"
                    for k, v in value.items()
                    if k in ("sha", "tag", "branch", "id", "verdict", "reason")
                )
                parts.append(f"{key} ({inner})" if inner else key)
            elif isinstance(value, list):
                parts.append(f"{key} ({len(value)})")
            else:
                parts.append(f"{key}={cut(value) if 'sha' in key else value}")
        return "recorded " + "; ".join(parts)
    if "time_to_production_s" in p:
        verdict = "over" if p.get("breached") else "within"
        return (
            f"time to production {fmt_duration(float(p['time_to_production_s']))} "
            f"({verdict} the {fmt_duration(float(p.get('target_s') or 0))} target)"
        )
    return "note " + ", ".join(f"{k}={v}" for k, v in p.items())


def measurement_text(p: dict[str, Any], cut: Callable[[Any], str] = short) -> str:
    if isinstance(p.get("values"), dict):  # a monitor round: every metric at once
        verdicts = p["verdicts"] if isinstance(p.get("verdicts"), dict) else {}
        parts = [f"{k}={v} ({verdicts.get(k, '?')})" for k, v in p["values"].items()]
        errors = p.get("errors")
        if isinstance(errors, dict) and errors:
            parts.append("errors: " + ", ".join(f"{k}: {v}" for k, v in errors.items()))
        return f"round {int(p.get('round', 0)) + 1}: " + ", ".join(parts)
    if "healthy" in p:  # a health check (verify, rollback verify)
        state = "healthy" if p.get("healthy") else f"unhealthy ({p.get('reason', '')})"
        version = f", version {cut(p['version'])}" if p.get("version") else ""
        check = f"{p.get('check', 'health')} #{p.get('n', '?')}"
        return f"{check}: HTTP {p.get('status')} {state}{version}"
    name = p.get("metric") or p.get("name") or "?"
    return f"{name}={p.get('value')}"


def timeline(journal: Sequence[JournalEntry]) -> list[dict[str, Any]]:
    return [
        {"seq": e.seq, "at": iso(e.at), "kind": e.kind, "phase": e.phase, "summary": summarize(e)}
        for e in journal
    ]


# -- documents ------------------------------------------------------------------------------


def key_facts(hotfix: Hotfix) -> dict[str, Any]:
    facts = facts_of(hotfix)
    return {k: facts[k] for k in KEY_FACTS if facts.get(k) not in (None, "")}


def hotfix_next_action(hotfix: Hotfix) -> str:
    return next_action_for(hotfix)


def next_command(hotfix: HotfixLike) -> tuple[str, ...] | None:
    """The command of ``next_action`` as an argv (``("hotfix", "approve", ID, "deploy")``),
    or None when nothing is to be run (a finished hotfix, or a fix a person must edit first:
    then ``resume`` is the command once they have); a watch while a live driver moves it."""
    if driven_now(hotfix) is not None:
        return ("hotfix", "status", hotfix.id, "--watch")
    ok = possible_commands(
        hotfix.state,
        hotfix.paused_gate,
        failed_from=hotfix.failed_from,
        rollback_target="rollback_target" in hotfix.context,
    )
    if not ok["resume"]:
        return None
    if hotfix.paused_gate and hotfix.paused_gate != "fix" and ok["approve"]:
        return ("hotfix", "approve", hotfix.id, hotfix.paused_gate)
    return ("hotfix", "resume", hotfix.id)


@dataclass(frozen=True)
class HotfixStatus:
    """Where a hotfix stands: what ``HotfixEngine.status`` returns and ``hotfix status --json``
    prints (``as_json``). Times are epoch seconds (the JSON document: ISO 8601 UTC)."""

    id: str
    issue: str
    description: str
    repo: str
    state: str
    terminal: bool  # done, rolled back or cancelled: nothing more will happen
    phase: str | None  # the phase running or paused now, else the last one that ran
    paused: bool
    paused_gate: str | None  # fix, deploy, rollback (what ``approve`` takes) or None
    paused_reason: str | None
    error: str | None
    failed_from: str | None  # the state a failed hotfix stopped in
    next_action: str  # what a person should do, in words with the command
    next_command: tuple[str, ...] | None  # that command as an argv, or None
    pr_number: int | None
    pr_url: str | None
    deploy_run_id: int | None
    deploy_run_url: str | None
    release_tag: str | None
    backport_pr_url: str | None
    time_to_production_s: float | None  # from start to production verified healthy
    time_target_s: float | None  # the target it was measured against
    lease_holder: str | None  # the driver holding the hotfix (host:pid:id), if any
    lease_live: bool  # whether that driver's lease is still valid
    lease_since: float | None
    lease_expires_at: float | None
    created_at: float
    updated_at: float
    facts: dict[str, Any]  # the key facts (KEY_FACTS), redacted
    phases: tuple[PhaseRow, ...]
    journal_length: int
    # The latest rollback: why, who asked (``hotfix rollback --reason``) and when; else None.
    rollback: dict[str, Any] | None = None
    rollback_run_url: str | None = None  # the run that redeployed the rollback target
    revert_pr_url: str | None = None  # the PR that reverted the merge on production
    # The holder ran on this machine and its process has ended (resume takes over at once).
    lease_holder_gone: bool = False

    def as_json(self) -> dict[str, Any]:
        """The stable ``hotfix status --json`` document (keys are only ever added)."""
        lease = None
        if self.lease_holder:
            lease = {
                "owner": self.lease_holder,
                "since": iso(self.lease_since),
                "expires_at": iso(self.lease_expires_at),
                "live": self.lease_live,
                "holder_gone": self.lease_holder_gone,
            }
        doc = {
            "schema": STATUS_SCHEMA,
            "id": self.id,
            "issue": self.issue,
            "description": self.description,
            "repo": self.repo,
            "state": self.state,
            "terminal": self.terminal,
            "phase": self.phase,
            "paused": {"reason": self.paused_reason, "gate": self.paused_gate}
            if self.paused_reason
            else None,
            "error": self.error,
            "failed_from": self.failed_from,
            "next_action": self.next_action,
            "next_command": list(self.next_command) if self.next_command else None,
            "links": {
                "pr": self.pr_url,
                "deploy_run": self.deploy_run_url,
                "release_tag": self.release_tag,
                "backport_pr": self.backport_pr_url,
                "rollback_run": self.rollback_run_url,
                "revert_pr": self.revert_pr_url,
            },
            "time_to_production_s": self.time_to_production_s,
            "time_target_s": self.time_target_s,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "lease": lease,
            "facts": self.facts,
            "phases": [row.as_json() for row in self.phases],
            "journal_length": self.journal_length,
            "rollback": self.rollback,
        }
        return redacted_doc(doc)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return redact(str(value)) if value not in (None, "") else None


def _latest_rollback(journal: Sequence[JournalEntry]) -> dict[str, Any] | None:
    for entry in reversed(journal):
        if entry.kind == "transition" and entry.phase == "start_rollback":
            p = entry.payload
            return {
                "reason": _text(p.get("reason")),
                "by": _text(p.get("by")),
                "requested": "request_seq" in p,  # asked from another terminal
                "at": iso(entry.at),
            }
    return None


def build_status(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> HotfixStatus:
    """A hotfix's ``HotfixStatus`` from its row and journal (nothing is asked of the world)."""
    facts = facts_of(hotfix)
    rows = tuple(phase_rows(journal))
    current = next((r.name for r in reversed(rows) if r.status != "done"), None)
    phase = current or (rows[-1].name if rows else None)
    target = None
    for entry in journal:
        if entry.kind == "note" and "target_s" in entry.payload:
            target = entry.payload.get("target_s")
    ttp = facts.get("time_to_production")
    return HotfixStatus(
        id=hotfix.id,
        issue=hotfix.issue,
        description=redact(hotfix.description),
        repo=hotfix.repo,
        state=hotfix.state,
        terminal=hotfix.state in machine.TERMINAL,
        phase=phase,
        paused=bool(hotfix.paused_reason),
        paused_gate=hotfix.paused_gate,
        paused_reason=_text(hotfix.paused_reason),
        error=_text(hotfix.error),
        failed_from=hotfix.failed_from,
        next_action=hotfix_next_action(hotfix),
        next_command=next_command(hotfix),
        pr_number=_int(facts.get("pr_number")),
        pr_url=_text(facts.get("pr_url")),
        deploy_run_id=_int(facts.get("deploy_run_id")),
        deploy_run_url=_text(facts.get("deploy_run_url")),
        release_tag=_text(facts.get("release_tag")),
        backport_pr_url=_text(facts.get("backport_pr_url")),
        time_to_production_s=float(ttp) if isinstance(ttp, int | float) else None,
        time_target_s=float(target) if isinstance(target, int | float) else None,
        lease_holder=hotfix.lease_owner or None,
        lease_live=bool(hotfix.lease_owner) and hotfix.lease_live(),
        lease_holder_gone=hotfix.lease_holder_gone(),
        lease_since=hotfix.lease_acquired_at,
        lease_expires_at=hotfix.lease_expires_at,
        created_at=hotfix.created_at,
        updated_at=hotfix.updated_at,
        facts=redacted_doc(key_facts(hotfix)),
        phases=rows,
        journal_length=hotfix.last_seq,
        rollback=_latest_rollback(journal),
        rollback_run_url=_text(facts.get("rollback_run_url")),
        revert_pr_url=_revert_pr(facts.get("rollback_revert")),
    )


def _revert_pr(revert: Any) -> str | None:
    """The revert PR's page from the ``rollback_revert`` fact (a str: nothing was undone)."""
    return _text(revert.get("pr_url")) if isinstance(revert, dict) else None


def status_document(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> dict[str, Any]:
    """The stable ``hotfix status --json`` document (``build_status(...).as_json()``)."""
    return build_status(hotfix, journal).as_json()


def list_item(hotfix: Hotfix) -> dict[str, Any]:
    return {
        "id": hotfix.id,
        "issue": hotfix.issue,
        "description": hotfix.description,
        "state": hotfix.state,
        "paused_gate": hotfix.paused_gate,
        "paused": bool(hotfix.paused_reason),
        "created_at": iso(hotfix.created_at),
        "updated_at": iso(hotfix.updated_at),
        "next_action": hotfix_next_action(hotfix),
    }


def list_document(hotfixes: Iterable[Hotfix], *, include_finished: bool) -> dict[str, Any]:
    """The stable ``hotfix list --json`` document."""
    return redacted_doc(
        {
            "schema": LIST_SCHEMA,
            "include_finished": include_finished,
            "hotfixes": [list_item(h) for h in hotfixes],
        }
    )


def log_document(hotfix: Hotfix, journal: Sequence[JournalEntry]) -> dict[str, Any]:
    """The stable ``hotfix log --json`` document: every journal row, oldest first."""
    return redacted_doc(
        {
            "schema": LOG_SCHEMA,
            "hotfix": hotfix.id,
            "state": hotfix.state,
            "entries": [
                {
                    "seq": e.seq,
                    "at": iso(e.at),
                    "kind": e.kind,
                    "phase": e.phase,
                    "attempt": e.attempt,
                    "key": e.key,
                    "summary": summarize(e),
                    "payload": e.payload,
                }
                for e in journal
            ],
        }
    )


__all__ = [
    "LIST_SCHEMA",
    "LOG_SCHEMA",
    "STATUS_SCHEMA",
    "HotfixStatus",
    "PhaseRow",
    "build_status",
    "fact_text",
    "fmt_duration",
    "human_time",
    "iso",
    "list_document",
    "log_document",
    "next_command",
    "phase_rows",
    "status_document",
    "summarize",
    "timeline",
]
