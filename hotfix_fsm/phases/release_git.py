"""The few git operations the GitHub phases need: remote heads and tags, release tags,
branch clean-up, the commits and diffstat of the fix.

Plain ``git`` argv with a timeout (no shell); every ref name that reaches git was
validated by git's own rules or is a hex sha, and ``--`` ends options where git allows it.
These are private to the GitHub phases; the git adapter (``adapters/git.py``) serves the
git phases.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hotfix_fsm.errors import PermanentError, TransientError
from hotfix_fsm.redact import redact

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_FALLBACK_IDENTITY = ("-c", "user.name=hotfix-fsm", "-c", "user.email=hotfix-fsm@localhost")


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    author: str


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str | None  # short name, None when detached


class ReleaseGit:
    """git in the hotfix's repository, talking to one remote."""

    def __init__(self, repo: str | os.PathLike[str], remote: str, timeout: float) -> None:
        if not remote or remote.startswith("-"):
            raise PermanentError(
                f"remote name {remote!r} is not usable",
                hint='set remote = "origin" (or your remote) in hotfix.toml',
            )
        self.repo = Path(repo)
        self.remote = remote
        self.timeout = timeout
        self._env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> str:
        """Run git; stdout stripped. Failures raise PermanentError, timeouts TransientError."""
        argv = ["git", "-C", str(cwd or self.repo), *args]
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                env=self._env,
                timeout=self.timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise TransientError(
                f"git {args[0]} did not finish within {self.timeout:.0f}s",
                hint="check the network to the remote, or raise git_timeout",
            ) from exc
        except OSError as exc:
            raise PermanentError(
                f"cannot run git: {exc.strerror}", hint="install git and put it on PATH"
            ) from exc
        if check and proc.returncode != 0:
            raise GitFailed(args, proc.returncode, proc.stderr)
        return proc.stdout.strip()

    # -- names ---------------------------------------------------------------------------

    def ok(self, *args: str) -> bool:
        """True when the git command exits 0."""
        try:
            return (
                subprocess.run(
                    ["git", "-C", str(self.repo), *args],
                    capture_output=True,
                    env=self._env,
                    timeout=self.timeout,
                    check=False,
                    stdin=subprocess.DEVNULL,
                ).returncode
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False

    def valid_tag(self, name: str) -> bool:
        """git's own rules for a tag name (and no leading dash)."""
        return (
            bool(name)
            and not name.startswith("-")
            and self.ok("check-ref-format", f"refs/tags/{name}")
        )

    @staticmethod
    def _branch(name: str) -> str:
        if not name or name.startswith("-"):
            raise PermanentError(f"branch name {name!r} is not usable")
        return name

    # -- the remote ----------------------------------------------------------------------

    def _ls_remote(self, ref: str) -> dict[str, str]:
        out = self.run("ls-remote", self.remote, ref, f"{ref}^{{}}")
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            found[name.strip()] = sha.strip()
        return found

    def remote_head(self, branch: str) -> str | None:
        """The commit ``branch`` points at on the remote, or None."""
        ref = f"refs/heads/{self._branch(branch)}"
        return self._ls_remote(ref).get(ref)

    def remote_tag(self, tag: str) -> str | None:
        """The commit tag ``tag`` points at on the remote (peeled), or None."""
        ref = f"refs/tags/{tag}"
        found = self._ls_remote(ref)
        return found.get(f"{ref}^{{}}") or found.get(ref)

    def fetch(self, *branches: str, tags: bool = True) -> None:
        specs = [f"+refs/heads/{self._branch(b)}:refs/remotes/{self.remote}/{b}" for b in branches]
        self.run("fetch", "--quiet", *(["--tags"] if tags else []), self.remote, *specs)

    def push_ref(self, source: str, ref: str) -> bool:
        """Push without force; False when the remote refused (for example, it exists)."""
        try:
            self.run("push", "--quiet", "--porcelain", self.remote, f"{source}:{ref}")
        except GitFailed as exc:
            if "rejected" in exc.stderr or "already exists" in exc.stderr:
                return False
            raise
        return True

    # -- local objects -------------------------------------------------------------------

    def commit_of(self, rev: str) -> str | None:
        out = self.run(
            "rev-parse", "-q", "--verify", "--end-of-options", f"{rev}^{{commit}}", check=False
        )
        return out or None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.ok("merge-base", "--is-ancestor", ancestor, descendant)

    def last_tag(self, sha: str, pattern: str | None) -> str | None:
        """The nearest tag reachable from ``sha`` (matching ``pattern``), or None."""
        args = ["describe", "--tags", "--abbrev=0"]
        if pattern:
            args += ["--match", pattern]
        out = self.run(*args, sha, check=False)
        return out or None

    def tags(
        self, pattern: str = "*", *, merged_into: str | None = None, points_at: str | None = None
    ) -> list[str]:
        args = ["tag", "--list"]
        if merged_into:
            args.append(f"--merged={merged_into}")
        if points_at:
            args.append(f"--points-at={points_at}")
        return self.run(*args, "--", pattern).split()

    def create_tag(self, name: str, sha: str, message: str) -> None:
        identity = (
            () if self.run("var", "GIT_COMMITTER_IDENT", check=False) else (_FALLBACK_IDENTITY)
        )
        self.run(*identity, "tag", "--annotate", "--message", message, "--", name, sha)

    def commits(self, base: str, head: str, limit: int = 50) -> list[Commit]:
        out = self.run(
            "log", f"--max-count={limit}", "--format=%H%x1f%s%x1f%an", f"{base}..{head}", "--"
        )
        found = []
        for line in out.splitlines():
            sha, subject, author = ([*line.split("\x1f"), "", ""])[:3]
            found.append(Commit(sha, subject, author))
        return found

    def diffstat(self, base: str, head: str) -> str:
        return self.run("diff", "--stat=100", base, head, "--")

    # -- branches and work trees ---------------------------------------------------------

    def local_branch(self, branch: str) -> str | None:
        return self.commit_of(f"refs/heads/{self._branch(branch)}")

    def worktrees(self) -> list[Worktree]:
        out = self.run("worktree", "list", "--porcelain")
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

    def dirty(self, path: Path) -> bool:
        return bool(self.run("status", "--porcelain", "--untracked-files=no", cwd=path))

    def switch_away(self, path: Path, candidates: list[str]) -> str:
        """Check out the first existing local branch of ``candidates`` in ``path``, else
        detach HEAD; returns what was checked out."""
        for name in candidates:
            if (
                self.local_branch(name)
                and self.run("checkout", "--quiet", name, "--", cwd=path, check=False) == ""
                and self.current_branch(path) == name
            ):
                return name
        self.run("checkout", "--quiet", "--detach", cwd=path)
        return "a detached HEAD"

    def current_branch(self, path: Path) -> str | None:
        out = self.run("symbolic-ref", "--quiet", "--short", "HEAD", cwd=path, check=False)
        return out or None

    def delete_local_branch(self, branch: str) -> None:
        self.run("branch", "--delete", "--force", "--", self._branch(branch))


class GitFailed(PermanentError):
    """A git command failed; the message carries git's own words."""

    def __init__(self, args: tuple[str, ...], code: int, stderr: str) -> None:
        self.stderr = redact(stderr.strip())
        first = self.stderr.splitlines()[-1] if self.stderr else f"exit status {code}"
        super().__init__(
            f"git {args[0]} failed: {first}",
            hint="run the command by hand in the repository to see the cause",
        )


def semver(tag: str, prefix: str) -> tuple[int, int, int] | None:
    """``(X, Y, Z)`` of a ``<prefix>X.Y.Z`` tag, else None."""
    match = _SEMVER.match(tag[len(prefix) :]) if tag.startswith(prefix) else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def next_patch(tags: list[str], prefix: str) -> str:
    """The next patch version after the highest ``<prefix>X.Y.Z`` in ``tags``."""
    best: tuple[int, int, int] | None = None
    for tag in tags:
        version = semver(tag, prefix)
        if version is not None:
            best = version if best is None or version > best else best
    major, minor, patch = best or (0, 0, 0)
    return f"{prefix}{major}.{minor}.{patch + 1}"


def bump_until_free(name: str, taken: set[str], prefix: str) -> str:
    """``name`` or the next patch versions after it that no tag uses yet."""
    while name in taken:
        name = next_patch([name], prefix)
    return name
