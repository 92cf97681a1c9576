"""The REST surface of the rehearsal GitHub: the world it serves and its route table.

``GitHubWorld`` holds the repository's PRs, labels, refs, CI and Actions (its mixins), backed
by a real bare repository. ``ROUTES`` maps each GitHub REST endpoint the client uses
(method and path template, as GitHub's documentation writes it) to the world's method that
answers it, with the status of a success; ``match_route`` finds the route of a request.
The server (``github_server``) adds what is not the API's meaning: auth, rate limits,
ETags, faults, pagination links and persistence.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from hotfix_fsm.sandbox.github_actions import ActionsMixin
from hotfix_fsm.sandbox.github_automerge import AutoMergeMixin
from hotfix_fsm.sandbox.github_jobs import list_jobs
from hotfix_fsm.sandbox.github_protection import run_approvals
from hotfix_fsm.sandbox.github_state import ApiError


class GitHubWorld(AutoMergeMixin, ActionsMixin):
    """PRs, labels, refs, CI and Actions backed by a real bare repository."""


Handler = Callable[["GitHubWorld", dict[str, str], Mapping[str, str], Any], Any]


@dataclass(frozen=True)
class Route:
    """One endpoint: method, template (for counters and faults) and compiled pattern."""

    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler
    status: int = 200


def _compile(template: str) -> tuple[str, re.Pattern[str]]:
    # ``{name+}`` captures slashes too (branch names such as hotfix/X).
    regex = re.sub(
        r"\{(\w+)(\+?)\}",
        lambda m: f"(?P<{m[1]}>{'.+' if m[2] else '[^/]+'})",
        template,
    )
    return template.replace("+}", "}"), re.compile(f"^{regex}$")


def _r(method: str, template: str, handler: Handler, status: int = 200) -> Route:
    clean, pattern = _compile(template)
    return Route(method, clean, pattern, handler, status)


_REPO = "/repos/{owner}/{repo}"
ROUTES: tuple[Route, ...] = (
    _r("GET", "/user", lambda w, p, q, b: w.authenticated_user()),
    _r("GET", _REPO, lambda w, p, q, b: w.repository()),
    _r("GET", _REPO + "/pulls", lambda w, p, q, b: w.list_pulls(q)),
    _r("POST", _REPO + "/pulls", lambda w, p, q, b: w.create_pull(b), 201),
    _r("GET", _REPO + "/pulls/{number}", lambda w, p, q, b: w.get_pull(p["number"])),
    _r("PATCH", _REPO + "/pulls/{number}", lambda w, p, q, b: w.update_pull(p["number"], b)),
    _r("GET", _REPO + "/pulls/{number}/commits", lambda w, p, q, b: w.pull_commits(p["number"])),
    _r(
        "GET",
        _REPO + "/pulls/{number}/reviews",
        lambda w, p, q, b: w.list_reviews(p["number"], q),
    ),
    _r("PUT", _REPO + "/pulls/{number}/merge", lambda w, p, q, b: w.merge_pull(p["number"], b)),
    _r("GET", _REPO + "/pulls/{number}/merge", lambda w, p, q, b: _merged(w, p["number"])),
    _r("GET", _REPO + "/labels/{name}", lambda w, p, q, b: w.get_label(p["name"])),
    _r("POST", _REPO + "/labels", lambda w, p, q, b: w.create_label(b), 201),
    _r(
        "POST",
        _REPO + "/issues/{number}/labels",
        lambda w, p, q, b: w.add_labels(p["number"], b),
    ),
    _r("GET", _REPO + "/issues/{number}/labels", lambda w, p, q, b: w.issue_labels(p["number"])),
    _r(
        "GET",
        _REPO + "/commits/{ref+}/check-runs",
        lambda w, p, q, b: w.check_runs(p["ref"], q),
    ),
    _r("GET", _REPO + "/commits/{ref+}/status", lambda w, p, q, b: w.combined_status(p["ref"])),
    _r(
        "GET",
        _REPO + "/actions/workflows/{workflow}",
        lambda w, p, q, b: w.get_workflow(p["workflow"]),
    ),
    _r(
        "POST",
        _REPO + "/actions/workflows/{workflow}/dispatches",
        lambda w, p, q, b: w.dispatch(p["workflow"], b),
    ),
    _r(
        "GET",
        _REPO + "/actions/workflows/{workflow}/runs",
        lambda w, p, q, b: w.list_runs(q, p["workflow"]),
    ),
    _r("GET", _REPO + "/actions/runs", lambda w, p, q, b: w.list_runs(q)),
    _r("GET", _REPO + "/actions/runs/{run_id}", lambda w, p, q, b: w.get_run(p["run_id"])),
    _r(
        "GET",
        _REPO + "/actions/runs/{run_id}/jobs",
        lambda w, p, q, b: list_jobs(w, p["run_id"], q),
    ),
    _r(
        "GET",
        _REPO + "/actions/runs/{run_id}/pending_deployments",
        lambda w, p, q, b: w.pending_deployments(p["run_id"]),
    ),
    _r(
        "POST",
        _REPO + "/actions/runs/{run_id}/pending_deployments",
        lambda w, p, q, b: w.review_deployment(p["run_id"], b),
    ),
    _r(
        "GET",
        _REPO + "/actions/runs/{run_id}/approvals",
        lambda w, p, q, b: run_approvals(w, p["run_id"]),
    ),
    _r(
        "GET",
        _REPO + "/rules/branches/{branch+}",
        lambda w, p, q, b: w.branch_rules(p["branch"], q),
    ),
    _r("POST", "/graphql", lambda w, p, q, b: w.graphql(b)),
    _r("GET", _REPO + "/git/ref/{ref+}", lambda w, p, q, b: w.get_ref(p["ref"])),
    _r("DELETE", _REPO + "/git/refs/{ref+}", lambda w, p, q, b: w.delete_ref(p["ref"]), 204),
    _r(
        "GET",
        _REPO + "/branches/{branch+}/protection",
        lambda w, p, q, b: w.get_protection(p["branch"]),
    ),
    _r("GET", _REPO + "/branches/{branch+}", lambda w, p, q, b: w.get_branch(p["branch"])),
)


def _merged(world: GitHubWorld, number: str) -> None:
    if not world.is_merged(number):
        raise ApiError(404, "Not Found")


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    if method == "GET" and path == "/rate_limit":
        return RATE_LIMIT_ROUTE, {}
    for route in ROUTES:
        if route.method != method:
            continue
        m = route.pattern.match(path)
        if m:
            return route, {k: unquote(v) for k, v in m.groupdict().items()}
    return None, {}


RATE_LIMIT_ROUTE = _r("GET", "/rate_limit", lambda w, p, q, b: None)


__all__ = ["RATE_LIMIT_ROUTE", "ROUTES", "GitHubWorld", "Route", "match_route"]
