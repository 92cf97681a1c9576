"""Errors of the GitHub client, and how a failed API call becomes one.

:class:`GitHubAPIError` (a ``PermanentError``) for answers that will not change by asking
again — 401 names the token, 403 the missing scope, 404 the repository or resource;
:class:`GitHubUnavailable` (a ``TransientError``) when GitHub could not be reached or kept
failing or rate limiting after the retries; :class:`AmbiguousWrite` when a write may or may
not have happened (the caller must look at the world before sending it again).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import PermanentError, TransientError

AUTH_HINT = (
    "give a token with the `repo` scope (and `workflow` to dispatch deploys) through "
    "github.token_env in hotfix.toml, GITHUB_TOKEN/GH_TOKEN, or `gh auth login`"
)
_NOT_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout")


class GitHubAPIError(PermanentError):
    """GitHub answered with an error that asking again will not change."""

    code = "github"

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        gh_message: str = "",
        errors: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.gh_message = gh_message
        self.errors = errors or []

    def mentions(self, text: str) -> bool:
        """True when GitHub's message or one of its ``errors[]`` contains ``text``."""
        blobs = [
            self.gh_message,
            *(str(e.get("message", "")) for e in self.errors),
            *(str(e.get("code", "")) for e in self.errors),
        ]
        return any(text.lower() in b.lower() for b in blobs)


class GitHubUnavailable(TransientError):
    """GitHub could not be reached, or kept failing or rate limiting after the retries."""

    code = "github_unavailable"


class AmbiguousWrite(GitHubUnavailable):
    """A write failed in a way that leaves open whether GitHub performed it."""

    code = "github_ambiguous_write"


def translate(
    exc: Any,
    what: str,
    *,
    full_name: str,
    api_url: str,
    write: bool,
    not_found: str | None,
    clock: Callable[[], float] = time.time,
) -> Exception:
    """The engine's error for a failed ghapi call (``exc`` is ghapi's ``APIError``)."""
    status = exc.status_code
    raw = exc.raw if isinstance(exc.raw, dict) else {}
    gh_message = redact(str(raw.get("message") or exc.message or ""))
    errors = [e for e in raw.get("errors", []) if isinstance(e, dict)]
    headers = exc.response.headers if exc.response is not None else {}
    where = f"{full_name} at {api_url}"
    if status is None:
        cls = AmbiguousWrite if write and exc.error_type not in _NOT_SENT else GitHubUnavailable
        tail = " — it may or may not have taken effect" if cls is AmbiguousWrite else ""
        return cls(
            f"GitHub did not answer while {what} ({where}): "
            f"{exc.error_type or 'connection failed'}{tail}",
            hint="check the network and the API URL (github.api_url)",
        )
    if status == 401:
        return GitHubAPIError(
            f"GitHub rejected the token (401 {gh_message or 'Bad credentials'}) while "
            f"{what} ({where})",
            status=status,
            gh_message=gh_message,
            hint=AUTH_HINT,
        )
    if status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in gh_message.lower()
        or status == 429
    ):
        reset = _float(headers.get("x-ratelimit-reset"))
        retry = _float(headers.get("retry-after"))
        after = (
            retry
            if retry is not None
            else (max(1.0, reset - clock()) if reset is not None else None)
        )
        return GitHubUnavailable(
            f"GitHub rate limit still exceeded after the retries while {what} ({gh_message})",
            retry_after=after,
            hint="wait for the limit to reset, or use a token with its own budget",
        )
    if status == 403:
        have = headers.get("x-oauth-scopes")
        if have is None:
            # Fine-grained and app tokens have permissions, not scopes: GitHub sends no
            # X-OAuth-Scopes, so no scope can be said to be missing.
            permission = (
                "Actions: write"
                if "workflow" in what or "dispatch" in what or "run" in what
                else "Contents and Pull requests: write"
            )
            return GitHubAPIError(
                f"GitHub refused {what} on {full_name} (403 {gh_message}): the token may "
                f"not do this (a fine-grained token needs {permission} on {full_name})",
                status=status,
                gh_message=gh_message,
                hint=f"grant the token {permission} on {full_name}, or use another token",
            )
        need = headers.get("x-accepted-oauth-scopes") or (
            "workflow" if "workflow" in what or "dispatch" in what else "repo"
        )
        return GitHubAPIError(
            f"GitHub refused {what} on {full_name} (403 {gh_message}): the token "
            f"needs the `{need}` scope or write access to the repository; the token has "
            f"scopes [{have}]",
            status=status,
            gh_message=gh_message,
            hint=f"grant the token `{need}` (and push access to {full_name}), or use another token",
        )
    if status == 404:
        message = not_found or (
            f"GitHub answered 404 while {what}: the repository {full_name} does not "
            f"exist at {api_url}, or the token cannot see it"
        )
        return GitHubAPIError(
            message,
            status=status,
            gh_message=gh_message,
            hint="check github.repository (or the remote URL) and github.api_url; "
            "private repositories answer 404 to tokens without the `repo` scope; a hotfix "
            "keeps the configuration it started with: after fixing hotfix.toml, "
            "`hotfix resume --reload-config` takes it",
        )
    if status >= 500:
        if write:
            return AmbiguousWrite(
                f"GitHub answered HTTP {status} while {what} ({where}); the request may or "
                "may not have taken effect",
                hint="GitHub may be degraded (githubstatus.com); the phase looks for the "
                "effect before sending it again",
            )
        return GitHubUnavailable(
            f"GitHub kept failing (HTTP {status}) while {what} ({where})",
            hint="GitHub may be degraded: check githubstatus.com, then resume",
        )
    detail = "; ".join(str(e.get("message") or e.get("code")) for e in errors)
    text = f"{gh_message}: {detail}" if detail else gh_message
    return GitHubAPIError(
        f"GitHub refused {what} ({status} {text})",
        status=status,
        gh_message=gh_message,
        errors=errors,
    )


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
