"""Rolling back: undo the merge on production (if any), redeploy the target, verify it.

* ``RollbackRevert`` — not merged: nothing to undo. Merged and ``rollback.after_merge =
  "revert"`` (the default): a revert commit of the merge on branch ``rollback/<hotfix id>``
  (made in a temporary worktree, the user's checkout is untouched), a PR into production,
  merged through the API; idempotent by branch name and PR head. ``"reset"``: only with
  ``rollback.allow_reset`` and an approval of gate ``rollback`` given after this rollback
  started, then ``git push --force-with-lease=refs/heads/<production>:<merge sha>``.
* ``RollbackRedeploy`` — see ``rollback_redeploy``.
* ``RollbackVerify`` — production is healthy and reports the target's version (when it
  reports one); otherwise the hotfix stops in ``rollback_failed`` with what ran, what
  production says now and the commands a person should run.
"""

from __future__ import annotations

import shutil
from typing import Any

from hotfix_fsm.adapters.git import GitCommandError, GitRepo
from hotfix_fsm.adapters.github import GitHubAPIError
from hotfix_fsm.adapters.http import HealthExpectation
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import RevertResult, RollbackFacts
from hotfix_fsm.phases.rollback_redeploy import RollbackRedeploy, manual_command, rollback_target
from hotfix_fsm.phases.verify import poll_health

__all__ = ["RollbackRedeploy", "RollbackRevert", "RollbackVerify", "merged_sha"]

NOT_MERGED = "not needed (not merged)"


def merged_sha(ctx: PhaseContext) -> str | None:
    """The hotfix's merge commit on production, when the merge happened.

    ``merge_sha`` when the merge phase recorded it; after a merge attempt that never
    recorded its end, GitHub is asked whether the PR was merged.
    """
    merge = ctx.facts.get("merge_sha")
    if merge:
        return merge
    number = ctx.facts.get("pr_number")
    if not number or not ctx.journal(phase="merge", kinds=("intent",), limit=1):
        return None
    try:
        pr = ctx.services.github.get_pull(int(number))
    except GitHubAPIError as exc:
        if exc.status == 404:
            return None
        raise
    if pr.get("merged") or pr.get("merged_at"):
        return str(pr.get("merge_commit_sha") or "") or None
    return None


def _revert_facts(revert: RevertResult | str) -> RollbackFacts:
    return {"rollback_revert": revert}


def rollback_branch(ctx: PhaseContext) -> str:
    return f"rollback/{ctx.hotfix.id}"


class RollbackRevert(BasePhase):
    """Undo the hotfix's merge on production: a revert PR, or an approved reset."""

    name = "rollback_revert"

    def probe(self, ctx: PhaseContext) -> Probe:
        merge = merged_sha(ctx)
        if merge is None:
            return Probe.done(_revert_facts(NOT_MERGED))
        if ctx.config.rollback.after_merge == "reset":
            target = str(rollback_target(ctx)["sha"])
            head = ctx.services.git.ls_remote(f"refs/heads/{ctx.config.production_branch}")
            if head == target:
                return Probe.done(self._reset_facts(merge, target))
            if head == merge:
                return Probe.not_done("production still points at the hotfix merge")
            return Probe.unknown(
                f"production is at {str(head)[:12]}, neither the merge nor the target"
            )
        pr = ctx.services.github.find_pull(rollback_branch(ctx), base=ctx.config.production_branch)
        if pr and pr.get("merged_at"):
            return Probe.done(self._revert_facts(ctx, pr, merge))
        return Probe.not_done("the revert PR is not merged; the next attempt reuses its branch/PR")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        merge = merged_sha(ctx)
        if merge is None:
            return {**_revert_facts(NOT_MERGED)}
        if ctx.config.rollback.after_merge == "reset":
            return self._reset(ctx, merge)
        return self._revert(ctx, merge)

    # -- revert through a PR -------------------------------------------------------------

    def _revert(self, ctx: PhaseContext, merge: str) -> dict[str, Any]:
        gh, git = ctx.services.github, ctx.services.git
        production, branch = ctx.config.production_branch, rollback_branch(ctx)
        with gh.use_sleep(ctx.wait):
            pr = gh.find_pull(branch, base=production)
            if pr and pr.get("merged_at"):
                return {**self._revert_facts(ctx, pr, merge)}
            if git.ls_remote(f"refs/heads/{branch}") is None:
                head = git.fetch_branch(production)
                if head is None:
                    raise PermanentError(f"the remote has no branch {production}")
                revert = self._revert_commit(ctx, git, head, merge)
                if revert is None:
                    nothing: RevertResult = {
                        "mode": "none",
                        "reverted": merge,
                        "note": f"{production} no longer contains the hotfix's changes",
                        "production_sha": head,
                    }
                    return {**_revert_facts(nothing)}
                git.push_ref(revert, f"refs/heads/{branch}")
                ctx.record("note", {"pushed": branch, "sha": revert})
            title = f"Revert hotfix {ctx.hotfix.issue}: {ctx.hotfix.description}"[:200]
            body = (
                f"Rolls back hotfix `{ctx.hotfix.id}` by reverting {merge}.\n\n"
                f"Reason: {redact(ctx.hotfix.error or 'rollback requested')}"
            )
            pr, _ = gh.open_pull(branch, production, title, body)
            if pr.get("merged_at"):
                return {**self._revert_facts(ctx, pr, merge)}
            if pr.get("state") != "open":
                raise PermanentError(
                    f"the revert PR #{pr['number']} ({pr.get('html_url')}) was closed unmerged",
                    hint=f"reopen and merge it by hand, then `hotfix resume {ctx.hotfix.id}`",
                )
            try:
                gh.merge_pull(
                    int(pr["number"]),
                    sha=str(pr["head"]["sha"]),
                    method=ctx.config.merge.method,
                    title=f"Revert hotfix {ctx.hotfix.id}",
                )
            except GitHubAPIError as exc:
                raise PermanentError(
                    f"GitHub refused to merge the revert PR #{pr['number']} "
                    f"({pr.get('html_url')}): {exc.message}",
                    hint=f"merge it by hand (resolve conflicts on {branch} if production "
                    f"moved), then `hotfix resume {ctx.hotfix.id}`",
                ) from None
            merged = gh.get_pull(int(pr["number"]))
        return {**self._revert_facts(ctx, merged, merge)}

    def _revert_commit(self, ctx: PhaseContext, git: GitRepo, head: str, merge: str) -> str | None:
        """Commit the revert of ``merge`` on top of ``head`` in a throw-away worktree.

        None when the revert changes nothing (production already lost the hotfix's changes).
        """
        tree = ctx.services.hotfix_dir(ctx.hotfix.id) / "rollback-worktree"
        self._drop_worktree(git, tree)
        git.run("worktree", "add", "--detach", "--", str(tree), head)
        try:
            with GitRepo(tree, remote=git.remote, timeout=git.timeout) as work:
                parents = work.run("rev-list", "--parents", "-n", "1", merge).stdout.split()
                mainline = ["-m", "1"] if len(parents) > 2 else []
                try:
                    work.run("revert", "--no-commit", *mainline, merge)
                except GitCommandError as exc:
                    raise PermanentError(
                        f"reverting the hotfix merge {merge[:12]} on production conflicts: "
                        f"{exc.message}",
                        hint=f"revert it by hand (`git revert {' '.join(mainline)} {merge}` on "
                        f"{ctx.config.production_branch}), open and merge the PR, then "
                        f"`hotfix resume {ctx.hotfix.id}`",
                    ) from None
                if work.run("diff", "--cached", "--quiet", check=False).returncode == 0:
                    return None
                message = (
                    f"Revert hotfix {ctx.hotfix.issue}: {ctx.hotfix.description}\n\n"
                    f"This reverts commit {merge}.\n\nHotfix-Id: {ctx.hotfix.id}\n"
                )
                return work.commit(message)
        finally:
            self._drop_worktree(git, tree)

    @staticmethod
    def _drop_worktree(git: GitRepo, tree: Any) -> None:
        git.run("worktree", "remove", "--force", "--", str(tree), check=False)
        shutil.rmtree(tree, ignore_errors=True)
        git.run("worktree", "prune", check=False)

    def _revert_facts(self, ctx: PhaseContext, pr: dict[str, Any], merge: str) -> RollbackFacts:
        return _revert_facts(
            {
                "mode": "revert",
                "reverted": merge,
                "branch": rollback_branch(ctx),
                "pr_number": pr.get("number"),
                "pr_url": pr.get("html_url"),
                "production_sha": pr.get("merge_commit_sha"),
            }
        )

    # -- reset with force-with-lease -----------------------------------------------------

    def _reset(self, ctx: PhaseContext, merge: str) -> dict[str, Any]:
        hid, production = ctx.hotfix.id, ctx.config.production_branch
        target = str(rollback_target(ctx)["sha"])
        if not ctx.config.rollback.allow_reset:
            raise PermanentError(
                "rollback.after_merge is 'reset' but rollback.allow_reset is false",
                hint="set rollback.allow_reset = true to allow a --force-with-lease reset, or "
                f"rollback.after_merge = 'revert', then `hotfix resume {hid}`",
            )
        git = ctx.services.git
        head = git.ls_remote(f"refs/heads/{production}")
        if head == target:
            return {**self._reset_facts(merge, target)}
        if head != merge:
            raise PermanentError(
                f"{production} is at {str(head)[:12]}, not the hotfix merge {merge[:12]}: "
                "commits landed after the hotfix and a reset would discard them",
                hint="roll back with a revert instead (rollback.after_merge = 'revert'), then "
                f"`hotfix resume {hid}`",
            )
        if not self._reset_approved(ctx):
            raise NeedsHuman(
                f"rolling back resets {production} from the hotfix merge {merge[:12]} to "
                f"{target[:12]} with a --force-with-lease push; that needs an explicit approval",
                gate="rollback",
                hint=f"`hotfix approve {hid} rollback` to allow the reset, then `hotfix resume "
                f"{hid}`; or set rollback.after_merge = 'revert' and resume",
            )
        if not git.has_commit(target):
            git.fetch()
        git.run(
            "push",
            "--porcelain",
            f"--force-with-lease=refs/heads/{production}:{merge}",
            "--",
            git.remote,
            f"{target}:refs/heads/{production}",
            network=True,
        )
        return {**self._reset_facts(merge, target)}

    def _reset_approved(self, ctx: PhaseContext) -> bool:
        started = ctx.journal(
            phase="start_rollback", kinds=("transition",), newest_first=True, limit=1
        )
        after = started[0].seq if started else 0
        rows = ctx.journal(kinds=("approval",), after_seq=after)
        return any(r.payload.get("gate") == "rollback" for r in rows)

    @staticmethod
    def _reset_facts(merge: str, target: str) -> RollbackFacts:
        return _revert_facts({"mode": "reset", "from": merge, "production_sha": target})


class RollbackVerify(BasePhase):
    """Production is healthy again and reports the rollback target's version."""

    name = "rollback_verify"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("a health check changes nothing; it simply runs again")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        target = rollback_target(ctx)
        cfg = ctx.config.verify
        url = cfg.url.strip()
        if not url:
            raise PermanentError(
                "verify.url is not set, so the rollback cannot be verified",
                hint=self._manual(ctx, "(no health URL configured)", None),
            )
        versions = [str(target["sha"])]
        revert = ctx.facts.get("rollback_revert")
        if isinstance(revert, dict) and revert.get("production_sha"):
            versions.append(str(revert["production_sha"]))
        run_sha = ctx.facts.get("rollback_run_sha")
        if run_sha:
            versions.append(run_sha)
        expect = HealthExpectation.from_config(cfg, versions)
        poll = poll_health(
            ctx, url, expect, check="rollback_verify", timeout=cfg.timeout, interval=cfg.interval
        )
        summary = poll.summary(url)
        if poll.ok:
            verified: RollbackFacts = {"rollback_verify": summary}
            return {**verified}
        ctx.save(rollback_verify=summary)
        status = summary.get("status")
        now = (
            f"HTTP {status}, version {summary.get('version') or 'not reported'}: "
            f"{summary.get('reason')}"
        )
        raise PermanentError(
            f"after the rollback production at {redact(url)} is still not healthy on the "
            f"target {target.get('tag') or str(target['sha'])[:12]} within {cfg.timeout:g}s "
            f"({poll.checks} checks; now: {now})",
            hint=self._manual(ctx, now, url),
        )

    def _manual(self, ctx: PhaseContext, now: str, url: str | None) -> str:
        target = rollback_target(ctx)
        sha, tag = str(target["sha"]), target.get("tag")
        facts = ctx.facts
        workflow = facts.get("rollback_workflow") or ctx.config.rollback.workflow
        run_id, run_url = facts.get("rollback_run_id"), facts.get("rollback_run_url")
        ref = facts.get("rollback_ref") or tag or ctx.config.production_branch
        steps = [
            f"what ran: workflow {workflow} run {run_id} ({run_url}) redeploying {ref} "
            f"({sha[:12]})",
            f"production now: {now}",
            f"1. read the run: `gh run view {run_id} --log`",
            f"2. check production: `curl -sS {redact(url)}`" if url else "2. check production",
            f"3. redeploy the target by hand: `{manual_command(ctx)}`",
            f"4. then `hotfix resume {ctx.hotfix.id}` to verify again",
        ]
        return "\n    ".join(steps)
