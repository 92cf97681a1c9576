"""``GitRepo``: the git operations phases need, over GitPython and ``git`` argv subprocesses.

GitPython opens and validates the repository and reads commit objects; everything that
touches the network, feeds a message on stdin or must obey a deadline runs ``git`` as an
argv list with a timeout (its whole process group is killed when the timeout passes).

No credential prompt can hang a hotfix: ``GIT_TERMINAL_PROMPT=0``, ssh ``BatchMode=yes``
and Git Credential Manager's ``GCM_INTERACTIVE=never``; credential helpers still work.
Nothing here force-pushes. Errors are ``hotfix_fsm.errors`` types: ``GitNetworkError`` (a
``TransientError``, retried) for an unreachable remote, ``GitCommandError`` (a
``PermanentError``) for anything else, with git's own words (credentials stripped).

Helpers the later phases use (all take full 40-hex shas or revisions):

* remote (``adapters/git_remote.py``): ``fetch``, ``fetch_branch``, ``ls_remote``,
  ``remote_tag_commit``, ``push_ref``, ``push_tag``, ``delete_remote_branch`` (idempotent),
  ``remote_url`` (no userinfo);
* history: ``rev_parse``, ``resolve_commit``, ``is_ancestor``, ``diffstat``,
  ``commits_between``, ``commit_log``, ``commit_info``, ``find_commit_with_trailer``,
  ``describe``;
* work tree: ``checkout``, ``current_branch``, ``head_sha``, ``is_clean``, ``status``,
  ``stage_all``, ``commit``, ``revert``, ``local_branch_sha``, ``delete_local_branch``;
* work trees of the repository: ``worktrees``, ``worktree_dirty``, ``switch_away``;
* tags: ``tags``, ``tag_exists``, ``tag_commit``, ``is_valid_tag_name``,
  ``create_annotated_tag``.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_fsm.adapters.commands import Captured, CommandNotFound, run_captured
from hotfix_fsm.adapters.git_errors import (
    GitCommandError,
    GitNetworkError,
    GitPushRejected,
    clean_output,
    git_environment,
    git_failure,
    strip_userinfo,
    subcommand,
)
from hotfix_fsm.adapters.git_remote import GitRemoteOps
from hotfix_fsm.config import CONFIG_FILE
from hotfix_fsm.core.fence import confirm_before_effect
from hotfix_fsm.core.validate import validate_ref
from hotfix_fsm.errors import InvalidInput, PermanentError

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")
# Used only when git has no identity to sign a release tag with (a CI machine, say).
_FALLBACK_IDENTITY = ("-c", "user.name=hotfix-fsm", "-c", "user.email=hotfix-fsm@localhost")

__all__ = [
    "ZERO_SHA",
    "GitCommandError",
    "GitNetworkError",
    "GitPushRejected",
    "GitRepo",
    "Worktree",
    "git_environment",
    "strip_userinfo",
]


@dataclass(frozen=True)
class Worktree:
    """One work tree of the repository (``git worktree list``)."""

    path: Path
    branch: str | None  # short name; None when HEAD is detached


class GitRepo(GitRemoteOps):
    """One git work tree and its remote.

    Args:
        path: the work tree (or a directory inside it).
        remote: the remote every network operation talks to.
        timeout: seconds any single git command may take (network ones included).
        config_files: the tool's own configuration files (relative to the top level, or
            absolute): untracked, they are never a change of the work tree (``status``)
            and never go into a commit (``stage_all``). ``hotfix.toml`` by default.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        remote: str = "origin",
        timeout: float = 120.0,
        config_files: Sequence[str | os.PathLike[str]] = (CONFIG_FILE,),
    ) -> None:
        self.path = Path(path)
        self.remote = remote
        self.timeout = timeout
        self.config_files = tuple(config_files)
        self._env = git_environment()
        self._lock = threading.Lock()
        self._repo: Any = None
        self._top: Path | None = None
        self._commits_by_sha: dict[str, dict[str, Any]] = {}  # a full sha names one commit

    # -- running git ---------------------------------------------------------------------

    def run(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        network: bool = False,
        timeout: float | None = None,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Captured:
        """Run ``git <args>`` in the work tree (or in ``cwd``, another work tree of the
        repository), with ``env`` added to the environment; raise on failure when
        ``check``."""
        argv = ["git", *args]
        limit = self.timeout if timeout is None else timeout
        if args and args[0] == "push":
            confirm_before_effect()  # a push is an effect: only while this driver holds the hotfix
        try:
            result = run_captured(
                argv,
                # self.work_tree: a clear InvalidInput first when this is no work tree
                cwd=self.work_tree if cwd is None else cwd,
                timeout=limit,
                env={**self._env, **env} if env else self._env,
                input=input.encode() if input is not None else None,
            )
        except CommandNotFound as exc:
            raise PermanentError(
                f"cannot run git: {exc.reason}", hint="install git and make sure it is on PATH"
            ) from exc
        if result.timed_out:
            message = f"`git {subcommand(args)}` timed out after {limit:.0f}s"
            if network:
                raise GitNetworkError(
                    message + f" talking to remote {self.remote!r}",
                    hint="check the network and the remote, then resume",
                )
            raise GitCommandError(
                message,
                argv=argv,
                hint="check the repository; "
                "raise git_timeout in the configuration if it is just slow",
            )
        if check and result.returncode != 0:
            raise git_failure(args, result, remote=self.remote, network=network)
        return result

    # -- the repository ------------------------------------------------------------------

    @property
    def repo(self) -> Any:
        """The GitPython ``Repo`` (opened once; raises InvalidInput if not a work tree)."""
        with self._lock:
            if self._repo is None:
                import git

                try:
                    repo = git.Repo(self.path, search_parent_directories=True, expand_vars=False)
                except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
                    raise InvalidInput(
                        f"{self.path} is not inside a git work tree",
                        hint="run hotfix from (or pass --repo) a clone of the repository",
                    ) from exc
                if repo.bare:
                    repo.close()
                    raise InvalidInput(
                        f"{self.path} is a bare repository, not a work tree",
                        hint="use a clone with a checked-out work tree",
                    )
                repo.git.update_environment(**self._env)
                self._repo = repo
            return self._repo

    @property
    def work_tree(self) -> Path:
        """The top directory of the work tree (where people edit the fix)."""
        if self._top is None:
            self._top = Path(self.repo.working_tree_dir).resolve()
        return self._top

    def is_work_tree(self) -> bool:
        try:
            self.repo  # noqa: B018 - opening validates
        except InvalidInput:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- work tree -----------------------------------------------------------------------

    def status(self, *, untracked: bool = True) -> list[str]:
        """``git status --porcelain`` entries (``XY path``); ignored files never appear,
        nor does an untracked configuration file of the tool's (``config_files``)."""
        flag = "--untracked-files=all" if untracked else "--untracked-files=no"
        raw = self.run("status", "--porcelain=v1", "-z", flag).stdout
        own = self._own_config_paths()
        entries: list[str] = []
        items = iter(raw.split("\0"))
        for item in items:
            if not item:
                continue
            if item[:3] == "?? " and item[3:] in own:
                continue
            entries.append(item)
            if item[:1] in ("R", "C"):  # a rename's source path follows
                next(items, None)
        return entries

    def _own_config_paths(self) -> set[str]:
        """``config_files`` as paths from the top level (those inside the work tree)."""
        top = self.work_tree
        found = set()
        for name in self.config_files:
            path = Path(name)
            full = (path if path.is_absolute() else top / path).resolve()
            try:
                found.add(full.relative_to(top).as_posix())
            except ValueError:
                continue  # outside this work tree: git never lists it
        return found

    def _untracked_own_config(self) -> list[str]:
        """The tool's configuration files that git would add: untracked and not ignored
        (naming an ignored file in a pathspec makes ``git add`` fail)."""
        own = sorted(p for p in self._own_config_paths() if (self.work_tree / p).is_file())
        if not own:
            return []
        listed = self._out(
            "--literal-pathspecs", "ls-files", "-z", "--others", "--exclude-standard", "--", *own
        )
        return [p for p in listed.split("\0") if p]

    def is_clean(self, *, untracked: bool = True) -> bool:
        return not self.status(untracked=untracked)

    def operation_in_progress(self) -> str | None:
        """A merge, rebase, cherry-pick, revert or bisect left unfinished, or None."""
        names = {
            "MERGE_HEAD": "merge",
            "CHERRY_PICK_HEAD": "cherry-pick",
            "REVERT_HEAD": "revert",
            "rebase-merge": "rebase",
            "rebase-apply": "rebase",
            "BISECT_LOG": "bisect",
        }
        args = [arg for marker in names for arg in ("--git-path", marker)]
        paths = self._out("rev-parse", *args).splitlines()
        for marker, path in zip(names, paths, strict=False):
            full = path if os.path.isabs(path) else self.work_tree / path
            if os.path.exists(full):
                return names[marker]
        return None

    def conflicted_files(self) -> list[str]:
        raw = self.run("diff", "--name-only", "--diff-filter=U", "-z").stdout
        return sorted({p for p in raw.split("\0") if p})

    def current_branch(self, worktree: Path | None = None) -> str | None:
        """The checked-out branch (of this or another work tree), or None when detached."""
        result = self.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False, cwd=worktree)
        return (result.stdout.strip() or None) if result.returncode == 0 else None

    def head_sha(self) -> str:
        return self.rev_parse("HEAD")

    def checkout(self, ref: str) -> None:
        """Check out an existing branch (or a commit, detached)."""
        if self.local_branch_sha(ref):
            self.run("switch", "--no-guess", ref)
        else:
            self.run("switch", "--detach", self.rev_parse(ref))

    def create_branch(self, branch: str, start_sha: str, *, checkout: bool = True) -> None:
        """Create a local branch at ``start_sha`` (no upstream), checked out by default."""
        validate_ref(branch, "branch name")
        if checkout:
            self.run("switch", "--no-track", "-c", branch, start_sha)
        else:
            self.run("branch", "--no-track", branch, start_sha)

    def delete_local_branch(self, branch: str) -> bool:
        """Delete a local branch (even unmerged); False when it did not exist."""
        if self.local_branch_sha(branch) is None:
            return False
        if self.current_branch() == branch:
            raise GitCommandError(
                f"branch {branch} is checked out; switch away first",
                hint="check out the main branch, then retry",
            )
        self.run("branch", "-D", "--", branch)
        return True

    def stage_all(self) -> None:
        """Stage every change, new and deleted files included (.gitignore respected); an
        untracked configuration file of the tool's (``config_files``) is left out."""
        keep_out = [f":(exclude,literal,top){p}" for p in self._untracked_own_config()]
        self.run("add", "--all", "--", ".", *keep_out)

    def commit(self, message: str) -> str:
        """Commit the index with ``message`` verbatim (given on stdin, never via a shell)."""
        self.run("commit", "--quiet", "--cleanup=verbatim", "--file=-", input=message)
        return self.head_sha()

    def soft_reset(self, sha: str) -> None:
        self.run("reset", "--soft", sha)

    def reset_hard(self, rev: str = "HEAD") -> None:
        """Discard index and tracked work-tree changes (local only)."""
        self.run("reset", "--hard", "--quiet", rev)

    def cherry_pick_no_commit(self, sha: str) -> list[str]:
        """Apply ``sha`` to index and work tree; the conflicted files ([] = it applied)."""
        result = self.run("cherry-pick", "--no-commit", "--allow-empty", sha, check=False)
        if result.returncode == 0:
            return []
        conflicts = self.conflicted_files()
        if not conflicts:
            raise git_failure(("cherry-pick", sha), result, remote=self.remote)
        return conflicts

    def abort_cherry_pick(self) -> None:
        """Leave no half-applied cherry-pick behind (HEAD is untouched by --no-commit)."""
        self.run("cherry-pick", "--abort", check=False)
        self.reset_hard("HEAD")

    def apply_patch(self, patch: str | os.PathLike[str], *, check_only: bool = False) -> str:
        """``git apply --index`` (``--check`` first when ``check_only``); '' or git's refusal."""
        args = [
            "apply",
            "--index",
            *(["--check"] if check_only else []),
            "--",
            str(Path(patch).resolve()),
        ]
        result = self.run(*args, check=False)
        return "" if result.returncode == 0 else clean_output(result.stderr) or "git apply failed"

    def pick_onto(self, onto: str, sha: str) -> tuple[str, list[str]] | None:
        """Cherry-pick ``sha`` onto ``onto`` (a commit or tree) in the object database only:
        no ref, index or work tree changes. Returns (the resulting tree, the conflicted
        files — [] when it applies cleanly), or None when this git cannot merge without a
        work tree (``git merge-tree --write-tree`` needs git 2.38).

        The three-way merge is cherry-pick's own: ``sha``'s parent is the merge base, reached
        through a throw-away commit holding ``onto``'s tree on top of that parent.
        """
        parents = self.commit_info(sha)["parents"]
        scratch = self.run(
            *_FALLBACK_IDENTITY,
            "commit-tree",
            *(["-p", parents[0]] if parents else []),
            "-m",
            "hotfix-fsm: scratch commit to check a cherry-pick",
            f"{onto}^{{tree}}",
        ).stdout.strip()
        result = self.run(
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "-z",
            *([] if parents else ["--allow-unrelated-histories"]),
            scratch,
            sha,
            check=False,
        )
        if result.returncode not in (0, 1):
            if result.returncode == 129:  # usage: an older git without --write-tree
                return None
            raise git_failure(("merge-tree", sha), result, remote=self.remote)
        tree, *files = result.stdout.split("\0")
        return tree.strip(), sorted({f for f in files if f}) if result.returncode else []

    def tree_of(self, rev: str) -> str:
        return self._out("rev-parse", "--verify", "--end-of-options", f"{rev}^{{tree}}")

    def patch_refusal(self, patch: str | os.PathLike[str], onto: str) -> str:
        """'' when ``patch`` applies to ``onto`` (``git apply --check`` on a scratch index:
        the real index and work tree are untouched), else git's words."""
        with tempfile.TemporaryDirectory(prefix="hotfix-patch-check-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.run("read-tree", f"{onto}^{{tree}}", env=env)
            result = self.run(
                "apply",
                "--cached",
                "--check",
                "--",
                str(Path(patch).resolve()),
                env=env,
                check=False,
            )
        if result.returncode == 0:
            return ""
        return clean_output(result.stderr) or "git apply failed"

    def revert(self, sha: str, message: str) -> str:
        """Commit the revert of ``sha`` with ``message``; return the new commit's sha."""
        self.run("revert", "--no-commit", sha)
        return self.commit(message)

    # -- history -------------------------------------------------------------------------

    def rev_parse(self, rev: str) -> str:
        """The full sha of ``rev`` (peeled to a commit); raises if it does not resolve."""
        sha = self.resolve_commit(rev)
        if sha is None:
            raise GitCommandError(
                f"{rev!r} is not a commit in {self.work_tree}",
                hint="fetch the remote or check the revision",
            )
        return sha

    def resolve_commit(self, rev: str) -> str | None:
        if not rev or rev.startswith("-"):
            return None
        result = self.run(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        sha = result.stdout.strip()
        return sha if result.returncode == 0 and _SHA.match(sha) else None

    def has_commit(self, sha: str) -> bool:
        return self.resolve_commit(sha) is not None

    def local_branch_sha(self, branch: str) -> str | None:
        return self.resolve_commit(f"refs/heads/{branch}")

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        result = self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if result.returncode not in (0, 1):
            raise git_failure(("merge-base", ancestor), result, remote=self.remote)
        return result.returncode == 0

    def diffstat(self, base: str, head: str, *, width: int | None = None) -> str:
        """``git diff --stat`` of ``base`` to ``head`` (``width`` columns, git's default 80)."""
        stat = "--stat" if width is None else f"--stat={width}"
        return self.run("diff", stat, "--no-color", base, head, "--").stdout.rstrip()

    def commit_info(self, sha: str) -> dict[str, Any]:
        """sha, subject, message, parents and author of one commit (a commit named by its
        full sha never changes: read once per repository)."""
        found = self._commits_by_sha.get(sha)
        if found is None:
            repo = self.repo
            with self._lock:
                commit = repo.commit(sha)
                found = {
                    "sha": commit.hexsha,
                    "subject": str(commit.summary),
                    "message": str(commit.message),
                    "parents": [p.hexsha for p in commit.parents],
                    "author": f"{commit.author.name} <{commit.author.email}>",
                }
            if found["sha"] == sha:
                self._commits_by_sha[sha] = found
        return {**found, "parents": list(found["parents"])}

    def commits_between(self, base: str, head: str) -> list[dict[str, str]]:
        """Commits in ``base..head``, oldest first, as ``{"sha", "subject", "author"}``
        (the author as ``Name <email>``)."""
        repo = self.repo
        with self._lock:
            found = [
                {
                    "sha": c.hexsha,
                    "subject": str(c.summary),
                    "author": f"{c.author.name} <{c.author.email}>",
                }
                for c in repo.iter_commits(f"{base}..{head}")
            ]
        return list(reversed(found))

    def commit_log(self, base: str, head: str, *, limit: int = 50) -> list[dict[str, str]]:
        """At most ``limit`` commits of ``base..head``, newest first, as
        ``{"sha", "subject", "author"}`` (the author's name)."""
        out = self._out(
            "log", f"--max-count={limit}", "--format=%H%x1f%s%x1f%an", f"{base}..{head}", "--"
        )
        found = []
        for line in out.splitlines():
            sha, subject, author = [*line.split("\x1f"), "", ""][:3]
            found.append({"sha": sha, "subject": subject, "author": author})
        return found

    def find_commit_with_trailer(self, base: str, head: str, key: str, value: str) -> str | None:
        """The newest commit in ``base..head`` whose trailer ``key`` equals ``value``."""
        fmt = f"%H%x1f%(trailers:key={key},valueonly,separator=%x1f)%x1e"
        out = self.run("log", f"--format={fmt}", f"{base}..{head}", "--").stdout
        for record in out.split("\x1e"):
            sha, _, values = record.strip().partition("\x1f")
            if sha and value in [v.strip() for v in values.split("\x1f")]:
                return sha
        return None

    def describe(self, sha: str, *, match: str | None = None) -> str | None:
        """The most recent tag reachable from ``sha`` (``git describe --tags --abbrev=0``),
        only among tags matching the glob ``match`` when given; None when there is none."""
        pattern = ["--match", match] if match else []
        result = self.run("describe", "--tags", "--abbrev=0", *pattern, sha, check=False)
        return (result.stdout.strip() or None) if result.returncode == 0 else None

    # -- tags ----------------------------------------------------------------------------

    def tags(
        self, pattern: str = "*", *, merged_into: str | None = None, points_at: str | None = None
    ) -> list[str]:
        """Local tags matching the glob ``pattern``, optionally only those reachable from
        ``merged_into`` or pointing at ``points_at``."""
        args = ["tag", "--list"]
        if merged_into:
            args.append(f"--merged={merged_into}")
        if points_at:
            args.append(f"--points-at={points_at}")
        return self._out(*args, "--", pattern).split()

    def is_valid_tag_name(self, name: str) -> bool:
        """git's own rules for a tag name (``git check-ref-format``), and no leading dash."""
        if not name or name.startswith("-"):
            return False
        return self.run("check-ref-format", f"refs/tags/{name}", check=False).returncode == 0

    def tag_exists(self, name: str) -> bool:
        return self.tag_commit(name) is not None

    def tag_commit(self, name: str) -> str | None:
        """The commit a local tag points at (annotated tags peeled), or None."""
        return self.resolve_commit(f"refs/tags/{name}")

    def create_annotated_tag(self, name: str, sha: str, message: str) -> None:
        """Create an annotated tag; a tag of that name on the same commit is fine."""
        validate_ref(f"refs/tags/{name}", "tag name")
        existing = self.tag_commit(name)
        if existing == sha:
            return
        if existing is not None:
            raise GitCommandError(
                f"tag {name} already exists at {existing[:12]}, not {sha[:12]}",
                hint="pick another tag name; tags are never moved",
            )
        has_identity = self.run("var", "GIT_COMMITTER_IDENT", check=False).returncode == 0
        identity = () if has_identity else _FALLBACK_IDENTITY
        self.run(
            *identity,
            "tag",
            "--annotate",
            "--cleanup=verbatim",
            "--file=-",
            "--",
            name,
            sha,
            input=message,
        )

    def push_tag(self, name: str) -> None:
        """Push one tag (never forced: an existing different remote tag is refused)."""
        self.push_ref(f"refs/tags/{name}", f"refs/tags/{name}")

    # -- the repository's work trees -----------------------------------------------------

    def worktrees(self) -> list[Worktree]:
        """Every work tree of the repository, this one included."""
        out = self._out("worktree", "list", "--porcelain")
        found: list[Worktree] = []
        path: Path | None = None
        branch: str | None = None
        for line in [*out.splitlines(), ""]:
            if line.startswith("worktree "):
                path, branch = Path(line[len("worktree ") :]), None
            elif line.startswith("branch "):
                branch = line[len("branch ") :].removeprefix("refs/heads/")
            elif not line and path is not None:
                found.append(Worktree(path, branch))
                path = None
        return found

    def _existing(self, worktree: Path) -> Path:
        if not worktree.is_dir():
            raise GitCommandError(
                f"the work tree {worktree} is registered but its directory is gone",
                hint="run `git worktree prune` in the repository, then resume",
            )
        return worktree

    def worktree_dirty(self, worktree: Path) -> bool:
        """True when tracked files in ``worktree`` have uncommitted changes."""
        cwd = self._existing(worktree)
        return bool(self.run("status", "--porcelain", "--untracked-files=no", cwd=cwd).stdout)

    def switch_away(self, worktree: Path, candidates: list[str]) -> str:
        """Check out the first existing local branch of ``candidates`` in ``worktree``
        (one checked out elsewhere is skipped), else detach its HEAD; what was checked out.
        """
        cwd = self._existing(worktree)
        for name in candidates:
            if (
                self.local_branch_sha(name)
                and self.run("checkout", "--quiet", name, "--", cwd=cwd, check=False).ok
                and self.current_branch(cwd) == name
            ):
                return name
        self.run("checkout", "--quiet", "--detach", cwd=cwd)
        return "a detached HEAD"
