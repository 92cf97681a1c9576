"""GitHub's object shapes, complete, for the rehearsal GitHub's answers.

Each builder returns an object with every field GitHub's OpenAPI description requires for
it (``simple-user``, ``repository``, ``full-repository``, ``minimal-repository``, ``commit``,
``nullable-simple-commit``, ``integration``, ``pull-request`` …), filled with plausible
values: URLs under the server's base URL, ids derived from names, the real commit data of the
bare repository. The tests validate every answer against the description, so a field GitHub
adds to a shape shows up here as one more key.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from hotfix_fsm.sandbox.github_git import CommitInfo

JSON = dict[str, Any]
ACTIONS_APP_ID = 15368


def stable_id(text: str) -> int:
    """A positive id derived from ``text`` (GitHub ids are opaque integers)."""
    return zlib.crc32(text.encode())


def user(base: str, login: str, *, kind: str = "User") -> JSON:
    """A ``simple-user`` (an organization has the same shape with ``type`` Organization)."""
    uid = stable_id(login)
    api = f"{base}/users/{login}"
    return {
        "login": login,
        "id": uid,
        "node_id": f"U_{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{base}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def app_avatar(app_id: int) -> str:
    """The avatar URL GitHub gives an app (and the statuses it posts)."""
    return f"https://avatars.githubusercontent.com/in/{app_id}?v=4"


def private_user(base: str, login: str, created_at: str) -> JSON:
    """The authenticated user (``private-user``): the token's owner."""
    return {
        **user(base, login),
        "user_view_type": "private",
        "name": login,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": created_at,
        "updated_at": created_at,
        "private_gists": 0,
        "total_private_repos": 1,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
        "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
    }


@dataclass(frozen=True)
class RepoFacts:
    """What the repository shapes are built from."""

    base: str  # the API's base URL
    owner: str
    name: str
    default_branch: str
    created_at: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        return f"{self.base}/repos/{self.full_name}"

    @property
    def web(self) -> str:
        return f"{self.base}/{self.full_name}"


# The hypermedia URLs every repository shape carries, as GitHub spells them.
_REPO_LINKS = {
    "forks_url": "/forks",
    "keys_url": "/keys{/key_id}",
    "collaborators_url": "/collaborators{/collaborator}",
    "teams_url": "/teams",
    "hooks_url": "/hooks",
    "issue_events_url": "/issues/events{/number}",
    "events_url": "/events",
    "assignees_url": "/assignees{/user}",
    "branches_url": "/branches{/branch}",
    "tags_url": "/tags",
    "blobs_url": "/git/blobs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "trees_url": "/git/trees{/sha}",
    "statuses_url": "/statuses/{sha}",
    "languages_url": "/languages",
    "stargazers_url": "/stargazers",
    "contributors_url": "/contributors",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "commits_url": "/commits{/sha}",
    "git_commits_url": "/git/commits{/sha}",
    "comments_url": "/comments{/number}",
    "issue_comment_url": "/issues/comments{/number}",
    "contents_url": "/contents/{+path}",
    "compare_url": "/compare/{base}...{head}",
    "merges_url": "/merges",
    "archive_url": "/{archive_format}{/ref}",
    "downloads_url": "/downloads",
    "issues_url": "/issues{/number}",
    "pulls_url": "/pulls{/number}",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "labels_url": "/labels{/name}",
    "releases_url": "/releases{/id}",
    "deployments_url": "/deployments",
}


def minimal_repository(repo: RepoFacts) -> JSON:
    """A ``minimal-repository`` (workflow runs, combined statuses)."""
    rid = stable_id(repo.full_name)
    return {
        "id": rid,
        "node_id": f"R_{rid}",
        "name": repo.name,
        "full_name": repo.full_name,
        "private": True,
        "owner": user(repo.base, repo.owner, kind="Organization"),
        "html_url": repo.web,
        "description": None,
        "fork": False,
        "url": repo.api,
        **{key: repo.api + suffix for key, suffix in _REPO_LINKS.items()},
    }


def repository(repo: RepoFacts) -> JSON:
    """A ``repository`` (the ``repo`` of a pull request's head and base)."""
    host = repo.base.split("://", 1)[-1]
    return {
        **minimal_repository(repo),
        "git_url": f"git://{host}/{repo.full_name}.git",
        "ssh_url": f"git@{host.split(':', 1)[0]}:{repo.full_name}.git",
        "clone_url": f"{repo.web}.git",
        "svn_url": repo.web,
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks": 0,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers": 0,
        "watchers_count": 0,
        "size": 0,
        "default_branch": repo.default_branch,
        "open_issues": 0,
        "open_issues_count": 0,
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": True,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "pushed_at": repo.created_at,
        "created_at": repo.created_at,
        "updated_at": repo.created_at,
        "permissions": {
            "admin": True,
            "maintain": True,
            "push": True,
            "triage": True,
            "pull": True,
        },
        "allow_rebase_merge": True,
        "allow_squash_merge": True,
        "allow_merge_commit": True,
        "allow_auto_merge": False,
        "delete_branch_on_merge": False,
        "allow_forking": False,
        "web_commit_signoff_required": False,
        "license": None,
    }


def full_repository(repo: RepoFacts) -> JSON:
    """A ``full-repository`` (``GET /repos/{owner}/{repo}``)."""
    return {
        **repository(repo),
        "organization": user(repo.base, repo.owner, kind="Organization"),
        "network_count": 0,
        "subscribers_count": 0,
        "allow_update_branch": False,
        "use_squash_pr_title_as_default": False,
        "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
        "squash_merge_commit_message": "COMMIT_MESSAGES",
        "merge_commit_title": "MERGE_MESSAGE",
        "merge_commit_message": "PR_TITLE",
        "temp_clone_token": None,
    }


def commit(repo: RepoFacts, c: CommitInfo) -> JSON:
    """A ``commit`` (a pull request's commits, a branch's head commit)."""
    return {
        "sha": c.sha,
        "node_id": f"C_{c.sha}",
        "url": f"{repo.api}/commits/{c.sha}",
        "html_url": f"{repo.web}/commit/{c.sha}",
        "comments_url": f"{repo.api}/commits/{c.sha}/comments",
        "commit": {
            "url": f"{repo.api}/git/commits/{c.sha}",
            "author": {"name": c.author_name, "email": c.author_email, "date": c.author_date},
            "committer": {
                "name": c.committer_name,
                "email": c.committer_email,
                "date": c.committer_date,
            },
            "message": c.message,
            "comment_count": 0,
            "tree": {"sha": c.tree, "url": f"{repo.api}/git/trees/{c.tree}"},
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        # The commit's people are no GitHub accounts: GitHub answers an empty object.
        "author": {},
        "committer": {},
        "parents": [
            {"sha": p, "url": f"{repo.api}/commits/{p}", "html_url": f"{repo.web}/commit/{p}"}
            for p in c.parents
        ],
    }


def simple_commit(c: CommitInfo) -> JSON:
    """A ``simple-commit`` (a workflow run's ``head_commit``)."""
    return {
        "id": c.sha,
        "tree_id": c.tree,
        "message": c.message,
        "timestamp": c.committer_date,
        "author": {"name": c.author_name, "email": c.author_email},
        "committer": {"name": c.committer_name, "email": c.committer_email},
    }


def actions_app(base: str, created_at: str) -> JSON:
    """The GitHub Actions app (``integration``) that owns the rehearsal's check runs."""
    return {
        "id": ACTIONS_APP_ID,
        "slug": "github-actions",
        "node_id": f"A_{ACTIONS_APP_ID}",
        "client_id": "Iv1.rehearsal",
        "owner": user(base, "github", kind="Organization"),
        "name": "GitHub Actions",
        "description": "Automate your workflow from idea to production",
        "external_url": "https://help.github.com/en/actions",
        "html_url": f"{base}/apps/github-actions",
        "created_at": created_at,
        "updated_at": created_at,
        "permissions": {
            "actions": "write",
            "checks": "write",
            "contents": "write",
            "deployments": "write",
            "metadata": "read",
            "pull_requests": "write",
            "statuses": "write",
        },
        "events": ["check_run", "check_suite", "push", "pull_request", "workflow_dispatch"],
    }


def pull_links(repo: RepoFacts, number: int, head_sha: str) -> JSON:
    """A pull request's ``_links``."""
    pulls, issues = f"{repo.api}/pulls/{number}", f"{repo.api}/issues/{number}"
    return {
        "self": {"href": pulls},
        "html": {"href": f"{repo.web}/pull/{number}"},
        "issue": {"href": issues},
        "comments": {"href": f"{issues}/comments"},
        "review_comments": {"href": f"{pulls}/comments"},
        "review_comment": {"href": f"{repo.api}/pulls/comments{{/number}}"},
        "commits": {"href": f"{pulls}/commits"},
        "statuses": {"href": f"{repo.api}/statuses/{head_sha}"},
    }


def pull_urls(repo: RepoFacts, number: int, head_sha: str) -> JSON:
    """The hypermedia URLs of a pull request (both list items and single PRs carry them)."""
    pulls, issues = f"{repo.api}/pulls/{number}", f"{repo.api}/issues/{number}"
    return {
        "url": pulls,
        "html_url": f"{repo.web}/pull/{number}",
        "diff_url": f"{repo.web}/pull/{number}.diff",
        "patch_url": f"{repo.web}/pull/{number}.patch",
        "issue_url": issues,
        "commits_url": f"{pulls}/commits",
        "review_comments_url": f"{pulls}/comments",
        "review_comment_url": f"{repo.api}/pulls/comments{{/number}}",
        "comments_url": f"{issues}/comments",
        "statuses_url": f"{repo.api}/statuses/{head_sha}",
        "_links": pull_links(repo, number, head_sha),
    }


def pull_end(repo: RepoFacts, ref: str, sha: str) -> JSON:
    """A pull request's ``head`` or ``base``."""
    return {
        "label": f"{repo.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(repo.base, repo.owner, kind="Organization"),
        "repo": repository(repo),
    }


def deployment(repo: RepoFacts, *, deployment_id: int, environment: str, sha: str, ref: str,
               creator: str, at: str) -> JSON:  # fmt: skip
    """A ``deployment`` (the answer to approving a pending deployment)."""
    url = f"{repo.api}/deployments/{deployment_id}"
    return {
        "url": url,
        "id": deployment_id,
        "node_id": f"DE_{deployment_id}",
        "sha": sha,
        "ref": ref,
        "task": "deploy",
        "payload": {},
        "original_environment": environment,
        "environment": environment,
        "description": None,
        "creator": user(repo.base, creator),
        "created_at": at,
        "updated_at": at,
        "statuses_url": f"{url}/statuses",
        "repository_url": repo.api,
        "transient_environment": False,
        "production_environment": True,
    }
