"""Auto-merge in the rehearsal GitHub: the GraphQL ``enablePullRequestAutoMerge`` mutation.

As on GitHub (and as ``gh pr merge --auto`` meets it): the mutation takes the PR's node id
and a merge method, refuses a PR that could be merged right now ("Pull request is in clean
status"), and sets the PR's ``auto_merge``; the rehearsal then merges the PR itself, once,
as soon as its base's protection and rulesets are satisfied (looked at on every request).
Only this mutation is served at ``POST /graphql``; anything else is answered with a GraphQL
error, never a silent success.
"""

from __future__ import annotations

import time
from typing import Any

from hotfix_fsm.sandbox.github_protection import CURRENT_USER, MERGE_METHOD_NAMES
from hotfix_fsm.sandbox.github_pulls import PullsMixin
from hotfix_fsm.sandbox.github_state import JSON, ApiError, iso


def _error(message: str, kind: str | None = None) -> JSON:
    error: JSON = {"message": message, "locations": [], "path": ["enablePullRequestAutoMerge"]}
    if kind:
        error["type"] = kind
    return {"data": {"enablePullRequestAutoMerge": None}, "errors": [error]}


class AutoMergeMixin(PullsMixin):
    """``POST /graphql`` (the auto-merge mutation) and the merges auto-merge makes."""

    def graphql(self, body: JSON) -> JSON:
        """POST /graphql: ``enablePullRequestAutoMerge`` with variables
        ``pullRequestId``, ``mergeMethod`` and (optional) ``expectedHeadOid``."""
        query = str(body.get("query") or "")
        variables: Any = body.get("variables") or {}
        if "enablePullRequestAutoMerge" not in query or not isinstance(variables, dict):
            return {
                "errors": [
                    {"message": "the rehearsal GitHub serves only enablePullRequestAutoMerge"}
                ]
            }
        node_id = str(variables.get("pullRequestId") or "")
        method = str(variables.get("mergeMethod") or "MERGE").lower()
        pr = next((p for p in self.data["pulls"].values() if f"PR_{p['number']}" == node_id), None)
        if pr is None:
            return _error(
                f"Could not resolve to a node with the global id of '{node_id}'", "NOT_FOUND"
            )
        self._refresh_pull(pr)
        if method not in MERGE_METHOD_NAMES:
            return _error(f"Argument 'mergeMethod' has an invalid value ({method.upper()}).")
        if pr["state"] != "open":
            return _error("Pull request is closed", "UNPROCESSABLE")
        if not self.data.get("allow_auto_merge", True):
            return _error("Pull request Auto merge is not allowed for this repository")
        expected = variables.get("expectedHeadOid")
        if expected and expected != pr.get("head_sha"):
            return _error("Head branch was modified. Review and try the merge again.")
        if pr.get("auto_merge") is None:
            if self.protection_violation(pr, method) is None:
                # GitHub refuses auto-merge when there is nothing left to wait for.
                return _error("Pull request is in clean status", "UNPROCESSABLE")
            pr["auto_merge"] = {
                "enabled_by": self.user(CURRENT_USER),
                "merge_method": method,
                "commit_title": f"{pr['title']} (#{pr['number']})",
                "commit_message": "",
            }
            pr["auto_merge_enabled_at"] = time.time()
            self._effect("auto_merges", {"pr": pr["number"], "method": method})
        enabled = {
            "enabledAt": iso(pr["auto_merge_enabled_at"]),
            "mergeMethod": pr["auto_merge"]["merge_method"].upper(),
        }
        return {
            "data": {
                "enablePullRequestAutoMerge": {
                    "pullRequest": {
                        "id": node_id,
                        "number": pr["number"],
                        "autoMergeRequest": enabled,
                    }
                }
            }
        }

    def set_repository(self, *, allow_auto_merge: bool = True) -> None:
        """Repository settings (Settings → General): whether auto-merge is allowed."""
        self.data["allow_auto_merge"] = bool(allow_auto_merge)

    def settle_auto_merges(self) -> None:
        """Merge every open PR with auto-merge on whose requirements are now met."""
        for pr in list(self.data["pulls"].values()):
            if pr["state"] != "open" or pr.get("auto_merge") is None:
                continue
            self._refresh_pull(pr)
            method = pr["auto_merge"]["merge_method"]
            if pr["state"] != "open" or self.protection_violation(pr, method) is not None:
                continue
            try:
                self.merge_pull(str(pr["number"]), {"merge_method": method})
            except ApiError:
                continue  # not mergeable (a conflict): it stays open, as on GitHub


__all__ = ["AutoMergeMixin"]
