"""The GitHub client's calls for what a repository's rules make a hotfix wait for.

Rulesets (``GET /rules/branches/{branch}``), auto-merge (the GraphQL mutation
``enablePullRequestAutoMerge``, as ``gh pr merge --auto`` sends it), the token's own login
(``GET /user``) and environment approvals (``pending_deployments``, ``approvals``). Mixed
into ``GitHubClient``, whose ``_call`` translates failures and checks answers' shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hotfix_fsm.adapters.github_errors import GitHubAPIError, GitHubUnavailable


def graphql_url(api_url: str) -> str:
    """GitHub's GraphQL endpoint beside the REST ``api_url`` (GitHub Enterprise serves REST
    at ``/api/v3`` and GraphQL at ``/api/graphql``)."""
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"


_ENABLE_AUTO_MERGE = (
    "mutation($pullRequestId: ID!, $mergeMethod: PullRequestMergeMethod!,"
    " $expectedHeadOid: GitObjectID) {"
    " enablePullRequestAutoMerge(input: {pullRequestId: $pullRequestId,"
    " mergeMethod: $mergeMethod, expectedHeadOid: $expectedHeadOid}) {"
    " pullRequest { id number autoMergeRequest { enabledAt mergeMethod } } } }"
)


def _shape(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        name = "a JSON object" if kind is dict else "a list"
        raise GitHubUnavailable(
            f"GitHub answered {type(value).__name__} to {what}, not {name}",
            hint="a proxy or GitHub itself may be misbehaving; `hotfix resume` asks again",
        )
    return value


def _dict(value: Any, what: str) -> dict[str, Any]:
    return dict(_shape(value, dict, what))


def _list(value: Any, what: str) -> list[Any]:
    return list(_shape(value, list, what))


class GatesApi:
    """Rulesets, auto-merge, the token's login and environment approvals."""

    api_url: str

    @property
    def full_name(self) -> str:  # pragma: no cover - provided by GitHubClient
        raise NotImplementedError

    @property
    def api(self) -> Any:  # pragma: no cover - provided by GitHubClient
        raise NotImplementedError

    def _call(self, what: str, op: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - provided by GitHubClient

    def _pages(
        self, what: str, op: Callable[..., Any], *args: Any, limit: int = 50, **kwargs: Any
    ) -> list[Any]:
        raise NotImplementedError  # pragma: no cover - provided by GitHubClient

    def branch_rules(self, branch: str) -> list[dict[str, Any]]:
        """Every active ruleset rule on ``branch`` (all pages); [] when there is none, or
        when GitHub has no rulesets to tell of (404 from a GitHub Enterprise Server older
        than rulesets, 403 to a token that may not read them: the merge's 405 then says
        what is missing, as with branch protection)."""
        what = f"reading the rules of branch {branch}"
        try:
            found = self._pages(what, self.api.repos.get_branch_rules, branch, per_page=100)
        except GitHubAPIError as exc:
            if exc.status in (403, 404):
                return []
            raise
        return [dict(r) for r in found if isinstance(r, dict) and isinstance(r.get("type"), str)]

    def current_login(self) -> str:
        """The login the token belongs to."""
        user = self._call("reading the token's user", self.api, "/user", "GET", expect=_dict)
        return str(user.get("login") or "")

    def enable_auto_merge(
        self, node_id: str, method: str, expected_head: str | None = None
    ) -> tuple[bool, str]:
        """Turn on auto-merge of the PR ``node_id`` with ``method`` (squash, merge, rebase),
        only while its head is ``expected_head`` when one is given (GitHub refuses otherwise).

        Returns (True, "") once enabled, or (False, GitHub's message) when GitHub refused
        (for example "Pull request is in clean status": nothing left to wait for).
        Enabling it again is harmless, so a retry of an unanswered request is safe.
        """
        body = {
            "query": _ENABLE_AUTO_MERGE,
            "variables": {
                "pullRequestId": node_id,
                "mergeMethod": method.upper(),
                "expectedHeadOid": expected_head,
            },
        }
        answer = self._call(
            "enabling auto-merge",
            self.api,
            graphql_url(self.api_url),
            "POST",
            data=body,
            write=True,
            detectable=True,
            expect=_dict,
        )
        errors = answer.get("errors") or []
        if errors:
            messages = [str(e.get("message")) for e in errors if isinstance(e, dict)]
            return False, "; ".join(messages) or "GitHub refused auto-merge"
        return True, ""

    def run_approvals(self, run_id: int) -> list[dict[str, Any]]:
        """Who approved or rejected run ``run_id``'s deployments, oldest first."""
        what = f"reading the deployment approvals of workflow run {run_id}"
        found = self._call(
            what,
            self.api.actions.get_reviews_for_run,
            run_id,
            expect=_list,
            not_found=f"workflow run {run_id} was not found in {self.full_name}",
        )
        return [dict(a) for a in found if isinstance(a, dict)]

    def approve_pending_deployments(
        self, run_id: int, environment_ids: Sequence[int], comment: str
    ) -> list[dict[str, Any]]:
        """Approve run ``run_id``'s pending deployments to ``environment_ids``."""
        what = f"approving the pending deployments of workflow run {run_id}"
        found = self._call(
            what,
            self.api.actions.review_pending_deployments_for_run,
            run_id,
            list(environment_ids),
            "approved",
            comment,
            write=True,
            expect=_list,
            not_found=f"workflow run {run_id} was not found in {self.full_name}",
        )
        return [dict(d) for d in found if isinstance(d, dict)]


__all__ = ["GatesApi", "graphql_url"]
