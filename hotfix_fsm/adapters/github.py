"""The GitHub client the phases use: ghapi (synchronous) over a rate-limit-aware transport.

The typed ghapi operations do the talking (``api.pulls.create``,
``api.actions.create_workflow_dispatch`` …); :mod:`.github_retry` sits under them as the
``httpx2`` transport and adds what ghapi does not do cleanly: conditional requests with an
ETag cache, GitHub's primary and secondary rate-limit rules, serialised writes and retries
with backoff (see that module for why it is a transport). ghapi and httpx2 are imported
lazily, when the first request is made, so nothing the CLI imports at start-up pays for them.

Errors come out as the engine's errors (:mod:`.github_errors`): ``GitHubAPIError`` when
asking again will not help (401 names the token, 403 the scope, 404 the repository),
``GitHubUnavailable`` when GitHub kept failing, ``AmbiguousWrite`` when a write may or may
not have happened. Repository and token resolution live in :mod:`.github_auth`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.adapters.github_answers import (
    as_plain,
    expect_check_runs,
    expect_combined,
    expect_dict,
    expect_fields,
    expect_labels,
    expect_list,
    expect_pull,
    expect_pulls,
    expect_run,
    expect_runs,
    next_link,
)
from hotfix_fsm.adapters.github_auth import parse_repository, resolve_repository, resolve_token
from hotfix_fsm.adapters.github_errors import (
    AUTH_HINT,
    AmbiguousWrite,
    GitHubAPIError,
    GitHubUnavailable,
    translate,
)
from hotfix_fsm.adapters.github_gates import GatesApi
from hotfix_fsm.adapters.github_ghapi import build_ghapi, give_api, ssl_context, take_api
from hotfix_fsm.core.redact import register_secret

if TYPE_CHECKING:
    from hotfix_fsm.adapters.github_retry import PolicyTransport
    from hotfix_fsm.config import Config

DEFAULT_API = "https://api.github.com"
__all__ = [
    "AUTH_HINT",
    "DEFAULT_API",
    "AmbiguousWrite",
    "GitHubAPIError",
    "GitHubClient",
    "GitHubUnavailable",
    "parse_repository",
    "resolve_repository",
    "resolve_token",
]


# -- the client ------------------------------------------------------------------------------


class GitHubClient(GatesApi):
    """One repository on one GitHub (or GitHub Enterprise, or the rehearsal server)."""

    def __init__(
        self,
        *,
        owner: str,
        repo: str,
        token: str,
        api_url: str = DEFAULT_API,
        timeout: float = 15.0,
        max_retries: int = 8,
        max_backoff: float = 60.0,
        backoff_base: float = 1.0,
        secondary_base: float = 60.0,
        max_wait: float = 900.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from hotfix_fsm.adapters.github_retry import RetryPolicy, Stats

        self.owner, self.repo = owner, repo
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.policy = RetryPolicy(
            max_retries=max_retries,
            max_backoff=max_backoff,
            backoff_base=backoff_base,
            secondary_base=secondary_base,
            max_wait=max_wait,
        )
        self._token = token
        self.stats = Stats()
        register_secret(token)
        self._default_sleep = sleep
        self._clock = clock
        self._local = threading.local()
        self._api: Any = None
        self._transport: PolicyTransport | None = None
        self._http: Any = None

    @classmethod
    def from_config(
        cls, config: Config, repo_path: str | os.PathLike[str], **overrides: Any
    ) -> GitHubClient:
        """A client for the repository at ``repo_path`` as configured (``overrides`` win)."""
        owner, name = resolve_repository(config, Path(repo_path))
        kwargs: dict[str, Any] = {
            "owner": owner,
            "repo": name,
            "api_url": config.github.api_url,
            "timeout": config.github.request_timeout,
            "max_retries": config.github.max_retries,
            "max_backoff": config.github.max_backoff,
        }
        kwargs.update(overrides)
        if "token" not in kwargs:
            kwargs["token"] = resolve_token(config, str(kwargs["api_url"]))
        return cls(**kwargs)

    # -- plumbing ------------------------------------------------------------------------

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def request_count(self) -> int:
        """HTTP requests sent (retries and 304s included)."""
        return self.stats.requests

    @property
    def not_modified_count(self) -> int:
        """Conditional requests GitHub answered with 304 (served from the ETag cache)."""
        return self.stats.not_modified

    @property
    def waits(self) -> list[tuple[str, float]]:
        """Every wait the policy asked for: (reason, seconds)."""
        return list(self.stats.waits)

    @contextlib.contextmanager
    def use_sleep(self, sleep: Callable[[float], None]) -> Iterator[None]:
        """Route this thread's waits through ``sleep`` (phases pass ``ctx.wait``)."""
        previous = getattr(self._local, "sleep", None)
        self._local.sleep = sleep
        try:
            yield
        finally:
            self._local.sleep = previous

    def _sleep(self, seconds: float) -> None:
        (getattr(self._local, "sleep", None) or self._default_sleep)(seconds)

    @property
    def api(self) -> Any:
        """The ghapi client, built on first use (or taken from the process's pool)."""
        if self._api is None:
            import httpx2

            from hotfix_fsm.adapters.github_retry import PolicyTransport

            transport = PolicyTransport(
                self.policy,
                sleep=self._sleep,
                clock=self._clock,
                stats=self.stats,
                inner=httpx2.HTTPTransport(verify=ssl_context()),
            )
            http = httpx2.Client(transport=transport, timeout=self.timeout, follow_redirects=True)
            api = take_api(self._pool_key, self.api_url) or self._new_api()
            api.transport.client = http  # fasttransport's documented persistent-client hook
            self._transport, self._http, self._api = transport, http, api
        return self._api

    def _new_api(self) -> Any:
        api = build_ghapi(
            owner=self.owner,
            repo=self.repo,
            token=self._token,
            gh_host=self.api_url,
            sync=True,
            timeout=self.timeout,
        )
        api.transport.retries = 0  # the policy retries; no extra fixed sleeps in ghapi
        api.transport.base_headers.update(
            {"X-GitHub-Api-Version": "2022-11-28", "User-Agent": "hotfix-fsm"}
        )
        return api

    @property
    def _pool_key(self) -> tuple[str, str, str]:
        return (self.owner, self.repo, self._token)

    def close(self) -> None:
        """Close the connections; the ghapi object goes back to the pool for reuse."""
        if self._http is not None:
            self._http.close()
        if self._api is not None:
            self._api.transport.client = None
            give_api(self._pool_key, self._api)
        self._api = self._http = self._transport = None

    def _call(
        self,
        what: str,
        op: Callable[..., Any],
        *args: Any,
        write: bool = False,
        detectable: bool = False,
        missing_ok: bool = False,
        not_found: str | None = None,
        expect: Callable[[Any, str], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run one ghapi operation; translate its failure into the engine's errors.

        ``expect`` checks the shape of a 200 answer: one that is not the JSON the caller
        parses (an HTML page from a proxy, a truncated or mistyped body) is a transient
        fault saying what GitHub answered — ambiguous for a write, which may have happened.
        """
        from ghapi.core import APIError

        from hotfix_fsm.adapters.github_retry import duplicate_detectable

        guard = duplicate_detectable() if detectable else contextlib.nullcontext()
        try:
            with guard:
                value = as_plain(op(*args, **kwargs))
            return expect(value, what) if expect is not None else value
        except (ValueError, RecursionError, GitHubUnavailable) as exc:
            if isinstance(exc, GitHubUnavailable) and (not write or detectable):
                raise
            detail = (
                exc.message
                if isinstance(exc, GitHubUnavailable)
                else (f"GitHub answered a body that is not JSON ({type(exc).__name__}) to {what}")
            )
            cls = AmbiguousWrite if write and not detectable else GitHubUnavailable
            tail = " — it may or may not have taken effect" if cls is AmbiguousWrite else ""
            raise cls(
                f"{detail}{tail}",
                hint="a proxy or GitHub itself may be misbehaving; the phase asks again",
            ) from None
        except APIError as exc:
            if missing_ok and exc.status_code == 404:
                return None
            raise translate(
                exc,
                what,
                full_name=self.full_name,
                api_url=self.api_url,
                write=write and not detectable,
                not_found=not_found,
                clock=self._clock,
            ) from None

    def _pages(
        self, what: str, op: Callable[..., Any], *args: Any, limit: int = 50, **kwargs: Any
    ) -> list[Any]:
        """Every item of a list operation, following GitHub's ``Link: rel="next"`` headers."""
        items: list[Any] = []
        got = self._call(what, op, *args, **kwargs)
        for _ in range(limit):
            items.extend(expect_list(got, what))
            following = next_link(self.api.recv_hdrs)
            if following is None:
                return items
            got = self._call(what, self.api, following)
        return items

    # -- repository and refs ---------------------------------------------------------------

    def repository(self) -> dict[str, Any]:
        return dict(self._call("reading the repository", self.api.repos.get, expect=expect_dict))

    def get_branch(self, branch: str) -> dict[str, Any] | None:
        found = self._call(
            f"reading branch {branch}",
            self.api.repos.get_branch,
            branch,
            missing_ok=True,
            expect=expect_dict,
        )
        return dict(found) if found else None

    def branch_protection(self, branch: str) -> dict[str, Any] | None:
        """The branch's protection rules; None when it has none *or the token may not read
        them* (GitHub answers 404 or 403 to tokens without admin rights): the merge's 405
        then says what is missing."""
        try:
            found = self._call(
                f"reading the protection of branch {branch}",
                self.api.repos.get_branch_protection,
                branch,
                missing_ok=True,
                expect=expect_dict,
            )
        except GitHubAPIError as exc:
            if exc.status == 403:
                return None
            raise
        return dict(found) if found else None

    def pull_reviews(self, number: int) -> list[dict[str, Any]]:
        """Every review of PR ``number``, oldest first (all pages)."""
        what = f"reading the reviews of pull request #{number}"
        return [
            expect_fields(r, what, {"state": str})
            for r in self._pages(
                what,
                self.api.pulls.list_reviews,
                number,
                per_page=100,
                not_found=f"pull request #{number} does not exist in {self.full_name}",
            )
        ]

    def get_ref(self, ref: str) -> dict[str, Any] | None:
        """``ref`` like ``heads/main`` or ``tags/v1.0.0``; None when it does not exist."""
        found = self._call(
            f"reading ref {ref}", self.api.git.get_ref, ref, missing_ok=True, expect=expect_dict
        )
        return dict(found) if found else None

    def delete_branch(self, branch: str) -> bool:
        """Delete a branch; False when it was already gone."""
        try:
            self._call(
                f"deleting branch {branch}",
                self.api.git.delete_ref,
                f"heads/{branch}",
                write=True,
                detectable=True,
            )
        except GitHubAPIError as exc:
            if exc.status == 422 and exc.mentions("does not exist"):
                return False
            raise
        return True

    # -- pull requests -------------------------------------------------------------------

    def find_pull(
        self, head: str, *, base: str | None = None, state: str = "all"
    ) -> dict[str, Any] | None:
        """The newest PR from branch ``head`` (into ``base``), in ``state``."""
        kwargs: dict[str, Any] = {"head": f"{self.owner}:{head}", "state": state, "per_page": 30}
        if base:
            kwargs["base"] = base
        pulls = self._call(
            f"looking up pull requests from {head}",
            self.api.pulls.list,
            expect=expect_pulls,
            **kwargs,
        )
        for pr in pulls or []:
            if pr.get("head", {}).get("ref") == head and (
                not base or pr.get("base", {}).get("ref") == base
            ):
                return dict(pr)
        return None

    def create_pull(self, head: str, base: str, title: str, body: str) -> dict[str, Any]:
        return dict(
            self._call(
                f"opening a pull request from {head} into {base}",
                self.api.pulls.create,
                head=f"{self.owner}:{head}",
                base=base,
                title=title,
                body=body,
                write=True,
                detectable=True,
                expect=expect_pull,
            )
        )

    def open_pull(self, head: str, base: str, title: str, body: str) -> tuple[dict[str, Any], bool]:
        """The open or merged PR from ``head`` into ``base``, created if there is none.

        Returns ``(pr, created)``. A 422 "already exists" (a lost answer to an earlier
        create, or a race) means: find it.
        """
        existing = self.find_pull(head, base=base)
        if existing and (existing["state"] == "open" or existing.get("merged_at")):
            return existing, False
        try:
            return self.create_pull(head, base, title, body), True
        except GitHubAPIError as exc:
            if exc.status == 422 and exc.mentions("already exists"):
                again = self.find_pull(head, base=base, state="open")
                if again:
                    return again, False
            raise

    def get_pull(self, number: int) -> dict[str, Any]:
        return dict(
            self._call(
                f"reading pull request #{number}",
                self.api.pulls.get,
                number,
                not_found=f"pull request #{number} does not exist in {self.full_name}",
                expect=expect_pull,
            )
        )

    def close_pull(self, number: int) -> dict[str, Any]:
        """Close a pull request (closing a closed one changes nothing)."""
        return dict(
            self._call(
                f"closing pull request #{number}",
                self.api.pulls.update,
                number,
                state="closed",
                write=True,
                detectable=True,
                not_found=f"pull request #{number} does not exist in {self.full_name}",
                expect=expect_pull,
            )
        )

    def merge_pull(
        self, number: int, *, sha: str, method: str, title: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"sha": sha, "merge_method": method}
        if title:
            kwargs["commit_title"] = title
        return dict(
            self._call(
                f"merging pull request #{number}",
                self.api.pulls.merge,
                number,
                not_found=f"pull request #{number} does not exist in {self.full_name}",
                write=True,
                detectable=True,
                **kwargs,
                expect=expect_dict,
            )
        )

    def ensure_label(self, name: str, color: str, description: str = "") -> bool:
        """Create the label when the repository lacks it; True when created."""
        if self._call(
            f"reading label {name}",
            self.api.issues.get_label,
            name,
            missing_ok=True,
            expect=expect_dict,
        ):
            return False
        try:
            self._call(
                f"creating label {name}",
                self.api.issues.create_label,
                name=name,
                color=color,
                description=description,
                write=True,
                detectable=True,
            )
        except GitHubAPIError as exc:
            if exc.status == 422 and exc.mentions("already_exists"):
                return False
            raise
        return True

    def add_labels(self, number: int, labels: list[str]) -> list[str]:
        found = self._call(
            f"labelling pull request #{number}",
            self.api.issues.add_labels,
            number,
            labels=labels,
            write=True,
            detectable=True,
            expect=expect_labels,
        )
        return [str(label.get("name")) for label in found or []]

    # -- CI --------------------------------------------------------------------------------

    def check_runs(self, sha: str) -> list[dict[str, Any]]:
        """Every check run on ``sha`` (latest per name), all pages."""
        runs: list[dict[str, Any]] = []
        page = 1
        while True:
            got = self._call(
                f"reading check runs of {sha[:12]}",
                self.api.checks.list_for_ref,
                sha,
                not_found=f"commit {sha[:12]} (its check runs) is not in {self.full_name}",
                per_page=100,
                page=page,
                expect=expect_check_runs,
            )
            batch = list(got.get("check_runs", []))
            runs.extend(batch)
            if len(batch) < 100 or len(runs) >= int(got.get("total_count", 0)):
                return runs
            page += 1

    def combined_status(self, sha: str) -> dict[str, Any]:
        return dict(
            self._call(
                f"reading commit statuses of {sha[:12]}",
                self.api.repos.get_combined_status_for_ref,
                sha,
                not_found=f"commit {sha[:12]} (its combined status) is not in {self.full_name}",
                per_page=100,
                expect=expect_combined,
            )
        )

    # -- Actions ---------------------------------------------------------------------------

    def dispatch_workflow(
        self, workflow: str, ref: str, inputs: Mapping[str, str], *, return_run_details: bool = True
    ) -> dict[str, Any] | None:
        """Dispatch ``workflow`` on ``ref``; the run details when GitHub returns them.

        Never resent after an ambiguous failure: that raises :class:`AmbiguousWrite`, and
        the caller finds the run by its correlation id.
        """
        kwargs: dict[str, Any] = {"ref": ref, "inputs": dict(inputs)}
        if return_run_details:
            kwargs["return_run_details"] = True
        try:
            result = self._call(
                f"dispatching workflow {workflow} on {ref}",
                self.api.actions.create_workflow_dispatch,
                workflow,
                write=True,
                not_found=f"workflow {workflow} does not exist in {self.full_name} (or the "
                f"token cannot see it): GitHub answered 404 to its dispatch on {ref}, so "
                "nothing was dispatched",
                **kwargs,
            )
        except GitHubAPIError as exc:
            if exc.status == 404:
                exc.hint = (
                    f"check that {workflow} is the file name of a workflow in "
                    f"{self.full_name}'s .github/workflows (deploy.workflow, or "
                    "rollback.workflow for the rollback, in hotfix.toml) and that "
                    "github.repository is right; private repositories answer 404 to tokens "
                    "without the `repo` scope. Then `hotfix resume --reload-config` takes the "
                    "corrected configuration (a hotfix keeps the one it started with) and "
                    "dispatches it"
                )
            raise
        return dict(result) if isinstance(result, dict) and result else None

    def workflow_runs(
        self,
        workflow: str,
        *,
        branch: str | None = None,
        event: str | None = None,
        created: str | None = None,
        per_page: int = 50,
        page: int = 1,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"per_page": per_page, "page": page}
        for key, value in (("branch", branch), ("event", event), ("created", created)):
            if value:
                kwargs[key] = value
        got = self._call(
            f"listing runs of workflow {workflow}",
            self.api.actions.list_workflow_runs,
            workflow,
            **kwargs,
            expect=expect_runs,
        )
        return [dict(r) for r in got.get("workflow_runs", [])]

    def pending_deployments(self, run_id: int) -> list[dict[str, Any]]:
        """The environments run ``run_id`` waits on for a reviewer, with their reviewers."""
        what = f"reading the pending deployments of workflow run {run_id}"
        found = self._call(
            what,
            self.api.actions.get_pending_deployments_for_run,
            run_id,
            expect=expect_list,
            not_found=f"workflow run {run_id} was not found in {self.full_name}",
        )
        return [expect_fields(item, what, {"environment": dict}) for item in found]

    def run_jobs(self, run_id: int) -> list[dict[str, Any]]:
        """The jobs of run ``run_id``'s latest attempt: one request (its first 100 jobs),
        sent once — no retry, no rate-limit wait (``best_effort``): the answer only
        describes a wait, so a failure is the caller's to pass over."""
        from hotfix_fsm.adapters.github_retry import best_effort

        what = f"listing the jobs of workflow run {run_id}"
        with best_effort():
            got = self._call(
                what,
                self.api.actions.list_jobs_for_workflow_run,
                run_id,
                filter="latest",
                per_page=100,
                expect=lambda v, w: expect_fields(v, w, {"jobs": list}),
                not_found=f"workflow run {run_id} was not found in {self.full_name}",
            )
        return [expect_fields(job, what, {"name": str, "status": str}) for job in got["jobs"]]

    def get_run(self, run_id: int) -> dict[str, Any]:
        return dict(
            self._call(
                f"reading workflow run {run_id}",
                self.api.actions.get_workflow_run,
                run_id,
                expect=expect_run,
                not_found=f"workflow run {run_id} was not found in {self.full_name} (deleted, "
                "or the token cannot see Actions)",
            )
        )
