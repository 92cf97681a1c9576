"""Branch protection, pull-request reviews and environment reviewers of the rehearsal GitHub.

A protected branch refuses a merge that lacks approving reviews, a successful required
status check, an up-to-date head (``strict``) or an allowed merge method, with a 405 as
GitHub does. Reviews are given through the control surface (``hotfix sandbox approve-pr``
or ``POST /_sandbox/reviews``), as a reviewer would on github.com. Environments with
required reviewers hold a workflow run in status ``waiting`` until a reviewer approves its
pending deployment (``POST /actions/runs/{id}/pending_deployments``, or the control
surface for a reviewer other than the token's user).

Rulesets (``hotfix sandbox protect --ruleset`` or ``POST /_sandbox/rulesets``) add the same
requirements through ``GET /rules/branches/{branch}``; a merge must satisfy both, and a
ruleset's refusal starts with GitHub's "Repository rule violations found".
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from hotfix_fsm.sandbox import github_shapes as shapes
from hotfix_fsm.sandbox.github_state import JSON, ApiError, WorldBase, iso, not_found, page

CURRENT_USER = "rehearsal-bot"  # the login every rehearsal token belongs to
MERGE_METHOD_NAMES = {
    "merge": "Merge commits",
    "squash": "Squash merges",
    "rebase": "Rebase merges",
}


def _requirements(
    reviews: int, checks: Sequence[str], strict: bool, methods: Sequence[str] | None
) -> JSON:
    """What a protection rule or a ruleset requires of a merge (422 for an unknown method)."""
    allowed = list(methods) if methods is not None else None
    for method in allowed or ():
        if method not in MERGE_METHOD_NAMES:
            raise ApiError(422, f"unknown merge method {method!r}")
    return {
        "reviews": int(reviews),
        "checks": list(checks),
        "strict": bool(strict),
        "methods": allowed,
    }


def environment_for(data: JSON, workflow: str) -> JSON | None:
    """The environment with reviewers a run of ``workflow`` waits for, if any."""
    for name, env in sorted(data.get("environments", {}).items()):
        if workflow in env["workflows"] and env["reviewers"]:
            return {"name": name, "id": env["id"], "reviewers": list(env["reviewers"])}
    return None


class ProtectionMixin(WorldBase):
    """Branch protection rules, reviews and environments (state in the JSON document)."""

    # -- control -----------------------------------------------------------------------------

    def set_protection(
        self,
        branch: str,
        *,
        required_approving_review_count: int = 1,
        required_status_checks: Sequence[str] = (),
        strict: bool = False,
        allowed_merge_methods: Sequence[str] | None = None,
        enabled: bool = True,
    ) -> None:
        """Protect ``branch`` (``enabled=False`` removes the protection)."""
        rules = self.data.setdefault("protection", {})
        if not enabled:
            rules.pop(branch, None)
            return
        rules[branch] = _requirements(
            required_approving_review_count, required_status_checks, strict, allowed_merge_methods
        )

    def set_ruleset(
        self,
        branch: str,
        *,
        name: str = "production rules",
        required_approving_review_count: int = 1,
        required_status_checks: Sequence[str] = (),
        strict: bool = False,
        allowed_merge_methods: Sequence[str] | None = None,
        enabled: bool = True,
    ) -> None:
        """An active repository ruleset ``name`` targeting ``branch`` (``enabled=False``
        deletes it)."""
        rulesets = self.data.setdefault("rulesets", {})
        if not enabled:
            rulesets.pop(name, None)
            return
        rulesets[name] = {
            "id": 7000 + zlib.crc32(name.encode()) % 1000,
            "branch": branch,
            **_requirements(
                required_approving_review_count,
                required_status_checks,
                strict,
                allowed_merge_methods,
            ),
        }

    def _rulesets_for(self, branch: str) -> list[JSON]:
        return [
            r for _, r in sorted(self.data.get("rulesets", {}).items()) if r["branch"] == branch
        ]

    def branch_rules(self, branch: str, query: Mapping[str, str]) -> list[JSON]:
        """GET /rules/branches/{branch}: every active rule that applies to the branch."""
        out: list[JSON] = []
        for ruleset in self._rulesets_for(branch):
            source = {
                "ruleset_source_type": "Repository",
                "ruleset_source": self.full_name,
                "ruleset_id": ruleset["id"],
            }
            params: JSON = {
                "dismiss_stale_reviews_on_push": False,
                "require_code_owner_review": False,
                "require_last_push_approval": False,
                "required_approving_review_count": ruleset["reviews"],
                "required_review_thread_resolution": False,
            }
            if ruleset["methods"] is not None:
                params["allowed_merge_methods"] = list(ruleset["methods"])
            out.append({"type": "pull_request", "parameters": params, **source})
            if ruleset["checks"]:
                checks = [{"context": c} for c in ruleset["checks"]]
                out.append(
                    {
                        "type": "required_status_checks",
                        "parameters": {
                            "required_status_checks": checks,
                            "strict_required_status_checks_policy": ruleset["strict"],
                        },
                        **source,
                    }
                )
        return page(out, query)

    def review_pull(self, number: str | int, reviewer: str, state: str = "APPROVED") -> JSON:
        """A reviewer submits a review on the PR's current head (the drill's approval)."""
        if state not in ("APPROVED", "CHANGES_REQUESTED", "COMMENTED"):
            raise ApiError(422, f"unknown review state {state!r}")
        pr = self._protected_pull(number)
        if pr["state"] != "open":
            raise ApiError(422, "Can not approve a closed pull request")
        reviews = pr.setdefault("reviews", [])
        review: JSON = {
            "id": 5000 + self._next_review(),
            "user": reviewer,
            "state": state,
            "commit_id": pr["head_sha"],
            "submitted_at": time.time(),
        }
        reviews.append(review)
        self._effect(
            "reviews",
            {"pr": pr["number"], "user": reviewer, "state": state, "commit_id": pr["head_sha"]},
        )
        return self._review_json(pr, review)

    def _next_review(self) -> int:
        counters = self.data["counters"]
        counters["review"] = int(counters.get("review", 0)) + 1
        return int(counters["review"])

    def _protected_pull(self, number: str | int) -> JSON:
        pr: JSON | None = self.data["pulls"].get(str(number))
        if pr is None:
            raise not_found()
        return pr

    # -- REST --------------------------------------------------------------------------------

    def authenticated_user(self) -> JSON:
        """GET /user: the token's user (every rehearsal token belongs to it)."""
        return shapes.private_user(self.base_url, CURRENT_USER, self.created_at)

    def _review_json(self, pr: JSON, review: JSON) -> JSON:
        rid = review["id"]
        return {
            "id": rid,
            "node_id": f"PRR_{rid}",
            "user": self.user(review["user"]),
            "body": "",
            "state": review["state"],
            "html_url": f"{self.web}/pull/{pr['number']}#pullrequestreview-{rid}",
            "pull_request_url": f"{self.api}/pulls/{pr['number']}",
            "_links": {
                "html": {"href": f"{self.web}/pull/{pr['number']}#pullrequestreview-{rid}"},
                "pull_request": {"href": f"{self.api}/pulls/{pr['number']}"},
            },
            "submitted_at": iso(review["submitted_at"]),
            "commit_id": review["commit_id"],
            "author_association": "MEMBER",
        }

    def list_reviews(self, number: str, query: Mapping[str, str]) -> list[JSON]:
        """GET /pulls/{n}/reviews, oldest first, paginated."""
        pr = self._protected_pull(number)
        items = [self._review_json(pr, r) for r in pr.get("reviews", [])]
        return page(items, query)

    def get_protection(self, branch: str) -> JSON:
        """GET /branches/{branch}/protection (404 ``Branch not protected``)."""
        if self.repo.branch_sha(branch) is None:
            raise ApiError(404, "Branch not found")
        rule = self.data.get("protection", {}).get(branch)
        if rule is None:
            raise ApiError(404, "Branch not protected")
        url = f"{self.api}/branches/{branch}/protection"
        out: JSON = {
            "url": url,
            "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": False},
            "required_linear_history": {"enabled": rule["methods"] == ["squash"]},
            "allow_force_pushes": {"enabled": False},
            "allow_deletions": {"enabled": False},
        }
        if rule["reviews"]:
            out["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": False,
                "require_code_owner_reviews": False,
                "required_approving_review_count": rule["reviews"],
            }
        if rule["checks"]:
            out["required_status_checks"] = {
                "url": f"{url}/required_status_checks",
                "strict": rule["strict"],
                "contexts": list(rule["checks"]),
                "contexts_url": f"{url}/required_status_checks/contexts",
                "checks": [{"context": c, "app_id": None} for c in rule["checks"]],
            }
        return out

    def approvals(self, pr: JSON) -> list[str]:
        """Reviewers whose latest decisive review approves the PR."""
        latest: dict[str, str] = {}
        for review in pr.get("reviews", []):
            if review["state"] in ("APPROVED", "CHANGES_REQUESTED"):
                latest[review["user"]] = review["state"]
        return sorted(user for user, state in latest.items() if state == "APPROVED")

    def _check_passed(self, sha: str, context: str) -> bool:
        combined: JSON = self.combined_status(sha)  # type: ignore[attr-defined]
        return any(
            s["context"] == context and s["state"] == "success" for s in combined["statuses"]
        )

    def protection_violation(self, pr: JSON, method: str) -> str | None:
        """GitHub's 405 message when merging ``pr`` with ``method`` breaks the base's rules
        (branch protection first, then each ruleset that targets the base)."""
        rule = self.data.get("protection", {}).get(pr["base"])
        found = None if rule is None else self._rule_violation(pr, method, rule)
        if found is not None:
            return found
        for ruleset in self._rulesets_for(pr["base"]):
            found = self._rule_violation(pr, method, ruleset)
            if found is not None:
                return f"Repository rule violations found\n\n{found}\n"
        return None

    def _rule_violation(self, pr: JSON, method: str, rule: JSON) -> str | None:
        if rule["methods"] is not None and method not in rule["methods"]:
            return f"{MERGE_METHOD_NAMES[method]} are not allowed on this repository."
        given = len(self.approvals(pr))
        if given < rule["reviews"]:
            count = rule["reviews"]
            noun = "review is" if count == 1 else "reviews are"
            return f"At least {count} approving {noun} required by reviewers with write access."
        for context in rule["checks"]:
            if not self._check_passed(pr["head_sha"], context):
                return f'Required status check "{context}" is expected.'
        if rule["strict"] and not self.repo.is_ancestor(pr["base_sha"], pr["head_sha"]):
            return "Head branch was modified. Review and try the merge again."
        return None

    def blocked(self, pr: JSON) -> bool:
        """True when the base's protection or rulesets would refuse the merge
        (``mergeable_state``)."""
        rules = [self.data.get("protection", {}).get(pr["base"])]
        rules += self._rulesets_for(pr["base"])
        allowed = set(MERGE_METHOD_NAMES)
        for rule in rules:
            if rule is not None and rule["methods"] is not None:
                allowed &= set(rule["methods"])
        if not any(rules):
            return False
        method = "squash" if "squash" in allowed or not allowed else sorted(allowed)[0]
        return self.protection_violation(pr, method) is not None

    # -- environments ------------------------------------------------------------------------

    def set_environment(
        self,
        name: str,
        *,
        reviewers: Sequence[str] = (),
        workflows: Sequence[str] = ("deploy-production.yml",),
    ) -> None:
        """Runs of ``workflows`` deploy to environment ``name``, which needs a reviewer."""
        envs = self.data.setdefault("environments", {})
        envs[name] = {
            "id": zlib.crc32(name.encode()),
            "reviewers": list(reviewers),
            "workflows": list(workflows),
        }

    def pending_deployments(self, run_id: str) -> list[JSON]:
        """GET /actions/runs/{id}/pending_deployments."""
        run = self.data["runs"].get(run_id)
        if run is None:
            raise not_found()
        env = run.get("environment")
        if env is None or run.get("approved_at") is not None:
            return []
        url = f"{self.api}/environments/{env['name']}"
        return [
            {
                "environment": {
                    "id": env["id"],
                    "node_id": f"EN_{env['id']}",
                    "name": env["name"],
                    "url": url,
                    "html_url": f"{self.web}/deployments/activity_log?environments_filter="
                    f"{env['name']}",
                },
                "wait_timer": 0,
                "wait_timer_started_at": iso(run["created_at"]),
                "current_user_can_approve": CURRENT_USER in env["reviewers"],
                "reviewers": [{"type": "User", "reviewer": self.user(r)} for r in env["reviewers"]],
            }
        ]

    def review_deployment(
        self, run_id: str, body: Mapping[str, Any], *, reviewer: str = CURRENT_USER
    ) -> list[JSON]:
        """POST /actions/runs/{id}/pending_deployments (``reviewer`` from the control)."""
        run = self.data["runs"].get(run_id)
        if run is None:
            raise not_found()
        env = run.get("environment")
        ids = body.get("environment_ids")
        state = body.get("state")
        if not isinstance(ids, list) or state not in ("approved", "rejected"):
            raise ApiError(422, "Invalid request: environment_ids and state are required.")
        if env is None or env["id"] not in ids or run.get("approved_at") is not None:
            raise ApiError(422, "No pending deployment requests to approve or reject")
        if reviewer not in env["reviewers"]:
            raise ApiError(
                422, f"{reviewer} is not a required reviewer of environment {env['name']}"
            )
        now = time.time()
        run["approved_at"] = now
        run["approved_by"] = reviewer
        if state == "rejected":
            run["planned_conclusion"] = "failure"
        comment = str(body.get("comment") or "")
        run.setdefault("approvals", []).append(
            {"user": reviewer, "state": state, "comment": comment, "at": now}
        )
        effect: JSON = {
            "run_id": run["id"],
            "environment": env["name"],
            "user": reviewer,
            "state": state,
        }
        if comment:
            effect["comment"] = comment
        self._effect("deployment_reviews", effect)
        return [
            shapes.deployment(
                self.facts,
                deployment_id=run["id"],
                environment=env["name"],
                sha=run["head_sha"],
                ref=run["head_branch"],
                creator=reviewer,
                at=str(iso(now)),
            )
        ]


def run_approvals(world: ProtectionMixin, run_id: str) -> list[JSON]:
    """GET /actions/runs/{id}/approvals: who approved or rejected the run's deployments."""
    run = world.data["runs"].get(run_id)
    if run is None:
        raise not_found()
    env = run.get("environment") or {}
    out: list[JSON] = []
    for approval in run.get("approvals", []):
        out.append(
            {
                "environments": [
                    {
                        "id": env.get("id"),
                        "node_id": f"EN_{env.get('id')}",
                        "name": env.get("name"),
                        "url": f"{world.api}/environments/{env.get('name')}",
                        "html_url": f"{world.web}/deployments/activity_log?environments_filter="
                        f"{env.get('name')}",
                        "created_at": iso(run["created_at"]),
                        "updated_at": iso(approval["at"]),
                    }
                ],
                "state": approval["state"],
                "user": world.user(approval["user"]),
                "comment": approval["comment"],
            }
        )
    return out
