"""The fix commit: the engineer's edit, cherry-picks or a patch, committed before the gates.

Commits the engineer made on the hotfix branch are kept as they are (sha, author, message);
only uncommitted changes are committed by the tool, as its own commit carrying the trailers
``Hotfix-Id: <this hotfix>`` and ``Hotfix-Issue``. ``fix_sha`` is that commit, or the
engineer's last commit when nothing was left uncommitted.

``CommitFix`` records ``fix_sha``, ``fix_commits`` [{sha, subject, author, by_tool}],
``fix_mode``, ``diffstat`` and, when relevant, ``kept_commits`` (the engineer's own),
``cherry_picked``, ``resolved_by_hand``, ``patch`` and ``fix_approval``. Its probe looks for
the tool's commit (the trailer is the idempotency key); without one it says "not done" and the
phase runs again, which takes the engineer's commits as they stand (it changes nothing then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from hotfix_fsm.adapters.git import GitRepo
from hotfix_fsm.core.redact import redact
from hotfix_fsm.core.validate import first_line
from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.approval import latest_approval
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import CommitRef, FixFacts, commit_refs

TRAILER_ID = "Hotfix-Id"
TRAILER_ISSUE = "Hotfix-Issue"


def require_clean(git: GitRepo, ctx: PhaseContext, doing: str) -> None:
    """PermanentError when the work tree has changes (which ``doing`` would carry along)."""
    dirty = git.status()
    if dirty:
        raise PermanentError(
            f"the work tree {git.work_tree} has changes ({', '.join(e[3:] for e in dirty[:5])})"
            f"; refusing to carry them into the hotfix when {doing}",
            hint=f"commit, stash or remove them, then `hotfix resume {ctx.hotfix.id}`",
        )


def fix_message(issue: str, description: str, hotfix_id: str) -> str:
    """``HOTFIX(<ISSUE>): <first line>``, the full description, then the hotfix trailers."""
    text = description.strip("\n")
    lines = text.strip().splitlines()
    subject = f"HOTFIX({issue}): {first_line(lines[0] if lines else '')}"
    return f"{subject}\n\n{text}\n\n{TRAILER_ID}: {hotfix_id}\n{TRAILER_ISSUE}: {issue}\n"


class CommitFix(BasePhase):
    """Commit the fix on the hotfix branch: manual edit, cherry-picks or a patch file."""

    name = "commit_fix"

    def probe(self, ctx: PhaseContext) -> Probe:
        git = ctx.services.git
        branch, base = ctx.facts.get("branch", ""), ctx.facts.get("base_sha", "")
        tip = git.local_branch_sha(branch) if branch else None
        if tip is None:
            return Probe.unknown(f"the hotfix branch {branch!r} does not exist locally")
        found = git.find_commit_with_trailer(base, tip, TRAILER_ID, ctx.hotfix.id)
        if found is None:
            return Probe.not_done(
                f"no commit on {branch} carries {TRAILER_ID}: {ctx.hotfix.id} (the engineer's "
                "own commits, if any, are taken as they are when the phase runs again)"
            )
        return Probe.done(
            self._facts(ctx, git, found, self._mode(ctx), self._adopted(ctx, git), tool_sha=found)
        )

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        git = ctx.services.git
        branch, base = ctx.facts.get("branch", ""), ctx.facts.get("base_sha", "")
        if not branch or not base:
            raise PermanentError(
                "no hotfix branch is recorded; the branch phase did not run",
                hint=f"`hotfix status {ctx.hotfix.id}` shows the history",
            )
        if git.current_branch() != branch:
            require_clean(git, ctx, f"switching back to {branch}")
            git.checkout(branch)
        head = git.head_sha()
        found = git.find_commit_with_trailer(base, head, TRAILER_ID, ctx.hotfix.id)
        if found is not None:  # committed by an earlier attempt: adopt it
            extra = self._adopted(ctx, git)
            return {**self._facts(ctx, git, found, self._mode(ctx), extra, tool_sha=found)}
        if head != base and not git.is_ancestor(base, head):
            raise PermanentError(
                f"{branch} no longer contains the production head {base[:12]}",
                hint=f"reset it (`git reset --keep {base[:12]}`), re-apply the fix, resume",
            )
        operation = git.operation_in_progress()
        if operation:
            raise NeedsHuman(
                f"a {operation} is in progress in {git.work_tree}",
                gate="fix",
                hint=f"finish or abort it, then `hotfix resume {ctx.hotfix.id}`",
            )
        mode = self._mode(ctx)
        if mode == "manual":
            return {**self._manual(ctx, git, base, head, mode=mode, extra={})}
        if mode not in ("cherry-pick", "patch"):
            raise PermanentError(
                f"unknown fix mode {mode!r}",
                hint="start the hotfix again with --cherry-pick or --patch",
            )
        if self._conflicted_before(ctx) and (head != base or not git.is_clean()):
            return {
                **self._manual(ctx, git, base, head, mode=mode, extra={"resolved_by_hand": True})
            }
        if head != base:
            raise PermanentError(
                f"{branch} has commits without the {TRAILER_ID} trailer on top of production",
                hint=f"remove them (`git reset --keep {base[:12]}`), then resume",
            )
        if not git.is_clean():
            ctx.record(
                "note",
                {
                    "message": "discarding a half-applied fix left by an interrupted attempt",
                    "files": git.status()[:20],
                },
            )
            git.abort_cherry_pick()
        if mode == "cherry-pick":
            extra = self._cherry_pick(ctx, git)
        else:
            extra = self._apply_patch(ctx, git)
        if git.is_clean():
            raise PermanentError(
                f"the {mode} changes nothing on production {base[:12]} (is the fix already there?)",
                hint="check production; abort this hotfix if so",
            )
        return {**self._commit(ctx, git, mode, extra)}

    # -- modes -----------------------------------------------------------------------------

    @staticmethod
    def _mode(ctx: PhaseContext) -> str:
        return str(ctx.options.get("fix_mode") or "manual")

    def _manual(
        self,
        ctx: PhaseContext,
        git: GitRepo,
        base: str,
        head: str,
        *,
        mode: str,
        extra: FixFacts,
    ) -> FixFacts:
        if head != base:  # the engineer committed: their commits are kept as they are
            kept = commit_refs(git.commits_between(base, head))
            clean = git.is_clean()
            message = (
                "the engineer's commits are the fix, kept as they are"
                if clean
                else "the engineer's commits are kept as they are; the uncommitted changes "
                "are committed on top"
            )
            ctx.record("note", {"message": message, "kept_commits": kept})
            if clean:
                return self._facts(ctx, git, head, mode, extra, tool_sha=None)
            return self._commit(ctx, git, mode, extra)
        if git.is_clean():
            approved = " although the fix gate was approved" if latest_approval(ctx, "fix") else ""
            raise NeedsHuman(
                f"the hotfix branch {ctx.facts.get('branch')} has no change yet{approved}",
                gate="fix",
                hint=f"edit the fix in {git.work_tree} (the branch is checked out there), then "
                f"`hotfix resume {ctx.hotfix.id}`; commits you make are kept as they are, "
                "uncommitted changes are committed for you",
            )
        return self._commit(ctx, git, mode, extra)

    def _adopted(self, ctx: PhaseContext, git: GitRepo) -> FixFacts:
        """What an adopted commit was made from, as far as the options tell."""
        mode = self._mode(ctx)
        if mode == "patch":
            return {"patch": str(ctx.options.get("patch") or "")}
        if mode != "cherry-pick":
            return {}
        picked: list[CommitRef] = []
        for rev in ctx.options.get("cherry_pick") or []:
            sha = git.resolve_commit(str(rev))
            if sha is not None:
                picked.append({"sha": sha, "subject": git.commit_info(sha)["subject"]})
        return {"cherry_picked": picked}

    def _conflicted_before(self, ctx: PhaseContext) -> bool:
        notes = ctx.journal(phase=self.name, kinds=("note",))
        return any(row.payload.get("fix_conflict") for row in notes)

    def _resolve_picks(self, ctx: PhaseContext, git: GitRepo) -> list[CommitRef]:
        revs = [str(r) for r in ctx.options.get("cherry_pick") or []]
        if not revs:
            raise PermanentError(
                "cherry-pick mode without any commit to pick",
                hint="start the hotfix again with --cherry-pick <sha>",
            )
        fetched = False
        picks: list[CommitRef] = []
        for rev in revs:
            sha = git.resolve_commit(rev)
            if sha is None and not fetched:
                git.fetch()
                fetched = True
                sha = git.resolve_commit(rev)
            if sha is None:
                raise PermanentError(
                    f"cherry-pick {rev!r} is not a commit in {git.work_tree} (even after "
                    f"fetching {git.remote})",
                    hint="check the sha; abort this hotfix and start again with the right one",
                )
            info = git.commit_info(sha)
            if len(info["parents"]) > 1:
                raise PermanentError(
                    f"{sha[:12]} is a merge commit; it cannot be picked alone",
                    hint="pick the commits it merged, or use --patch",
                )
            picks.append({"sha": sha, "subject": info["subject"]})
        base = ctx.facts.get("base_sha", "")
        present = [p for p in picks if git.is_ancestor(p["sha"], base)]
        if present:
            ctx.record("note", {"message": "already in production; not picked", "commits": present})
        if len(present) == len(picks):
            raise PermanentError(
                f"every commit to cherry-pick is already in production {base[:12]} "
                f"({', '.join(p['sha'][:12] for p in present)}); there is nothing to fix",
                hint="check which commit holds the fix; abort this hotfix if production has it",
            )
        return [p for p in picks if p not in present]

    def _cherry_pick(self, ctx: PhaseContext, git: GitRepo) -> FixFacts:
        picks = self._resolve_picks(ctx, git)
        for pick in picks:
            conflicts = git.cherry_pick_no_commit(pick["sha"])
            if conflicts:
                git.abort_cherry_pick()
                self._pause_for_conflict(
                    ctx,
                    git,
                    f"cherry-picking {pick['sha'][:12]} ({pick['subject']}) "
                    f"conflicts in {', '.join(conflicts)}",
                    conflicts,
                    f"`git cherry-pick --no-commit {pick['sha'][:12]}` and resolve",
                )
        return {"cherry_picked": picks}

    def _apply_patch(self, ctx: PhaseContext, git: GitRepo) -> FixFacts:
        patch = str(ctx.options.get("patch") or "")
        if not patch or not Path(patch).is_file():
            raise PermanentError(
                f"the patch file {patch!r} no longer exists",
                hint="restore it, then resume (or abort and start again)",
            )
        refusal = git.apply_patch(patch, check_only=True)
        if refusal:
            self._pause_for_conflict(
                ctx,
                git,
                f"the patch {patch} does not apply to the production head: {refusal}",
                [],
                f"`git apply --3way {patch}` and resolve",
            )
        refusal = git.apply_patch(patch)
        if refusal:
            raise PermanentError(f"git apply failed: {refusal}")
        return {"patch": patch}

    def _pause_for_conflict(
        self, ctx: PhaseContext, git: GitRepo, message: str, files: list[str], how: str
    ) -> NoReturn:
        ctx.record("note", {"fix_conflict": True, "message": redact(message), "files": files})
        raise NeedsHuman(
            message,
            gate="fix",
            hint=f"apply the fix by hand in {git.work_tree} (for example {how}), leave it "
            f"uncommitted, then `hotfix resume {ctx.hotfix.id}`; or `hotfix abort "
            f"{ctx.hotfix.id}`",
        )

    def _commit(self, ctx: PhaseContext, git: GitRepo, mode: str, extra: FixFacts) -> FixFacts:
        git.stage_all()
        hotfix = ctx.hotfix
        sha = git.commit(fix_message(hotfix.issue, hotfix.description, hotfix.id))
        return self._facts(ctx, git, sha, mode, extra, tool_sha=sha)

    def _facts(
        self,
        ctx: PhaseContext,
        git: GitRepo,
        sha: str,
        mode: str,
        extra: FixFacts,
        *,
        tool_sha: str | None,
    ) -> FixFacts:
        """The facts of fix ``sha``; ``tool_sha`` is the commit the tool made, if any."""
        base = ctx.facts.get("base_sha", "")
        commits = commit_refs(git.commits_between(base, sha))
        for commit in commits:
            if commit["sha"] == tool_sha:
                commit["by_tool"] = True
        facts: FixFacts = {
            "fix_sha": sha,
            "fix_commits": commits,
            "fix_mode": mode,
            "diffstat": git.diffstat(base, sha),
            **extra,
        }
        kept = [c for c in commits if not c.get("by_tool")]
        if kept:
            facts["kept_commits"] = kept
        approval = latest_approval(ctx, "fix")
        if approval:
            facts["fix_approval"] = {
                "by": approval.get("by"),
                "at": approval.get("at"),
                "sha": approval.get("sha"),
            }
        return facts
