"""The remote half of ``GitRepo``: ls-remote, fetch, push and delete, never forced.

``GitRemoteOps`` is mixed into ``hotfix_fsm.adapters.git.GitRepo``, which supplies ``run``
(a ``git`` argv with a timeout), ``resolve_commit`` and ``remote``. Every command here talks
to the network, so it runs with ``network=True``: an unreachable remote raises
``GitNetworkError`` (transient, retried), a refused push ``GitPushRejected``, anything else
``GitCommandError``; messages never carry credentials. ``--`` ends the options before the
remote name, so a remote (or ref) cannot be read as an option. ``fetch`` runs without
``--quiet``: that flag also silences the line saying why a ref was refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotfix_fsm.adapters.git_errors import GitCommandError, strip_userinfo
from hotfix_fsm.core.validate import validate_ref

if TYPE_CHECKING:
    from hotfix_fsm.adapters.commands import Captured


class GitRemoteOps:
    """Operations on ``self.remote`` (see the module docstring for what a subclass supplies)."""

    if TYPE_CHECKING:
        remote: str

        def run(
            self,
            *args: str,
            input: str | None = None,
            check: bool = True,
            network: bool = False,
            timeout: float | None = None,
        ) -> Captured: ...

        def resolve_commit(self, rev: str) -> str | None: ...

    def _out(self, *args: str, network: bool = False) -> str:
        return self.run(*args, network=network).stdout.strip()

    def remote_url(self) -> str | None:
        """The remote's URL with any ``user:password@`` removed, or None if no such remote."""
        result = self.run("remote", "get-url", "--", self.remote, check=False)
        return strip_userinfo(result.stdout.strip()) if result.returncode == 0 else None

    def fetch(self) -> None:
        """``git fetch <remote>`` with its configured refspecs (tags follow)."""
        self.run("fetch", "--", self.remote, network=True)

    def fetch_branch(self, branch: str, *, tags: bool = False) -> str | None:
        """Fetch one branch into ``refs/remotes/<remote>/<branch>``; its sha, or None.

        With ``tags``, every tag of the remote comes along (``--tags``), so ``describe``
        and ``tags`` see the released versions; without, no tag is fetched.
        """
        if self.ls_remote(f"refs/heads/{branch}") is None:
            return None
        tracking = f"refs/remotes/{self.remote}/{branch}"
        self.run(
            "fetch",
            "--tags" if tags else "--no-tags",
            "--",
            self.remote,
            f"+refs/heads/{branch}:{tracking}",
            network=True,
        )
        return self.resolve_commit(tracking)

    def ls_remote(self, ref: str) -> str | None:
        """The sha the remote's ``ref`` points at (``refs/...``, or a branch name), or None."""
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        out = self._out("ls-remote", "--", self.remote, full, network=True)
        for line in out.splitlines():
            sha, _, name = line.partition("\t")
            if name == full:
                return sha
        return None

    def remote_tag_commit(self, name: str) -> str | None:
        """The commit a remote tag points at (peeled), or None when the remote lacks it."""
        full = f"refs/tags/{name}"
        out = self._out("ls-remote", "--tags", "--", self.remote, full, full + "^{}", network=True)
        found: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            found[ref] = sha
        return found.get(full + "^{}") or found.get(full)

    def push_ref(self, src: str, dest_ref: str) -> None:
        """``git push <remote> <src>:<dest_ref>`` — no force flag, ever.

        Raises ``GitPushRejected`` when the remote refuses (the ref exists elsewhere, a
        protected branch, a hook).
        """
        validate_ref(dest_ref, "destination ref")
        self.run("push", "--quiet", "--", self.remote, f"{src}:{dest_ref}", network=True)

    def push_tag(self, name: str) -> None:
        """Push one tag (never forced: an existing different remote tag is refused)."""
        self.push_ref(f"refs/tags/{name}", f"refs/tags/{name}")

    def delete_remote_branch(self, branch: str, *, expect_sha: str | None = None) -> bool:
        """Delete the remote branch; False when it is already gone.

        With ``expect_sha``, refuse (GitCommandError) when the branch moved elsewhere.
        """
        current = self.ls_remote(f"refs/heads/{branch}")
        if current is None:
            return False
        if expect_sha is not None and current != expect_sha:
            raise GitCommandError(
                f"remote branch {branch} is at {current[:12]}, not {expect_sha[:12]}; "
                "not deleting someone else's work",
                hint="delete it by hand if it is stale",
            )
        self.run("push", "--quiet", "--", self.remote, f":refs/heads/{branch}", network=True)
        return True
