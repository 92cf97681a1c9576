"""Real git operations on the rehearsal server's bare repository.

Every argument that comes from a request is either prefixed with ``refs/`` or checked to be
hexadecimal before it reaches git, so nothing a client sends can be read as an option or as
revision syntax (``main~1``, ``@{-1}``).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ZERO_OID = "0" * 40
_HEX = re.compile(r"[0-9a-fA-F]{4,40}")
_IDENTITY = {
    "GIT_AUTHOR_NAME": "GitHub Rehearsal",
    "GIT_AUTHOR_EMAIL": "noreply@rehearsal.local",
    "GIT_COMMITTER_NAME": "GitHub Rehearsal",
    "GIT_COMMITTER_EMAIL": "noreply@rehearsal.local",
}
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class GitError(RuntimeError):
    """A git command failed unexpectedly."""


def valid_ref_name(name: str) -> bool:
    """Approximate ``git check-ref-format`` for a short branch or tag name."""
    if not name or name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        return False
    if ".." in name or "@{" in name or "//" in name or name == "@":
        return False
    if _BAD_REF_CHARS.search(name):
        return False
    return not any(part.startswith(".") for part in name.split("/"))


@dataclass(frozen=True)
class CommitInfo:
    """The fields of a commit the API renders."""

    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    author_date: str
    committer_name: str
    committer_email: str
    committer_date: str
    message: str
    tree: str = ""


class BareRepo:
    """Thin argv-only wrapper over ``git --git-dir=<bare>``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(_IDENTITY)
        self._env = env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run git against the bare repository; raise GitError on failure if ``check``."""
        proc = subprocess.run(
            ["git", f"--git-dir={self.path}", *args],
            capture_output=True,
            text=True,
            env=self._env,
            check=False,
        )
        if check and proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def ref_sha(self, full_ref: str) -> str | None:
        """The object a fully qualified ref points at (exact name, no revision syntax)."""
        if not full_ref.startswith("refs/"):
            return None
        proc = self.run("show-ref", "--verify", "--", full_ref, check=False)
        if proc.returncode != 0 or not proc.stdout:
            return None
        return proc.stdout.split()[0]

    def branch_sha(self, branch: str) -> str | None:
        """The commit a branch points at, or None."""
        return self.ref_sha(f"refs/heads/{branch}") if valid_ref_name(branch) else None

    def object_type(self, sha: str) -> str:
        """``commit``, ``tag``, ..."""
        return self.run("cat-file", "-t", sha).stdout.strip()

    def peel(self, sha: str) -> str | None:
        """Peel a hexadecimal object id (tag or commit, full or abbreviated) to a commit."""
        if not _HEX.fullmatch(sha):
            return None
        proc = self.run("rev-parse", "-q", "--verify", f"{sha}^{{commit}}", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def resolve(self, ref: str) -> tuple[str, str | None] | None:
        """Resolve a branch, tag or sha to ``(commit sha, branch-or-tag name)``."""
        for prefix in ("refs/heads/", "refs/tags/"):
            if ref.startswith(prefix):
                name = ref[len(prefix) :]
                sha = self.ref_sha(ref) if valid_ref_name(name) else None
                peeled = self.peel(sha) if sha else None
                return (peeled, name) if peeled else None
        if valid_ref_name(ref):
            for prefix in ("refs/heads/", "refs/tags/"):
                sha = self.ref_sha(prefix + ref)
                peeled = self.peel(sha) if sha else None
                if peeled:
                    return peeled, ref
        peeled = self.peel(ref)
        return (peeled, None) if peeled else None

    def branches_containing(self, sha: str) -> list[str]:
        """Branch names whose tip contains ``sha`` (a full commit id)."""
        proc = self.run(
            "for-each-ref", "--format=%(refname:short)", f"--contains={sha}", "refs/heads/"
        )
        return proc.stdout.split()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``ancestor`` is reachable from ``descendant``."""
        proc = self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        return proc.returncode == 0

    def merge_tree(self, base: str, head: str) -> tuple[bool, str]:
        """Three-way merge without a worktree: ``(clean, tree sha)``."""
        proc = self.run("merge-tree", "--write-tree", base, head, check=False)
        if proc.returncode not in (0, 1):
            raise GitError(f"git merge-tree: {proc.stderr.strip()}")
        return proc.returncode == 0, proc.stdout.split("\n", 1)[0].strip()

    def merge_base(self, one: str, other: str) -> str | None:
        """The best common ancestor of two commits (hex ids only)."""
        proc = self.run("merge-base", one, other, check=False)
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def diff_stat(self, base: str, head: str) -> tuple[int, int, int]:
        """``(changed files, added lines, deleted lines)`` from ``base`` to ``head``."""
        proc = self.run("diff", "--numstat", base, head)
        files = additions = deletions = 0
        for line in proc.stdout.splitlines():
            added, deleted, _ = line.split("\t", 2)
            files += 1
            # A binary file shows "-": it counts as changed, with no lines.
            additions += int(added) if added.isdigit() else 0
            deletions += int(deleted) if deleted.isdigit() else 0
        return files, additions, deletions

    def commit_tree(self, tree: str, parents: list[str], message: str) -> str:
        """Create a commit object with the rehearsal identity."""
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        args += ["-m", message]
        return self.run(*args).stdout.strip()

    def update_ref(self, full_ref: str, new: str, old: str) -> bool:
        """Compare-and-swap a ref; False when ``old`` no longer matches."""
        return self.run("update-ref", full_ref, new, old, check=False).returncode == 0

    def delete_ref(self, full_ref: str, old: str) -> bool:
        """Compare-and-delete a ref."""
        return self.run("update-ref", "-d", full_ref, old, check=False).returncode == 0

    def commits(self, rev_range: str, *, limit: int = 250) -> list[CommitInfo]:
        """Commits in ``rev_range`` (hex ids only), oldest first."""
        fmt = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%T%x00%B%x1e"
        proc = self.run("log", "--reverse", f"--max-count={limit}", f"--format={fmt}", rev_range)
        out: list[CommitInfo] = []
        for record in proc.stdout.split("\x1e"):
            fields = record.lstrip("\n").split("\x00")
            if len(fields) != 10:
                continue
            out.append(
                CommitInfo(
                    sha=fields[0],
                    parents=fields[1].split(),
                    author_name=fields[2],
                    author_email=fields[3],
                    author_date=fields[4],
                    committer_name=fields[5],
                    committer_email=fields[6],
                    committer_date=fields[7],
                    tree=fields[8],
                    message=fields[9].rstrip("\n"),
                )
            )
        return out

    def commit(self, sha: str) -> CommitInfo:
        """One commit's fields."""
        found = self.commits(f"{sha}^!", limit=1)
        if not found:
            raise GitError(f"no commit {sha}")
        return found[0]
