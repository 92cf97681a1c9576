"""How git failures become hotfix errors, and the environment git runs in.

``git_failure`` sorts a failed command by what git said: an unreachable remote is a
``GitNetworkError`` (transient, retried), a refused push a ``GitPushRejected``, anything
else a ``GitCommandError`` (permanent). Messages carry git's own words with credentials
stripped from URLs and registered secrets masked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from hotfix_fsm.adapters.commands import Captured
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import PermanentError, TransientError

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_AUTH = (
    "authentication failed",
    "permission denied",
    "could not read username",
    "could not read password",
    "terminal prompts disabled",
    "returned error: 401",
    "returned error: 403",
    "host key verification failed",
)
_NO_REPO = (
    "does not appear to be a git repository",
    "repository not found",
    "not found: repository",
)
_REJECTED = (
    "[rejected]",
    "[remote rejected]",
    "non-fast-forward",
    "fetch first",
    "hook declined",
    "protected branch",
    "failed to push some refs",
    "already exists",
)
_NETWORK = (
    "could not resolve host",
    "connection refused",
    "connection reset",
    "connection timed out",
    "operation timed out",
    "timed out",
    "early eof",
    "the remote end hung up",
    "unable to access",
    "could not read from remote",
    "temporary failure",
    "network is unreachable",
    "no route to host",
    "returned error: 50",
    "rpc failed",
    "ssl_",
    "gnutls",
)


class GitCommandError(PermanentError):
    """A git command failed for a reason a retry will not fix."""

    code = "git"

    def __init__(
        self,
        message: str,
        *,
        argv: Sequence[str] = (),
        returncode: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr


class GitPushRejected(GitCommandError):
    """The remote refused a push (non-fast-forward, protected branch, hook)."""

    code = "git_push_rejected"


class GitNetworkError(TransientError):
    """The remote could not be reached or timed out; worth retrying."""

    code = "git_network"


def strip_userinfo(text: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x`` (anywhere in ``text``)."""
    return _USERINFO.sub(r"\1", text)


def clean_output(text: str) -> str:
    """git's output fit for a message: credentials in URLs and registered secrets removed."""
    return redact(strip_userinfo(text)).strip()


# A hotfix's git commands start no repository maintenance: no ``git maintenance run --auto``
# after a fetch, no ``gc --auto`` after a commit or a push. On a large clone that is minutes
# of work the incident does not need (in the foreground where auto-detach is off), and a
# process per command otherwise. Passed as GIT_CONFIG_* (git 2.31+), after any the caller set.
NO_AUTO_MAINTENANCE = (("maintenance.auto", "false"), ("gc.auto", "0"))


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment git runs with: no prompts, no pager, no editor, English messages, no
    automatic maintenance."""
    env = dict(os.environ if base is None else base)
    try:
        count = max(0, int(env.get("GIT_CONFIG_COUNT") or 0))
    except ValueError:
        count = 0
    for i, (key, value) in enumerate(NO_AUTO_MAINTENANCE, start=count):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(NO_AUTO_MAINTENANCE))
    ssh = env.get("GIT_SSH_COMMAND") or "ssh"
    if "batchmode" not in ssh.lower():
        ssh += " -o BatchMode=yes"
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GCM_INTERACTIVE="never",
        GIT_SSH_COMMAND=ssh,
        GIT_EDITOR="true",
        GIT_PAGER="cat",
        GIT_OPTIONAL_LOCKS="0",  # status from parallel gates must not race for index.lock
        LC_ALL="C",
    )
    return env


def subcommand(args: Sequence[str]) -> str:
    """The git command in ``args`` (``tag`` in ``-c user.name=x tag ...``), for messages."""
    items = iter(args)
    for arg in items:
        if arg in ("-c", "-C"):
            next(items, None)
        elif not arg.startswith("-"):
            return arg
    return args[0] if args else ""


def _classify(stderr: str) -> str:
    low = stderr.lower()
    for kind, needles in (
        ("auth", _AUTH),
        ("no_repo", _NO_REPO),
        ("rejected", _REJECTED),
        ("network", _NETWORK),
    ):
        if any(n in low for n in needles):
            return kind
    return "other"


def git_failure(
    args: Sequence[str], result: Captured, *, remote: str, network: bool = False
) -> Exception:
    """The error for a failed git command: network (transient), rejected push, or other."""
    said = clean_output(f"{result.stderr}\n{result.stdout}")
    tail = "\n".join(said.splitlines()[-8:]) or f"exit code {result.returncode}"
    command = subcommand(args)
    message = f"`git {command}` failed: {tail}"
    kind = _classify(said) if network else "other"
    if kind == "rejected" and command == "fetch":
        return GitCommandError(
            message,
            argv=result.argv,
            returncode=result.returncode,
            stderr=said,
            hint="a local ref (often a tag) differs from the remote's and git will not "
            "overwrite it; delete the stale local one (`git tag -d <name>`), then resume",
        )
    if kind == "network":
        return GitNetworkError(
            message,
            hint=f"remote {remote!r} is unreachable; check the network, then resume",
        )
    hint = None
    cls: type[GitCommandError] = GitCommandError
    if kind == "auth":
        hint = (
            "git could not authenticate to the remote without a prompt; set up a "
            "credential helper or ssh agent"
        )
    elif kind == "no_repo":
        hint = f"check the URL of remote {remote!r} (`git remote -v`) and your access to it"
    elif kind == "rejected":
        cls = GitPushRejected
        hint = "the remote refused the update; nothing was forced: inspect the remote branch"
    return cls(message, argv=result.argv, returncode=result.returncode, stderr=said, hint=hint)
