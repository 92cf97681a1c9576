"""Pull requests, labels, git refs and branches of the rehearsal GitHub server."""

from __future__ import annotations

import time
import zlib
from collections.abc import Mapping
from typing import Any

from hotfix_fsm.sandbox import github_shapes as shapes
from hotfix_fsm.sandbox.github_git import valid_ref_name
from hotfix_fsm.sandbox.github_protection import CURRENT_USER, ProtectionMixin
from hotfix_fsm.sandbox.github_state import (
    JSON,
    ApiError,
    iso,
    not_found,
    page,
    validation,
)


def _author(pr: JSON) -> str:
    """Who opened the PR: the token's user."""
    return str(pr.get("user", CURRENT_USER))


class PullsMixin(ProtectionMixin):
    """PRs with real merges, labels, refs and branches; merges obey branch protection."""

    # -- pull requests -----------------------------------------------------------------------

    def _head_name(self, head: str) -> str:
        if ":" in head:
            owner, _, branch = head.partition(":")
            if owner.lower() != self.owner.lower():
                raise validation("PullRequest", "head", "invalid")
            return branch
        return head

    def _pull(self, number: str | int) -> JSON:
        pr: JSON | None = self.data["pulls"].get(str(number))
        if pr is None:
            raise not_found()
        self._refresh_pull(pr)
        return pr

    def _refresh_pull(self, pr: JSON) -> None:
        # Head and base are live refs while the PR is open; deleting the head branch
        # closes the PR, as on GitHub.
        if pr["state"] != "open":
            return
        head = self.repo.branch_sha(pr["head"])
        if head is None:
            pr["state"] = "closed"
            pr["closed_at"] = time.time()
            pr["updated_at"] = pr["closed_at"]
            return
        pr["head_sha"] = head
        base = self.repo.branch_sha(pr["base"])
        if base is not None:
            pr["base_sha"] = base

    def _mergeable(self, pr: JSON) -> tuple[bool | None, str]:
        if pr["merged"]:
            return None, "unknown"
        if pr["state"] != "open":
            return None, "unknown"
        # GitHub computes mergeability in the background: the first read after the PR
        # or its head or base changed answers null, a later one the result.
        key = f"{pr['base_sha']}:{pr['head_sha']}"
        if pr.get("mergeable_key") != key:
            pr["mergeable_key"] = key
            return None, "unknown"
        clean, _ = self.repo.merge_tree(pr["base_sha"], pr["head_sha"])
        if not clean:
            return False, "dirty"
        return True, "blocked" if self.blocked(pr) else "clean"

    def _label_json(self, label: JSON) -> JSON:
        return {
            "id": label["id"],
            "node_id": f"LA_{label['id']}",
            "url": f"{self.api}/labels/{label['name']}",
            "name": label["name"],
            "color": label["color"],
            "description": label["description"],
            "default": False,
        }

    def render_pull(self, pr: JSON, *, listing: bool = False) -> JSON:
        """A pull request as the API returns it; ``listing``: a list item, which has no
        ``merged``, ``mergeable`` or ``mergeable_state`` (GitHub's pull-request-simple)."""
        number = pr["number"]
        labels = [
            self._label_json(self.data["labels"][key])
            for key in pr["labels"]
            if key in self.data["labels"]
        ]
        repo = self.facts
        out: JSON = {
            "id": 1000 + number,
            "node_id": f"PR_{number}",
            "number": number,
            **shapes.pull_urls(repo, number, pr["head_sha"]),
            "state": pr["state"],
            "locked": False,
            "active_lock_reason": None,
            "draft": pr["draft"],
            "title": pr["title"],
            "body": pr["body"],
            "user": self.user(_author(pr)),
            "labels": labels,
            "milestone": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": shapes.pull_end(repo, pr["head"], pr["head_sha"]),
            "base": shapes.pull_end(repo, pr["base"], pr["base_sha"]),
            "author_association": "MEMBER",
            "merged_at": iso(pr["merged_at"]),
            "merge_commit_sha": pr["merge_commit_sha"],
            "auto_merge": pr.get("auto_merge"),
            "created_at": iso(pr["created_at"]),
            "updated_at": iso(pr["updated_at"]),
            "closed_at": iso(pr["closed_at"]),
        }
        if listing:
            return out
        mergeable, mergeable_state = self._mergeable(pr)
        commits, files, additions, deletions = self._pull_stats(pr)
        out.update(
            merged=pr["merged"],
            mergeable=mergeable,
            rebaseable=mergeable,
            mergeable_state=mergeable_state,
            merged_by=self.user(_author(pr)) if pr["merged"] else None,
            maintainer_can_modify=False,
            comments=0,
            review_comments=0,
            commits=commits,
            additions=additions,
            deletions=deletions,
            changed_files=files,
        )
        return out

    def _pull_stats(self, pr: JSON) -> tuple[int, int, int, int]:
        """Commits, changed files, additions, deletions of the PR's head over its base."""
        # Counted once per head and base: a poll of an unchanged PR runs no git command.
        base = pr["fork_point"] if pr["merged"] else pr["base_sha"]
        key = f"{base}..{pr['head_sha']}"
        if pr.get("stats_key") != key:
            merge_base = self.repo.merge_base(base, pr["head_sha"]) or base
            pr["stats_key"] = key
            pr["stats"] = [
                len(self.repo.commits(key)),
                *self.repo.diff_stat(merge_base, pr["head_sha"]),
            ]
        commits, files, additions, deletions = (int(n) for n in pr["stats"])
        return commits, files, additions, deletions

    def list_pulls(self, query: Mapping[str, str]) -> list[JSON]:
        """GET /pulls with ``state``, ``head`` and ``base`` filters, newest first."""
        state = query.get("state", "open")
        if state not in ("open", "closed", "all"):
            raise validation("PullRequest", "state", "invalid")
        head = query.get("head") or None
        if head is not None:
            owner, _, branch = head.rpartition(":")
            if owner and owner.lower() != self.owner.lower():
                return []  # GitHub filters by owner rather than rejecting a stranger's head
            head = branch
        base = query.get("base")
        found: list[JSON] = []
        for key in sorted(self.data["pulls"], key=int, reverse=True):
            pr = self._pull(key)
            if state != "all" and pr["state"] != state:
                continue
            if head is not None and pr["head"] != head:
                continue
            if base is not None and pr["base"] != base:
                continue
            found.append(self.render_pull(pr, listing=True))
        return page(found, query)

    def create_pull(self, body: JSON) -> JSON:
        """POST /pulls."""
        for field in ("title", "head", "base"):
            if not isinstance(body.get(field), str) or not body[field]:
                raise validation("PullRequest", field, "missing_field")
        head = self._head_name(body["head"])
        base = body["base"]
        head_sha = self.repo.branch_sha(head)
        if head_sha is None:
            raise validation("PullRequest", "head", "invalid")
        base_sha = self.repo.branch_sha(base)
        if base_sha is None:
            raise validation("PullRequest", "base", "invalid")
        for other in self.data["pulls"].values():
            self._refresh_pull(other)
            if other["state"] == "open" and other["head"] == head and other["base"] == base:
                raise ApiError(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"A pull request already exists for {self.owner}:{head}.",
                        }
                    ],
                )
        if self.repo.is_ancestor(head_sha, base_sha):
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"No commits between {base} and {head}",
                    }
                ],
            )
        number = self._next("pr")
        now = time.time()
        pr: JSON = {
            "number": number,
            "title": body["title"],
            "body": body.get("body") if isinstance(body.get("body"), str) else None,
            "draft": bool(body.get("draft", False)),
            "head": head,
            "base": base,
            "head_sha": head_sha,
            "base_sha": base_sha,
            "fork_point": base_sha,
            "state": "open",
            "merged": False,
            "merged_at": None,
            "merge_commit_sha": None,
            "labels": [],
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
        }
        self.data["pulls"][str(number)] = pr
        self._effect(
            "pull_requests",
            {
                "number": number,
                "head": head,
                "base": base,
                "title": pr["title"],
                "body": pr["body"],
                "created_at": iso(now),
            },
        )
        return self.render_pull(pr)

    def get_pull(self, number: str) -> JSON:
        """GET /pulls/{n}."""
        return self.render_pull(self._pull(number))

    def update_pull(self, number: str, body: JSON) -> JSON:
        """PATCH /pulls/{n}: ``state``, ``title``, ``body``."""
        pr = self._pull(number)
        changes: JSON = {}
        if "state" in body:
            state = body["state"]
            if state not in ("open", "closed"):
                raise validation("PullRequest", "state", "invalid")
            if state == "open" and pr["state"] == "closed":
                if pr["merged"] or self.repo.branch_sha(pr["head"]) is None:
                    raise validation("PullRequest", "state", "invalid")
                for other in self.data["pulls"].values():
                    if (
                        other["state"] == "open"
                        and other["head"] == pr["head"]
                        and other["base"] == pr["base"]
                    ):
                        raise validation("PullRequest", "state", "invalid")
            if state != pr["state"]:
                pr["state"] = state
                pr["closed_at"] = time.time() if state == "closed" else None
                changes["state"] = state
        for field in ("title", "body"):
            if field in body and isinstance(body[field], str):
                pr[field] = body[field]
                changes[field] = body[field]
        if changes:
            pr["updated_at"] = time.time()
            self._effect("pull_request_updates", {"pr": pr["number"], "changes": changes})
        self._refresh_pull(pr)
        return self.render_pull(pr)

    def pull_commits(self, number: str) -> list[JSON]:
        """GET /pulls/{n}/commits, oldest first."""
        pr = self._pull(number)
        base = pr["fork_point"] if pr["merged"] else pr["base_sha"]
        return [self._commit_json(c) for c in self.repo.commits(f"{base}..{pr['head_sha']}")]

    def is_merged(self, number: str) -> bool:
        """GET /pulls/{n}/merge."""
        return bool(self._pull(number)["merged"])

    def merge_pull(self, number: str, body: JSON) -> JSON:
        """PUT /pulls/{n}/merge: really writes the merge commit into the base branch."""
        pr = self._pull(number)
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise validation("PullRequest", "merge_method", "invalid")
        if pr["state"] != "open":
            raise ApiError(405, "Pull Request is not mergeable")
        expected = body.get("sha")
        if expected is not None and expected != pr["head_sha"]:
            raise ApiError(409, "Head branch was modified. Review and try the merge again.")
        violation = self.protection_violation(pr, method)
        if violation is not None:
            raise ApiError(405, violation)
        base_sha, head_sha = pr["base_sha"], pr["head_sha"]
        clean, tree = self.repo.merge_tree(base_sha, head_sha)
        if not clean:
            raise ApiError(405, "Pull Request is not mergeable")
        n = pr["number"]
        if method == "merge":
            title = (
                body.get("commit_title")
                or f"Merge pull request #{n} from {self.owner}/{pr['head']}"
            )
            parents = [base_sha, head_sha]
            default_message = pr["title"]
        else:
            title = body.get("commit_title") or f"{pr['title']} (#{n})"
            parents = [base_sha]
            default_message = ""
        message = body.get("commit_message")
        extra = message if isinstance(message, str) else default_message
        full = f"{title}\n\n{extra}" if extra else str(title)
        new = self.repo.commit_tree(tree, parents, full)
        if not self.repo.update_ref(f"refs/heads/{pr['base']}", new, base_sha):
            raise ApiError(409, "Base branch was modified. Review and try the merge again.")
        now = time.time()
        pr.update(
            state="closed",
            merged=True,
            merged_at=now,
            closed_at=now,
            updated_at=now,
            merge_commit_sha=new,
            fork_point=base_sha,
        )
        self._effect(
            "merges", {"pr": n, "sha": head_sha, "method": method, "merge_commit_sha": new}
        )
        return {"sha": new, "merged": True, "message": "Pull Request successfully merged"}

    # -- labels ------------------------------------------------------------------------------

    def get_label(self, name: str) -> JSON:
        """GET /labels/{name} (case-insensitive, as on GitHub)."""
        label = self.data["labels"].get(name.lower())
        if label is None:
            raise not_found()
        return self._label_json(label)

    def _new_label(self, name: str, color: str, description: str | None) -> JSON:
        label = {
            "id": self._next("label"),
            "name": name,
            "color": color,
            "description": description,
        }
        self.data["labels"][name.lower()] = label
        return label

    def create_label(self, body: JSON) -> JSON:
        """POST /labels."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation("Label", "name", "missing_field")
        color = str(body.get("color", "ededed")).lstrip("#")
        if len(color) != 6 or any(ch not in "0123456789abcdefABCDEF" for ch in color):
            raise validation("Label", "color", "invalid")
        if name.lower() in self.data["labels"]:
            raise validation("Label", "name", "already_exists")
        description = body.get("description")
        label = self._new_label(name, color, description if isinstance(description, str) else None)
        self._effect(
            "labels_created",
            {"name": name, "color": color, "description": label["description"], "auto": False},
        )
        return self._label_json(label)

    def add_labels(self, number: str, body: JSON | list[Any]) -> list[JSON]:
        """POST /issues/{n}/labels; unknown labels are created, as GitHub does."""
        names = body if isinstance(body, list) else body.get("labels")
        if not isinstance(names, list) or not all(isinstance(x, str) and x for x in names):
            raise validation("Label", "labels", "invalid")
        pr = self._pull(number)
        for name in names:
            if name.lower() not in self.data["labels"]:
                self._new_label(name, "ededed", None)
                self._effect(
                    "labels_created",
                    {"name": name, "color": "ededed", "description": None, "auto": True},
                )
            if name.lower() not in pr["labels"]:
                pr["labels"].append(name.lower())
        self._effect("labels_added", {"pr": pr["number"], "labels": list(names)})
        return self.issue_labels(number)

    def issue_labels(self, number: str) -> list[JSON]:
        """GET /issues/{n}/labels."""
        pr = self._pull(number)
        return [self._label_json(self.data["labels"][k]) for k in pr["labels"]]

    # -- refs and branches -------------------------------------------------------------------

    def get_ref(self, ref: str) -> JSON:
        """GET /git/ref/{heads|tags}/{name}."""
        full = f"refs/{ref}"
        kind, _, name = ref.partition("/")
        if kind not in ("heads", "tags") or not valid_ref_name(name):
            raise not_found()
        sha = self.repo.ref_sha(full)
        if sha is None:
            raise not_found()
        obj_type = self.repo.object_type(sha)
        return {
            "ref": full,
            "node_id": f"REF_{zlib.crc32(full.encode())}",
            "url": f"{self.api}/git/{full}",
            "object": {"sha": sha, "type": obj_type, "url": f"{self.api}/git/{obj_type}s/{sha}"},
        }

    def delete_ref(self, ref: str) -> None:
        """DELETE /git/refs/{heads|tags}/{name}."""
        full = f"refs/{ref}"
        kind, _, name = ref.partition("/")
        sha = (
            self.repo.ref_sha(full) if kind in ("heads", "tags") and valid_ref_name(name) else None
        )
        if sha is None or not self.repo.delete_ref(full, sha):
            raise ApiError(422, "Reference does not exist")
        self._effect("refs_deleted_via_api", {"ref": full, "sha": sha, "at": iso(time.time())})
        for pr in self.data["pulls"].values():
            self._refresh_pull(pr)

    def get_branch(self, name: str) -> JSON:
        """GET /branches/{branch}."""
        sha = self.repo.branch_sha(name)
        if sha is None:
            raise ApiError(404, "Branch not found")
        commit = self._commit_json(self.commit_info(sha))
        rule = self.data.get("protection", {}).get(name)
        checks = list(rule["checks"]) if rule else []
        return {
            "name": name,
            "commit": commit,
            "protected": rule is not None,
            # The summary GitHub shows beside the branch; the rules themselves are at the URL.
            "protection": {
                "enabled": rule is not None,
                "required_status_checks": {
                    "enforcement_level": "non_admins" if checks else "off",
                    "contexts": checks,
                    "checks": [{"context": c, "app_id": None} for c in checks],
                },
            },
            "protection_url": f"{self.api}/branches/{name}/protection",
            "_links": {"self": f"{self.api}/branches/{name}", "html": f"{self.web}/tree/{name}"},
        }
