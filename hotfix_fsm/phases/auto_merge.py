"""``merge.auto = true``: GitHub's auto-merge, as ``gh pr merge --auto`` turns it on.

The merge step turns auto-merge on (GraphQL ``enablePullRequestAutoMerge`` with the PR's
node id and ``merge.method``) and follows the PR until GitHub merges it, recording the
merge commit. Its probe is the PR's own ``auto_merge`` field, read before anything is sent:

* off, and never turned on by this hotfix → turn it on (once), record who and when;
* on, but not recorded (a crash between the request and the record) → adopt it, marked
  inferred; nothing is sent again;
* off, though this hotfix turned it on → someone turned it off on GitHub: it is not turned
  on again behind their back (the phase fails with what to do).

While reviews are missing the hotfix pauses (durable: GitHub merges it meanwhile, and
``hotfix resume`` only finds it merged); pending required checks are waited for within the
CI budget. GitHub refuses auto-merge for a PR with nothing left to wait for ("clean
status"); then, as ``gh`` does, the PR is merged directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.base import PhaseContext
from hotfix_fsm.phases.facts import AutoMergeRecord, MergeFacts
from hotfix_fsm.phases.workflow_runs import poll

if TYPE_CHECKING:
    from hotfix_fsm.adapters.github import GitHubClient

Requirements = Callable[[PhaseContext, "GitHubClient", dict[str, Any]], None]


def merged_facts(ctx: PhaseContext, pr: dict[str, Any]) -> MergeFacts:
    """What a merged PR proves: its merge commit, the head merged, the method."""
    return {
        "merge_sha": pr.get("merge_commit_sha"),
        "merge_method": ctx.config.merge.method,
        "merged_head_sha": (pr.get("head") or {}).get("sha"),
    }


def _turn_on(ctx: PhaseContext, gh: GitHubClient, pr: dict[str, Any], sha: str) -> bool:
    """Auto-merge on (True), or False when GitHub has nothing to wait for (merge now)."""
    number, url = int(pr["number"]), pr.get("html_url")
    recorded = ctx.facts.get("merge_auto")
    current = pr.get("auto_merge")
    if isinstance(current, dict):
        if not recorded:
            enabled_by = (current.get("enabled_by") or {}).get("login")
            found: AutoMergeRecord = {
                "method": str(current.get("merge_method") or ctx.config.merge.method),
                "at": time.time(),
                "enabled_by": str(enabled_by or "unknown"),
                "inferred": True,
            }
            ctx.save(merge_auto=found)
        return True
    if recorded:
        raise PermanentError(
            f"auto-merge of PR #{number} was turned off on GitHub after this hotfix turned it "
            f"on; it is not turned on again ({url})",
            hint=f"merge the PR on GitHub (or turn auto-merge on there), then `hotfix resume "
            f"{ctx.hotfix.id}`",
        )
    head = str((pr.get("head") or {}).get("sha") or "")
    if head and head != sha:
        raise PermanentError(
            f"PR #{number}'s head moved: it is at {head[:12]}, but the deployed and approved "
            f"fix is {sha[:12]}; auto-merge was not turned on",
            hint="review what was pushed to the hotfix branch; reset it to the deployed "
            "commit and `hotfix resume`, or merge by hand",
        )
    method = ctx.config.merge.method
    ok, message = gh.enable_auto_merge(str(pr.get("node_id") or ""), method, sha)
    # A crash here leaves auto-merge on and unrecorded: the next attempt adopts it.
    failpoints.reach("merge", "auto_merge_on")
    if not ok:
        if "clean status" in message.lower():
            return False
        raise PermanentError(
            f"GitHub refused to turn on auto-merge of PR #{number}: {message} ({url})",
            hint="allow auto-merge in the repository's settings (or set merge.auto = false), "
            f"then `hotfix resume {ctx.hotfix.id} --reload-config`",
        )
    record: AutoMergeRecord = {
        "method": method,
        "at": time.time(),
        "enabled_by": gh.current_login() or "unknown",
    }
    ctx.save(merge_auto=record)
    ctx.progress(f"auto-merge of PR #{number} is on ({method})", pr=number, url=url)
    return True


def _head_unmoved(ctx: PhaseContext, pr: dict[str, Any], sha: str) -> None:
    """Raise when the open PR's head is no longer the deployed fix: auto-merge would merge
    commits that production does not run."""
    head = str((pr.get("head") or {}).get("sha") or "")
    if head and head != sha:
        raise PermanentError(
            f"PR #{pr['number']}'s head moved to {head[:12]} after auto-merge was turned on; "
            f"the deployed and approved fix is {sha[:12]} ({pr.get('html_url')})",
            hint="turn auto-merge off on GitHub now (it would merge commits production "
            "does not run), reset the hotfix branch to the deployed commit, then "
            f"`hotfix resume {ctx.hotfix.id}`",
        )


def follow_auto_merge(
    ctx: PhaseContext,
    gh: GitHubClient,
    pr: dict[str, Any],
    sha: str,
    requirements: Requirements,
) -> MergeFacts | None:
    """Turn auto-merge on and follow the PR to GitHub's merge; None: merge it directly."""
    if not _turn_on(ctx, gh, pr, sha):
        return None
    _head_unmoved(ctx, pr, sha)
    number, url = int(pr["number"]), pr.get("html_url")
    try:
        requirements(ctx, gh, pr)  # a missing review pauses; pending checks are waited for
    except NeedsHuman as wait:
        raise NeedsHuman(
            f"{wait.message}; auto-merge is on: GitHub merges it once the requirements are met",
            hint=f"{wait.hint} (it finds the PR merged)" if wait.hint else None,
        ) from None

    def merged() -> dict[str, Any] | None:
        current = gh.get_pull(number)
        head = str((current.get("head") or {}).get("sha") or "")
        if current.get("merged") or current.get("merged_at"):
            if head and head != sha:
                ctx.save(**merged_facts(ctx, current))
                raise PermanentError(
                    f"GitHub auto-merged PR #{number} at head {head[:12]}, but the deployed "
                    f"and approved fix is {sha[:12]}: commits that production does not run "
                    f"were merged ({url})",
                    hint="review what was pushed to the hotfix branch after the deploy: "
                    "revert it on the production branch, or ship it through a new hotfix; "
                    "then tag and back-merge by hand",
                )
            return current
        _head_unmoved(ctx, current, sha)
        if current.get("state") != "open":
            raise PermanentError(
                f"PR #{number} was closed without being merged ({url})",
                hint=f"reopen it and `hotfix resume {ctx.hotfix.id}`, or merge by hand",
            )
        if current.get("auto_merge") is None:
            raise PermanentError(
                f"auto-merge of PR #{number} was turned off on GitHub while it was followed; "
                f"it is not turned on again ({url})",
                hint=f"merge the PR on GitHub, then `hotfix resume {ctx.hotfix.id}`",
            )
        return None

    done = poll(
        ctx,
        merged,
        timeout=ctx.config.ci.timeout,
        interval=ctx.config.ci.poll_interval,
        what=f"GitHub to auto-merge PR #{number}",
    )
    if done is None:
        raise NeedsHuman(
            f"auto-merge of PR #{number} is on, but GitHub has not merged it yet — {url}",
            hint=f"see what the PR still waits for on GitHub, then `hotfix resume "
            f"{ctx.hotfix.id}` follows it to the merge",
        )
    return merged_facts(ctx, done)


__all__ = ["follow_auto_merge", "merged_facts"]
