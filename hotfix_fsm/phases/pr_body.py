"""The emergency PR's title and body, from evidence only.

The original workflow ticked every testing box by hand and wrote "[List changes here]". Here
the changes are the fix's real commits and diffstat, a box is ticked only when the journal
holds a *done* row of that gate for this very fix sha with its exit code 0 (a row
``hotfix adopt`` inferred is no run), and the rollback plan names the commit and tag
production returns to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.phases.base import PhaseContext
from hotfix_fsm.reporting.checklist import gate_facts, gate_proof, inferred_source, is_inferred

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo

GATE_TITLES = {"tests": "Critical tests", "build": "Build", "audit": "Security audit"}
TITLE_LIMIT = 256


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str


@dataclass(frozen=True)
class GateLine:
    gate: str
    passed: bool
    detail: str


def pr_title(issue: str, description: str) -> str:
    first = (description.strip().splitlines() or [""])[0].strip()
    title = f"HOTFIX({issue}): {first}"
    return title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"


def _seconds(payload: dict[str, Any]) -> str:
    for key in ("duration_s", "duration", "seconds", "elapsed"):
        value = payload.get(key)
        if isinstance(value, int | float):
            return f" in {value:.1f}s"
    return ""


def gate_evidence(ctx: PhaseContext, fix_sha: str) -> list[GateLine]:
    """One line per gate, ticked only by a recorded *done* for ``fix_sha`` with its exit code
    0 (``report_checklist.gate_proof``): a gate row ``hotfix adopt`` inferred is not a run."""
    lines = []
    for gate in GATE_TITLES:
        rows = ctx.journal(
            phase=f"gate:{gate}", kinds=("done", "failed"), newest_first=True, limit=1
        )
        row = rows[0] if rows else None
        payload = dict(row.payload) if row else {}
        if isinstance(payload.get("facts"), dict):
            payload = {**payload, **payload["facts"]}
        skipped = bool(payload.get("skipped")) or payload.get("status") == "skipped"
        if row is None:
            lines.append(GateLine(gate, False, "not run"))
        elif row.kind == "failed":
            lines.append(GateLine(gate, False, f"FAILED: {payload.get('error', 'see journal')}"))
        elif row.key != f"{gate}:{fix_sha}":
            lines.append(GateLine(gate, False, "not run on this commit"))
        elif skipped:
            reason = payload.get("reason") or payload.get("note") or "disabled"
            lines.append(GateLine(gate, False, f"skipped ({reason})"))
        elif gate_proof(gate, fix_sha, gate_facts(row)) is None:  # no exit code, no tick
            how = f"inferred from {inferred_source(row, rows)}" if is_inferred(row) else "done"
            lines.append(GateLine(gate, False, f"{how}, but no exit code was recorded"))
        else:
            lines.append(GateLine(gate, True, f"passed on `{fix_sha[:12]}`{_seconds(payload)}"))
    return lines


def _commits(ctx: PhaseContext, git: GitRepo, base: str, head: str) -> list[Commit]:
    recorded = ctx.facts.get("fix_commits")
    if (
        isinstance(recorded, list)
        and recorded
        and all(isinstance(c, dict) and c.get("subject") for c in recorded)
    ):
        return [
            Commit(str(c.get("sha", "")), str(c["subject"]), str(c.get("author", "")))
            for c in recorded
        ]
    try:
        return [Commit(c["sha"], c["subject"], c["author"]) for c in git.commit_log(base, head)]
    except Exception:  # the body degrades to the recorded shas; the PR still opens
        return [Commit(str(c), "", "") for c in recorded or [] if isinstance(c, str)]


def _diffstat(ctx: PhaseContext, git: GitRepo, base: str, head: str) -> str:
    recorded = ctx.facts.get("diffstat")
    if isinstance(recorded, str) and recorded.strip():
        return recorded.strip()
    try:
        return git.diffstat(base, head, width=100).strip()
    except Exception as exc:  # shown in the body rather than failing the PR
        return f"(diffstat unavailable: {exc})"


def rollback_plan(ctx: PhaseContext, git: GitRepo, base: str) -> str:
    """The concrete rollback target as known now (the deploy records it for real)."""
    if not base:
        return "- **Target:** unknown — no production sha was recorded when the branch was cut"
    prefix = ctx.config.tag.prefix
    pattern = f"{prefix}[0-9]*" if ctx.config.tag.scheme == "patch" else None
    try:
        tag = git.describe(base, match=pattern) or git.describe(base)
    except Exception:  # a plan without a tag is still a plan
        tag = None
    rollback = ctx.config.rollback
    target = f"`{base[:12]}`" + (f" (release tag `{tag}`)" if tag else " (no release tag)")
    how = (
        f"dispatch `{rollback.workflow}` with the target"
        if rollback.workflow
        else f"redeploy the target with `{ctx.config.deploy.workflow}`"
    )
    policy = {
        "automatic": "automatically",
        "ask": "after `hotfix approve ... rollback`",
        "never": "only by hand (`hotfix rollback`)",
    }.get(rollback.policy, rollback.policy)
    return (
        f"- **Target:** {target} — the head of `{ctx.config.production_branch}` this hotfix "
        "was cut from. The deploy re-reads production's head just before dispatching and "
        "records it as the rollback target.\n"
        f"- **Trigger:** verification or monitoring failing; rollback runs {policy}.\n"
        f"- **How:** {how}, then verify health again.\n"
        f"- **After merge:** the fix is taken out of `{ctx.config.production_branch}` by a "
        f"{'revert PR' if rollback.after_merge == 'revert' else 'reset (needs approval)'}."
    )


def render_body(
    *, ctx: PhaseContext, commits: list[Commit], diffstat: str, gates: list[GateLine], plan: str
) -> str:
    hotfix = ctx.hotfix
    base = ctx.facts.get("base_sha", "")
    lines = [
        "## Emergency hotfix",
        "",
        f"**Issue**: {hotfix.issue}",
        f"**Severity**: {ctx.options.get('severity') or ctx.config.severity}",
        f"**Hotfix id**: `{hotfix.id}`",
        f"**Branch**: `{ctx.facts.get('branch')}` → `{ctx.config.production_branch}` "
        f"(cut from `{base[:12]}`)",
        "",
        "### Description",
        "",
        hotfix.description.strip(),
        "",
        "### Changes",
        "",
    ]
    if commits:
        lines += [
            f"- `{c.sha[:12]}` {c.subject}" + (f" ({c.author})" if c.author else "")
            for c in commits
        ]
    else:
        lines.append("- (no commit list recorded)")
    lines += ["", "```", diffstat or "(no changes)", "```", "", "### Testing", ""]
    lines += [f"- [{'x' if g.passed else ' '}] {GATE_TITLES[g.gate]} — {g.detail}" for g in gates]
    lines += [
        "",
        "### Rollback plan",
        "",
        plan,
        "",
        "_Opened by hotfix-fsm; boxes are ticked only from recorded gate results._",
    ]
    return redact("\n".join(lines))


def build_body(ctx: PhaseContext, git: GitRepo) -> str:
    fix_sha = ctx.facts.get("fix_sha", "")
    base = ctx.facts.get("base_sha", "")
    commits = _commits(ctx, git, base, fix_sha) if base and fix_sha else []
    diffstat = _diffstat(ctx, git, base, fix_sha) if base and fix_sha else ""
    return render_body(
        ctx=ctx,
        commits=commits,
        diffstat=diffstat,
        gates=gate_evidence(ctx, fix_sha),
        plan=rollback_plan(ctx, git, base),
    )
