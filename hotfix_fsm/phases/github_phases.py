"""The phases that talk to GitHub: PR, CI, deploy, merge, tag, back-merge, cleanup.

Each phase's idempotency key is a natural one — the PR's head ``owner:branch``, the
deploy's correlation id, the PR number pinned to the fix sha, the tag name — and its probe
looks at GitHub or the git remote for exactly that. This module holds the PR, merge and
tag phases and re-exports the others (``ci_phase``, ``deploy_phase``, ``after_merge``) and
the dispatch helpers (``workflow_runs``) the rollback phases share.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hotfix_fsm.errors import PermanentError
from hotfix_fsm.phases.after_merge import Backport, Cleanup
from hotfix_fsm.phases.auto_merge import follow_auto_merge
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.ci_phase import WaitForCI
from hotfix_fsm.phases.deploy_phase import Deploy, require, require_pr_number
from hotfix_fsm.phases.facts import MergeFacts, PullRequestFacts, TagFacts
from hotfix_fsm.phases.merge_requirements import (
    approvers,
    awaiting_checks,
    awaiting_review,
    check_states,
    required_checks,
    required_reviews,
    review_records,
    ruleset_checks,
    ruleset_methods,
    ruleset_reviews,
    wait_from_refusal,
)
from hotfix_fsm.phases.pr_body import build_body, pr_title
from hotfix_fsm.phases.release_names import bump_until_free, next_patch, semver
from hotfix_fsm.phases.workflow_runs import (
    adopt_dispatch,
    dispatch_workflow,
    find_run_by_correlation,
    github,
    new_correlation_id,
    poll,
    probe_dispatch,
    run_failed,
    wait_for_run,
)

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.adapters.github import GitHubClient

LABEL_COLORS = {"hotfix": "d73a4a", "urgent": "b60205"}


def pr_facts(pr: dict[str, Any]) -> PullRequestFacts:
    """The facts ``open_pr`` records about ``pr`` (besides ``pr_created``)."""
    return {
        "pr_number": pr["number"],
        "pr_url": pr.get("html_url"),
        "pr_head_sha": (pr.get("head") or {}).get("sha"),
        "pr_labels": sorted(str(label.get("name")) for label in pr.get("labels") or []),
    }


class OpenPullRequest(BasePhase):
    """Open (or adopt) the emergency PR from the hotfix branch into production, labelled."""

    name = "open_pr"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:open_pr:{ctx.facts.get('branch', '')}"

    def probe(self, ctx: PhaseContext) -> Probe:
        (branch,) = require(ctx, "branch")
        with github(ctx) as gh:
            pr = gh.find_pull(branch, base=ctx.config.production_branch)
        if pr is None or (pr["state"] != "open" and not pr.get("merged_at")):
            return Probe.not_done(f"no open pull request from {branch}")
        have = {str(label.get("name")).lower() for label in pr.get("labels") or []}
        missing = [n for n in ctx.config.github.labels if n.lower() not in have]
        if missing:
            # run() adopts the PR (it looks by head first) and adds the labels.
            return Probe.not_done(f"PR #{pr['number']} lacks labels {', '.join(missing)}")
        return Probe.done(pr_facts(pr))

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        branch, _sha = require(ctx, "branch", "fix_sha")
        base = ctx.config.production_branch
        labels = list(ctx.config.github.labels)
        with github(ctx) as gh:
            title = pr_title(ctx.hotfix.issue, ctx.hotfix.description)
            body = build_body(ctx, ctx.services.git)
            pr, created = gh.open_pull(branch, base, title, body)
            for label in labels:
                gh.ensure_label(
                    label,
                    LABEL_COLORS.get(label.lower(), "ededed"),
                    "Emergency production hotfix" if label == "hotfix" else "",
                )
            if labels:
                names = gh.add_labels(int(pr["number"]), labels)
                pr = {**pr, "labels": [{"name": n} for n in names]}
        return {**pr_facts(pr), "pr_created": created}


class Merge(BasePhase):
    """Merge the PR, pinned to the deployed fix sha (``merge.method``, squash by default);
    with ``merge.auto`` GitHub's auto-merge merges it (``phases.auto_merge``)."""

    name = "merge"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:merge:{ctx.facts.get('pr_number')}:{ctx.facts.get('fix_sha')}"

    def probe(self, ctx: PhaseContext) -> Probe:
        number = require_pr_number(ctx)
        with github(ctx) as gh:
            pr = gh.get_pull(number)
        if pr.get("merged") or pr.get("merged_at"):
            return Probe.done(self._facts(ctx, pr))
        return Probe.not_done(f"PR #{number} is not merged")

    def _facts(self, ctx: PhaseContext, pr: dict[str, Any]) -> MergeFacts:
        return {
            "merge_sha": pr.get("merge_commit_sha"),
            "merge_method": ctx.config.merge.method,
            "merged_head_sha": (pr.get("head") or {}).get("sha"),
        }

    def _requirements(self, ctx: PhaseContext, gh: GitHubClient, pr: dict[str, Any]) -> None:
        """Wait (durably) while the protected base lacks approving reviews or green checks.

        Branch protection and rulesets are both read; the strictest requirement holds. The
        reviews are read from GitHub and recorded as facts, whatever the protection.
        """
        number = int(pr["number"])
        url = pr.get("html_url")
        base = str((pr.get("base") or {}).get("ref") or ctx.config.production_branch)
        rules = gh.branch_protection(base)
        ruleset = gh.branch_rules(base)
        method = ctx.config.merge.method
        allowed = ruleset_methods(ruleset)
        if allowed is not None and method not in allowed:
            raise PermanentError(
                f"the rulesets of {base} allow only {', '.join(allowed) or 'no'} merges, not "
                f"merge.method = {method!r} (PR #{number}, {url})",
                hint=f"set merge.method to one of {', '.join(allowed)} and `hotfix resume "
                f"{ctx.hotfix.id} --reload-config`",
            )
        reviews = review_records(gh.pull_reviews(number))
        need = max(required_reviews(rules), ruleset_reviews(ruleset))
        names = sorted(set(required_checks(rules)) | set(ruleset_checks(ruleset)))
        ctx.save(merge_reviews=reviews, merge_required_reviews=need, merge_required_checks=names)
        given = approvers(reviews)
        if len(given) < need:
            ctx.progress(
                f"awaiting an approving review of PR #{number} ({need} required, "
                f"{len(given)} given)",
                pr=number,
                url=url,
            )
            raise awaiting_review(ctx.hotfix.id, number, url, need, given)
        if not names:
            return
        head = str((pr.get("head") or {}).get("sha") or "")

        def green() -> bool | None:
            states = check_states(names, gh.check_runs(head), gh.combined_status(head))
            if all(state == "success" for state in states.values()):
                return True
            if any(state == "failure" for state in states.values()):
                raise awaiting_checks(ctx.hotfix.id, number, url, states)
            return None

        # Pending required checks usually finish soon: wait for them within the CI budget.
        if poll(
            ctx,
            green,
            timeout=ctx.config.ci.timeout,
            interval=ctx.config.ci.poll_interval,
            what=f"required status checks {', '.join(names)} on PR #{number}",
        ):
            return
        states = check_states(names, gh.check_runs(head), gh.combined_status(head))
        raise awaiting_checks(ctx.hotfix.id, number, url, states)

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from hotfix_fsm.adapters.github import GitHubAPIError

        number = require_pr_number(ctx)
        (sha,) = require(ctx, "fix_sha")
        method = ctx.config.merge.method
        with github(ctx) as gh:
            pr = gh.get_pull(number)
            if pr.get("merged") or pr.get("merged_at"):
                return {**self._facts(ctx, pr)}
            if pr.get("state") != "open":
                raise PermanentError(
                    f"PR #{number} ({pr.get('html_url')}) was closed without being merged",
                    hint=f"reopen it and `hotfix resume {ctx.hotfix.id}`, or merge by hand",
                )
            if ctx.config.merge.auto:
                followed = follow_auto_merge(ctx, gh, pr, sha, self._requirements)
                if followed is not None:
                    return {**followed}
                # GitHub had nothing left to wait for: merge now, as `gh pr merge --auto` does.
            self._requirements(ctx, gh, pr)
            try:
                result = gh.merge_pull(number, sha=sha, method=method)
            except GitHubAPIError as exc:
                again = gh.get_pull(number)
                if again.get("merged") or again.get("merged_at"):
                    return {**self._facts(ctx, again)}  # an earlier, unanswered merge landed
                head = str((again.get("head") or {}).get("sha") or "")
                if exc.status == 409 or (head and head != sha):
                    raise PermanentError(
                        f"PR #{number}'s head moved: it is at {head[:12]}, but the deployed "
                        f"and approved fix is {sha[:12]} (GitHub: {exc.gh_message})",
                        hint="review what was pushed to the hotfix branch; reset it to the "
                        "deployed commit and `hotfix resume`, or merge by hand",
                    ) from exc
                if exc.status == 405:
                    wait = wait_from_refusal(
                        ctx.hotfix.id, number, again.get("html_url"), exc.gh_message
                    )
                    if wait is not None:
                        raise wait from exc
                    raise PermanentError(
                        f"PR #{number} cannot be merged ({method}): GitHub says "
                        f"{exc.gh_message!r} ({again.get('html_url')})",
                        hint="resolve conflicts on the PR (or allow this merge method, "
                        "merge.method in hotfix.toml), then `hotfix resume`",
                    ) from exc
                raise
        facts: MergeFacts = {
            "merge_sha": result.get("sha"),
            "merge_method": method,
            "merged_head_sha": sha,
        }
        return {**facts}


class Tag(BasePhase):
    """An annotated release tag on the merge commit, pushed without force.

    ``tag.scheme = "patch"`` takes the next ``<prefix>X.Y.Z`` after the highest one
    reachable from production (skipping names already taken); any other scheme is a
    template with ``{issue}``, ``{hotfix_id}``, ``{date}`` and ``{short_sha}``. The name is
    saved before the push (``release_tag_planned``), so a retry or a probe looks for
    exactly that tag.
    """

    name = "tag"

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:tag:{ctx.facts.get('merge_sha', '')}"

    def _planned(self, ctx: PhaseContext, sha: str) -> str | None:
        planned = ctx.facts.get("release_tag_planned")
        if isinstance(planned, dict) and planned.get("sha") == sha and planned.get("tag"):
            return planned["tag"]
        return None

    def probe(self, ctx: PhaseContext) -> Probe:
        if not ctx.config.tag.enabled:
            disabled: TagFacts = {"release_tag": None}
            return Probe.done(disabled)
        (sha,) = require(ctx, "merge_sha")
        name = self._planned(ctx, sha)
        if name is None:
            return Probe.not_done("no tag name was chosen yet")
        remote = ctx.services.git.remote_tag_commit(name)
        if remote is None:
            return Probe.not_done(f"tag {name} is not on the remote")
        if remote != sha:
            raise PermanentError(
                f"tag {name} on the remote points at {remote[:12]}, not the merge commit {sha[:12]}"
            )
        tagged: TagFacts = {"release_tag": name, "release_tag_sha": sha}
        return Probe.done(tagged)

    def _choose(self, ctx: PhaseContext, git: GitRepo, sha: str) -> str:
        scheme, prefix = ctx.config.tag.scheme, ctx.config.tag.prefix
        if scheme == "patch":
            ours = [t for t in git.tags(f"{prefix}*", points_at=sha) if semver(t, prefix)]
            if ours:
                return ours[0]
            name = next_patch(git.tags(f"{prefix}*", merged_into=sha), prefix)
            return bump_until_free(name, set(git.tags()), prefix)
        try:
            name = scheme.format(
                issue=ctx.hotfix.issue,
                hotfix_id=ctx.hotfix.id,
                short_sha=sha[:7],
                date=time.strftime("%Y%m%d", time.gmtime()),
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise PermanentError(
                f"tag.scheme {scheme!r} is not a usable template ({exc})",
                hint='use "patch" or a template with {issue}, {hotfix_id}, {date}, {short_sha}',
            ) from exc
        return name

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from hotfix_fsm.adapters.git import GitPushRejected

        if not ctx.config.tag.enabled:
            disabled: TagFacts = {"release_tag": None, "tag_note": "tag.enabled = false"}
            return {**disabled}
        (sha,) = require(ctx, "merge_sha")
        git = ctx.services.git
        git.fetch_branch(ctx.config.production_branch, tags=True)
        name = self._planned(ctx, sha)
        if name is None:
            name = self._choose(ctx, git, sha)
            if not git.is_valid_tag_name(name):
                raise PermanentError(
                    f"{name!r} is not a valid tag name",
                    hint="change tag.scheme / tag.prefix in hotfix.toml",
                )
            ctx.save(release_tag_planned={"tag": name, "sha": sha})
        remote = git.remote_tag_commit(name)
        if remote is None:
            local = git.tag_commit(name)
            if local is not None and local != sha:
                raise PermanentError(
                    f"a local tag {name} already points at {local[:12]}, not {sha[:12]}",
                    hint=f"delete it (`git tag -d {name}`) if it is stale, then resume",
                )
            if local is None:
                git.create_annotated_tag(name, sha, self._message(ctx, name))
            # A refusal means someone else's tag of that name: the check below says whose.
            with contextlib.suppress(GitPushRejected):
                git.push_tag(name)
            remote = git.remote_tag_commit(name)
        if remote != sha:
            raise PermanentError(
                f"tag {name} on {git.remote} points at {(remote or 'nothing')[:12]}, not the "
                f"merge commit {sha[:12]}; it was not overwritten",
                hint="choose another name (tag.scheme) or remove the stale tag, then resume",
            )
        facts: TagFacts = {"release_tag": name, "release_tag_sha": sha}
        return {**facts}

    def _message(self, ctx: PhaseContext, name: str) -> str:
        facts = ctx.facts
        target: Mapping[str, object] = facts.get("rollback_target") or {}
        return "\n".join(
            [
                f"{name}: hotfix {ctx.hotfix.issue} — {ctx.hotfix.description.strip()}",
                "",
                f"Hotfix: {ctx.hotfix.id}",
                f"Pull request: {facts.get('pr_url')}",
                f"Deploy run: {facts.get('deploy_run_url')}",
                f"Production before this hotfix: {target.get('sha')} ({target.get('tag')})",
                "",  # the final newline git's message clean-up would add
            ]
        )


__all__ = [
    "Backport",
    "Cleanup",
    "Deploy",
    "Merge",
    "OpenPullRequest",
    "Tag",
    "WaitForCI",
    "adopt_dispatch",
    "dispatch_workflow",
    "find_run_by_correlation",
    "new_correlation_id",
    "pr_facts",
    "probe_dispatch",
    "run_failed",
    "wait_for_run",
]
