"""Where the GitHub client's repository and token come from.

``owner/repo``: ``github.repository``, else parsed from the remote's URL (https, ``ssh://``,
scp-like ``git@host:owner/repo.git``); a local path as remote needs the configuration.
The token: ``github.token`` or the variable ``github.token_env`` names, then
``GITHUB_TOKEN``, ``GH_TOKEN``, then ``gh auth token`` for the API's host (ignored when gh
is missing). It is registered with the redactor at once and never logged.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hotfix_fsm.adapters.github_errors import AUTH_HINT
from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.errors import PermanentError

if TYPE_CHECKING:
    from hotfix_fsm.config import Config

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_SCP = re.compile(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?P<path>[^\s]+)$")


def parse_repository(url: str) -> tuple[str, str] | None:
    """``(owner, repo)`` from an https, ssh (``ssh://`` or scp-like) or git URL; None else."""
    url = url.strip()
    if not url:
        return None
    path: str | None = None
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ssh", "git", "git+ssh", "ssh+git") and parts.hostname:
            path = parts.path
    else:
        match = _SCP.match(url)
        if match and not url.startswith(("/", ".", "~")) and "/" not in match["host"]:
            path = match["path"]
    if path is None:
        return None
    segments = [s for s in path.strip("/").split("/") if s]
    if len(segments) < 2:
        return None
    owner, name = segments[-2], segments[-1].removesuffix(".git")
    if not (_NAME.match(owner) and _NAME.match(name)) or name in (".", ".."):
        return None
    return owner, name


def _remote_url(repo_path: Path, remote: str, timeout: float) -> str:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo_path), "remote", "get-url", "--", remote],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def resolve_repository(config: Config, repo_path: Path) -> tuple[str, str]:
    """``github.repository`` when set, else parsed from the remote URL."""
    from hotfix_fsm.errors import ConfigError

    configured = config.github.repository.strip()
    if configured:
        owner, _, name = configured.partition("/")
        if not (_NAME.match(owner) and _NAME.match(name)):
            raise ConfigError(
                f"github.repository = {configured!r} in {config.source} is not owner/name",
                hint='write it as "owner/name", e.g. "acme/shop"',
            )
        return owner, name
    url = _remote_url(repo_path, config.remote, config.git_timeout)
    parsed = parse_repository(url)
    if parsed is None:
        shown = redact(url) if url else f"(remote {config.remote!r} has no URL)"
        raise ConfigError(
            f"cannot tell the GitHub repository from the remote URL {shown}",
            hint='set github.repository = "owner/name" in hotfix.toml',
        )
    return parsed


def _gh_hostname(api_url: str) -> str:
    host = urlsplit(api_url).hostname or "github.com"
    return "github.com" if host == "api.github.com" else host


def _gh_auth_token(api_url: str, timeout: float = 10.0) -> str:
    """``gh auth token`` for the API's host; empty when gh is missing or logged out."""
    try:
        proc = subprocess.run(
            ["gh", "auth", "token", "--hostname", _gh_hostname(api_url)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""


def resolve_token(config: Config, api_url: str | None = None) -> str:
    """The first token found: configuration, GITHUB_TOKEN, GH_TOKEN, then ``gh auth token``."""
    token = (
        config.secret(config.github.token, config.github.token_env)
        or os.environ.get("GITHUB_TOKEN", "")
        or os.environ.get("GH_TOKEN", "")
        or _gh_auth_token(api_url or config.github.api_url)
    ).strip()
    if not token:
        raise PermanentError(
            f"no GitHub token found for {api_url or config.github.api_url}", hint=AUTH_HINT
        )
    register_secret(token)
    return token
