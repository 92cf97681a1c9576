"""GitRepo helpers against a real bare origin and clone."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from hotfix_fsm.adapters.git import (
    GitCommandError,
    GitNetworkError,
    GitPushRejected,
    GitRepo,
    git_environment,
    strip_userinfo,
)
from hotfix_fsm.errors import InvalidInput
from tests.helpers_git import GitWorld, git


@pytest.fixture
def repo(world: GitWorld) -> GitRepo:
    with GitRepo(world.work) as opened:
        yield opened


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_queries(world: GitWorld, repo: GitRepo) -> None:
    assert repo.work_tree == world.work.resolve()
    assert repo.current_branch() == "main"
    assert repo.is_clean()
    assert repo.ls_remote("production") == world.base_sha
    assert repo.ls_remote("refs/heads/no-such-branch") is None
    assert repo.rev_parse("origin/production") == world.base_sha
    assert repo.resolve_commit("no-such-rev") is None
    assert repo.resolve_commit("--output=/tmp/x") is None
    assert repo.is_ancestor(world.shas["initial"], world.base_sha)
    assert not repo.is_ancestor(world.shas["main"], world.base_sha)
    commits = repo.commits_between(world.shas["initial"], world.shas["main"])
    assert [c["subject"] for c in commits] == [
        "feature on main",
        "Fix token expiry check",
        "raise timeout",
    ]
    assert "app.py" in repo.diffstat(world.shas["feature"], world.shas["fix_on_main"])
    assert repo.describe(world.base_sha) == "v1.0.0"
    assert repo.tag_commit("v1.0.0") == world.shas["initial"]
    assert repo.remote_tag_commit("v1.0.0") == world.shas["initial"]
    assert repo.remote_tag_commit("v9.9.9") is None
    info = repo.commit_info(world.shas["fix_on_main"])
    assert info["parents"] == [world.shas["feature"]]
    assert info["subject"] == "Fix token expiry check"


def test_status_sees_untracked_but_not_ignored_files(world: GitWorld, repo: GitRepo) -> None:
    world.write("debug.log", "ignored by .gitignore\n")
    assert repo.is_clean()
    world.write("new file.txt", "untracked\n")
    assert repo.status() == ["?? new file.txt"]
    assert repo.is_clean(untracked=False)


def test_tags_are_created_pushed_and_never_moved(world: GitWorld, repo: GitRepo) -> None:
    repo.create_annotated_tag("v1.0.1", world.base_sha, "release v1.0.1\n\n$(id) `id`\n")
    repo.create_annotated_tag("v1.0.1", world.base_sha, "again: same commit is fine")
    with pytest.raises(GitCommandError, match="already exists"):
        repo.create_annotated_tag("v1.0.1", world.shas["main"], "elsewhere")
    repo.push_tag("v1.0.1")
    assert repo.remote_tag_commit("v1.0.1") == world.base_sha
    message = git(world.origin, "tag", "-l", "--format=%(contents)", "v1.0.1")
    assert "$(id) `id`" in message
    # Someone else's different v1.0.2 on the remote: our push is refused, not forced.
    git(world.seed, "tag", "-a", "v1.0.2", "-m", "theirs", world.shas["main"])
    git(world.seed, "push", "--quiet", "origin", "v1.0.2")
    repo.create_annotated_tag("v1.0.2", world.base_sha, "ours")
    with pytest.raises(GitPushRejected):
        repo.push_tag("v1.0.2")
    assert repo.remote_tag_commit("v1.0.2") == world.shas["main"]
    assert not world.forced_updates()


def test_push_and_delete_branches(world: GitWorld, repo: GitRepo) -> None:
    repo.push_ref(world.base_sha, "refs/heads/hotfix/X-1")
    assert world.remote_sha("hotfix/X-1") == world.base_sha
    with pytest.raises(GitPushRejected, match=r"rejected|non-fast-forward|fetch first"):
        repo.push_ref(world.shas["main"], "refs/heads/hotfix/X-1")
    with pytest.raises(GitCommandError, match="not deleting"):
        repo.delete_remote_branch("hotfix/X-1", expect_sha=world.shas["main"])
    assert repo.delete_remote_branch("hotfix/X-1", expect_sha=world.base_sha)
    assert not repo.delete_remote_branch("hotfix/X-1")
    assert world.remote_sha("hotfix/X-1") is None
    repo.create_branch("hotfix/X-1", world.base_sha)
    assert repo.current_branch() == "hotfix/X-1"
    with pytest.raises(GitCommandError, match="checked out"):
        repo.delete_local_branch("hotfix/X-1")
    repo.checkout("main")
    assert repo.delete_local_branch("hotfix/X-1")
    assert not repo.delete_local_branch("hotfix/X-1")
    assert not world.forced_updates()


def test_revert_commits_a_revert(world: GitWorld, repo: GitRepo) -> None:
    head = repo.head_sha()
    new = repo.revert(world.shas["config_on_main"], "Revert timeout\n\nHotfix-Id: X\n")
    assert repo.commit_info(new)["parents"] == [head]
    assert (world.work / "config.txt").read_text() == "timeout=10\n"
    assert repo.find_commit_with_trailer(head, new, "Hotfix-Id", "X") == new
    assert repo.find_commit_with_trailer(head, new, "Hotfix-Id", "Y") is None


def test_remote_url_never_carries_credentials(world: GitWorld, repo: GitRepo) -> None:
    git(world.work, "remote", "add", "secret", "https://user:tok3n-value@example.invalid/o/r.git")
    with GitRepo(world.work, remote="secret") as other:
        assert other.remote_url() == "https://example.invalid/o/r.git"
    with GitRepo(world.work, remote="missing") as other:
        assert other.remote_url() is None
    assert strip_userinfo("fatal: https://a:b@h/x and ssh://git@h/y") == (
        "fatal: https://h/x and ssh://h/y"
    )
    assert strip_userinfo("git@github.com:o/r.git") == "git@github.com:o/r.git"


def test_unreachable_remote_is_a_transient_error(world: GitWorld) -> None:
    url = f"http://127.0.0.1:{closed_port()}/repo.git"
    git(world.work, "remote", "add", "down", url)
    with GitRepo(world.work, remote="down", timeout=30) as down:
        with pytest.raises(GitNetworkError, match="failed"):
            down.ls_remote("production")
        with pytest.raises(GitNetworkError):
            down.push_ref(world.base_sha, "refs/heads/hotfix/X-2")


def test_missing_remote_repository_is_permanent(world: GitWorld, tmp_path: Path) -> None:
    git(world.work, "remote", "add", "gone", str(tmp_path / "nowhere.git"))
    with GitRepo(world.work, remote="gone") as gone, pytest.raises(GitCommandError) as err:
        gone.fetch()
    assert not isinstance(err.value, GitNetworkError)


def test_not_a_work_tree(tmp_path: Path, world: GitWorld) -> None:
    with GitRepo(tmp_path / "empty") as nowhere:
        assert not nowhere.is_work_tree()
        with pytest.raises(InvalidInput, match="not inside a git work tree"):
            nowhere.status()  # any use: finding the work tree refuses first
    with GitRepo(world.origin) as bare, pytest.raises(InvalidInput, match="bare"):
        _ = bare.work_tree


def test_git_never_prompts() -> None:
    env = git_environment({"GIT_SSH_COMMAND": "ssh -i key"})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_SSH_COMMAND"] == "ssh -i key -o BatchMode=yes"
    assert git_environment({})["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes"


def test_git_starts_no_maintenance_and_keeps_the_callers_own_config(tmp_path: Path) -> None:
    # Real git reads the settings from the environment: after a fetch or a commit of the
    # hotfix, no `maintenance run --auto` / `gc --auto` runs.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = git_environment(
        {
            "PATH": os.environ["PATH"],
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "user.name",
            "GIT_CONFIG_VALUE_0": "Ops Person",
        }
    )

    def get(key: str) -> str:
        return subprocess.run(
            ["git", "config", "--get", key],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    assert get("maintenance.auto") == "false"
    assert get("gc.auto") == "0"
    assert get("user.name") == "Ops Person"  # what the caller passed is still there
