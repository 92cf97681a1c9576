"""After the merge: carry the fix to main (back-merge PR) and delete the hotfix branches.

The back-merge PR's head is its own branch, ``backport/<hotfix branch>``, pushed at the fix
commit: GitHub closes a PR whose head branch is deleted, so a PR from the hotfix branch
itself would be closed by the cleanup that follows. The back-merge never blocks the
hotfix: a conflict or an error is recorded (``backport_status``) for a human to finish.
Where there is nothing to carry — ``backport.enabled = false``, or a trunk-based set-up whose
production branch is the main branch (or the back-merge base) — the phase completes as
skipped, with the reason in its facts, and opens no PR.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hotfix_fsm.errors import LeaseLost
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.deploy_phase import require
from hotfix_fsm.phases.facts import BackportFacts, CleanupFacts, CleanupResult
from hotfix_fsm.phases.workflow_runs import github, poll

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.config import Config


def _base(ctx: PhaseContext) -> str:
    return ctx.config.backport.base or ctx.config.main_branch


def _head(ctx: PhaseContext) -> str:
    return f"backport/{ctx.facts.get('branch', '')}"


def skip_reason(config: Config) -> str | None:
    """Why the back-merge has nothing to do under ``config``, or None when it has.

    A trunk-based set-up (the production branch is the main branch) has nowhere to carry
    the fix: the merge already put it there, and a PR would only be noise.
    """
    if not config.backport.enabled:
        return "backport.enabled = false"
    if config.main_branch == config.production_branch and not config.backport.base:
        return "production branch is the main branch (trunk-based)"
    base = config.backport.base or config.main_branch
    if base == config.production_branch:
        return f"the back-merge base {base} is the production branch"
    return None


def _skipped(reason: str) -> BackportFacts:
    return {
        "backport_status": "skipped",
        "backport_message": f"no back-merge: {reason}",
        "backport_skipped": reason,
    }


class Backport(BasePhase):
    """A PR from ``backport/<branch>`` (at the fix) into ``backport.base`` or main."""

    name = "backport"

    def __init__(self, *, mergeable_wait: float = 10.0) -> None:
        self.mergeable_wait = mergeable_wait

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:backport:{_head(ctx)}->{_base(ctx)}"

    def probe(self, ctx: PhaseContext) -> Probe:
        reason = skip_reason(ctx.config)
        if reason is not None:
            return Probe.done(_skipped(reason))
        require(ctx, "branch")
        with github(ctx) as gh:
            pr = gh.find_pull(_head(ctx), base=_base(ctx))
            if pr is not None and pr.get("state") == "open":
                # Mergeability is only in the single PR's answer, never in a list item.
                pr = gh.get_pull(int(pr["number"]))
        if pr is None:
            return Probe.not_done(f"no pull request from {_head(ctx)} into {_base(ctx)}")
        return Probe.done(self._facts(ctx, pr, self._status(pr)))

    @staticmethod
    def _status(pr: dict[str, Any]) -> str:
        if pr.get("merged_at"):
            return "merged"
        if pr.get("state") != "open":
            return "closed"
        # null: GitHub has not computed it yet (always the case in a list item).
        mergeable = pr.get("mergeable")
        return "pending" if mergeable is None else "open" if mergeable else "conflict"

    @staticmethod
    def _facts(ctx: PhaseContext, pr: dict[str, Any], status: str) -> BackportFacts:
        facts: BackportFacts = {
            "backport_branch": _head(ctx),
            "backport_pr_number": pr["number"],
            "backport_pr_url": pr.get("html_url"),
            "backport_status": status,
        }
        if status == "conflict":
            facts["backport_message"] = (
                f"{_head(ctx)} conflicts with {_base(ctx)}; resolve it on the branch and merge "
                f"{pr.get('html_url')} by hand"
            )
        return facts

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        reason = skip_reason(ctx.config)
        if reason is not None:
            return {**_skipped(reason)}
        branch, sha = require(ctx, "branch", "fix_sha")
        facts: BackportFacts
        try:
            facts = self._open(ctx, ctx.services.git, branch, sha)
        except LeaseLost:
            raise
        except Exception as exc:  # non-blocking by design: record it for a human
            from hotfix_fsm.adapters.github import GitHubAPIError

            if isinstance(exc, GitHubAPIError) and exc.mentions("No commits between"):
                facts = {
                    "backport_status": "not_needed",
                    "backport_branch": _head(ctx),
                    "backport_message": f"{_base(ctx)} already contains the fix",
                }
            else:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                facts = {
                    "backport_status": "error",
                    "backport_branch": _head(ctx),
                    "backport_message": f"the back-merge PR could not be opened: {message}; "
                    f"open a PR from {branch} into {_base(ctx)} by hand",
                }
        return {**facts}

    def _open(self, ctx: PhaseContext, git: GitRepo, branch: str, sha: str) -> BackportFacts:
        head, base = _head(ctx), _base(ctx)
        with github(ctx) as gh:
            pr = gh.find_pull(head, base=base)
            if pr is None:
                self._push_head(git, head, sha)
                pr, _created = gh.open_pull(head, base, self._title(ctx), self._body(ctx, head))
            number = int(pr["number"])

            def settled() -> dict[str, Any] | None:
                current = gh.get_pull(number)
                return (
                    current
                    if current.get("mergeable") is not None or (current.get("state") != "open")
                    else None
                )

            # GitHub computes mergeability in the background: give it a moment.
            pr = (
                poll(
                    ctx,
                    settled,
                    timeout=self.mergeable_wait,
                    interval=1.0,
                    what=f"GitHub to compute whether PR #{number} merges cleanly",
                )
                or pr
            )
        return self._facts(ctx, pr, self._status(pr))

    @staticmethod
    def _push_head(git: GitRepo, head: str, sha: str) -> None:
        from hotfix_fsm.adapters.git import GitPushRejected

        ref = f"refs/heads/{head}"
        remote = git.ls_remote(ref)
        if remote == sha:
            return
        if remote is not None:
            git.fetch_branch(head)
            if git.has_commit(sha) and git.has_commit(remote) and git.is_ancestor(sha, remote):
                return  # someone already built on it (for example, resolved conflicts)
            raise RuntimeError(f"branch {head} exists on the remote with other commits")
        try:
            git.push_ref(sha, ref)
        except GitPushRejected:
            if git.ls_remote(ref) != sha:
                raise RuntimeError(f"the remote refused to create {head}") from None

    @staticmethod
    def _title(ctx: PhaseContext) -> str:
        first = (ctx.hotfix.description.strip().splitlines() or [""])[0]
        return f"BACKPORT({ctx.hotfix.issue}): {first}"[:256]

    @staticmethod
    def _body(ctx: PhaseContext, head: str) -> str:
        data = ctx.facts
        return "\n".join(
            [
                f"Carries hotfix `{ctx.hotfix.id}` ({ctx.hotfix.issue}) into `{_base(ctx)}`.",
                "",
                f"- Production PR: #{data.get('pr_number')} {data.get('pr_url') or ''}".rstrip(),
                f"- Merged into `{ctx.config.production_branch}` as `{data.get('merge_sha')}`",
                f"- Release tag: `{data.get('release_tag')}`",
                f"- Fix commit: `{data.get('fix_sha')}`",
                "",
                f"If this PR conflicts, resolve the conflicts on `{head}` and merge it; the "
                "hotfix itself is complete.",
            ]
        )


class Cleanup(BasePhase):
    """Delete the hotfix branch on the remote (API) and locally; gone already is fine.

    A branch holding commits that are not the fix is kept (and said so), as is a local
    branch checked out in a work tree with uncommitted changes: cleanup never loses work.
    """

    name = "cleanup"

    def probe(self, ctx: PhaseContext) -> Probe:
        (branch,) = require(ctx, "branch")
        config, git = ctx.config.cleanup, ctx.services.git
        remote_gone = git.ls_remote(f"refs/heads/{branch}") is None
        local_gone = git.local_branch_sha(branch) is None
        if (remote_gone or not config.delete_remote_branch) and (
            local_gone or not config.delete_local_branch
        ):
            gone: CleanupFacts = {"cleaned": {"remote": remote_gone, "local": local_gone}}
            return Probe.done(gone)
        return Probe.not_done("the hotfix branch still exists")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        branch, sha = require(ctx, "branch", "fix_sha")
        git = ctx.services.git
        notes: list[str] = []
        remote = self._remote(ctx, git, branch, sha, notes)
        local = self._local(ctx, git, branch, sha, notes)
        cleaned: CleanupResult = {"remote": remote, "local": local}
        if notes:
            cleaned["notes"] = notes
        facts: CleanupFacts = {"cleaned": cleaned}
        return {**facts}

    def _remote(
        self, ctx: PhaseContext, git: GitRepo, branch: str, sha: str, notes: list[str]
    ) -> bool:
        if not ctx.config.cleanup.delete_remote_branch:
            notes.append("remote branch kept (cleanup.delete_remote_branch = false)")
            return False
        head = git.ls_remote(f"refs/heads/{branch}")
        if head is None:
            return True
        if head != sha:
            notes.append(f"remote {branch} kept: it is at {head[:12]}, not the fix {sha[:12]}")
            return False
        with github(ctx) as gh:
            if not gh.delete_branch(branch):
                notes.append(f"remote {branch} was already deleted")
        return True

    def _local(
        self, ctx: PhaseContext, git: GitRepo, branch: str, sha: str, notes: list[str]
    ) -> bool:
        if not ctx.config.cleanup.delete_local_branch:
            notes.append("local branch kept (cleanup.delete_local_branch = false)")
            return False
        local = git.local_branch_sha(branch)
        if local is None:
            return True
        if local != sha and not (git.has_commit(sha) and git.is_ancestor(local, sha)):
            notes.append(f"local {branch} kept: it has commits beyond the fix {sha[:12]}")
            return False
        for tree in git.worktrees():
            if tree.branch != branch:
                continue
            if git.worktree_dirty(tree.path):
                notes.append(f"local {branch} kept: {tree.path} has uncommitted changes")
                return False
            moved = git.switch_away(
                tree.path, [ctx.config.main_branch, ctx.config.production_branch]
            )
            notes.append(f"{tree.path} switched to {moved}")
        git.delete_local_branch(branch)
        return True
