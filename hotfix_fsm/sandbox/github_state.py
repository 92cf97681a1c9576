"""Persistent state and GitHub semantics of the rehearsal GitHub server (no HTTP here).

Callers hold the server's lock around every method. Time-based progress (CI checks,
workflow runs) is computed from stored timestamps when read, so no background thread is
needed and a restarted server continues where the old one stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotfix_fsm.sandbox import github_shapes as shapes
from hotfix_fsm.sandbox.github_git import BareRepo, CommitInfo
from hotfix_fsm.sandbox.serving import write_json_atomically

JSON = dict[str, Any]
DeployHook = Callable[[str, str, dict[str, str]], None]
DOCS = "https://docs.github.com/rest"
EFFECT_KEYS = (
    "pull_requests",
    "pull_request_updates",
    "labels_added",
    "labels_created",
    "dispatches",
    "merges",
    "refs_deleted_via_api",
    "deploys",
    "reviews",
    "deployment_reviews",
    "auto_merges",
)
_SUCCESSFUL = {"success", "neutral", "skipped"}


class ApiError(Exception):
    """An error answered to the client as a GitHub-shaped JSON body."""

    def __init__(self, status: int, message: str, errors: list[JSON] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def body(self) -> JSON:
        """The JSON body GitHub would send."""
        out: JSON = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def not_found() -> ApiError:
    """GitHub's uniform 404."""
    return ApiError(404, "Not Found")


def validation(resource: str, field: str, code: str, message: str | None = None) -> ApiError:
    """A 422 ``Validation Failed`` with one error entry."""
    err: JSON = {"resource": resource, "code": code, "field": field}
    if message is not None:
        err["message"] = message
    return ApiError(422, "Validation Failed", [err])


def iso(ts: float | None) -> str | None:
    """Epoch seconds to GitHub's ``2026-01-02T03:04:05Z``."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> float:
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def created_matches(created: float, expr: str) -> bool:
    """GitHub's ``created`` search qualifier: ``>=T``, ``<T``, ``A..B`` or a date."""
    expr = expr.strip().replace(" ", "+")  # an unencoded "+00:00" arrives as a space
    try:
        for op in (">=", "<=", ">", "<"):
            if expr.startswith(op):
                bound = _parse_time(expr[len(op) :])
                return {
                    ">=": created >= bound,
                    "<=": created <= bound,
                    ">": created > bound,
                    "<": created < bound,
                }[op]
        if ".." in expr:
            low, high = expr.split("..", 1)
            ok_low = low in ("", "*") or created >= _parse_time(low)
            ok_high = high in ("", "*") or created <= _parse_time(high) + (
                86400 if len(high.strip()) == 10 else 0
            )
            return ok_low and ok_high
        start = _parse_time(expr)
        return start <= created < start + (86400 if len(expr.strip()) == 10 else 1)
    except ValueError as exc:
        raise ApiError(422, f"Invalid created filter: {expr}") from exc


def workflow_name(file: str) -> str:
    """A readable name derived from the workflow file name."""
    stem = file.rsplit(".", 1)[0]
    return stem.replace("-", " ").replace("_", " ").title()


def _empty_state() -> JSON:
    return {
        "format": 1,
        "counters": {"pr": 0, "label": 0, "run": 0, "check": 0, "status": 0},
        "run_numbers": {},
        "pulls": {},
        "labels": {},
        "runs": {},
        "ci": {"conclusion": "success", "checks": None, "seconds": None, "overrides": {}},
        "ci_shas": {},
        "workflow_conclusions": {},
        "faults": [],
        "requests": {},
        "rate": {},
        "effects": {key: [] for key in EFFECT_KEYS},
    }


class StateFile:
    """The whole server state as one JSON document, replaced atomically on save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = _empty_state()
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            for key, value in loaded.items():
                self.data[key] = value
            for key in EFFECT_KEYS:
                self.data["effects"].setdefault(key, [])

    def save(self) -> None:
        """Write to a temp file in the same directory, then ``os.replace`` it in."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.path, self.data, prefix=".state-")


class WorldBase:
    """Configuration and shared helpers of the rehearsal world."""

    def __init__(
        self,
        state: StateFile,
        repo: BareRepo,
        *,
        owner: str,
        name: str,
        default_branch: str,
        workflows: Mapping[str, str],
        ci_seconds: float,
        ci_checks: Sequence[str],
        run_queued_seconds: float,
        run_seconds: float,
        on_deploy: DeployHook | None,
    ) -> None:
        self.state = state
        self.repo = repo
        self.owner = owner
        self.name = name
        self.default_branch = default_branch
        self.workflows = dict(workflows)
        self.ci_seconds = ci_seconds
        self.ci_checks = list(ci_checks)
        self.run_queued_seconds = run_queued_seconds
        self.run_seconds = run_seconds
        self.on_deploy = on_deploy
        self.base_url = "http://127.0.0.1"
        self._commits: dict[str, CommitInfo] = {}

    # -- helpers ---------------------------------------------------------------------------

    @property
    def data(self) -> JSON:
        """The mutable JSON document."""
        return self.state.data

    @property
    def full_name(self) -> str:
        """``owner/repo``."""
        return f"{self.owner}/{self.name}"

    @property
    def api(self) -> str:
        """API URL of the repository."""
        return f"{self.base_url}/repos/{self.full_name}"

    @property
    def web(self) -> str:
        """Web URL of the repository (not served; GitHub-shaped links only)."""
        return f"{self.base_url}/{self.full_name}"

    def _next(self, counter: str) -> int:
        self.data["counters"][counter] += 1
        return int(self.data["counters"][counter])

    def _effect(self, key: str, item: JSON) -> None:
        self.data["effects"][key].append(item)

    @property
    def created_at(self) -> str:
        """When the rehearsal repository was created (its first request), ISO 8601."""
        return str(iso(float(self.data.setdefault("created_at", time.time()))))

    @property
    def facts(self) -> shapes.RepoFacts:
        """What GitHub's repository shapes are built from."""
        return shapes.RepoFacts(
            self.base_url, self.owner, self.name, self.default_branch, self.created_at
        )

    def user(self, login: str) -> JSON:
        """A ``simple-user``."""
        return shapes.user(self.base_url, login)

    def repository(self) -> JSON:
        """GET /repos/{o}/{r}."""
        found = shapes.full_repository(self.facts)
        found["allow_auto_merge"] = bool(self.data.get("allow_auto_merge", True))
        return found

    def commit_info(self, sha: str) -> CommitInfo:
        """One commit of the bare repository (commits never change: cached)."""
        found = self._commits.get(sha)
        if found is None:
            found = self._commits[sha] = self.repo.commit(sha)
        return found

    def _commit_json(self, c: CommitInfo) -> JSON:
        self._commits.setdefault(c.sha, c)
        return shapes.commit(self.facts, c)


class Page(list[JSON]):
    """One page of a list answer; the server turns it into a ``Link`` header."""

    def __init__(self, items: list[JSON], *, number: int, per_page: int, total: int) -> None:
        super().__init__(items)
        self.number = number
        self.per_page = per_page
        self.total = total

    @property
    def last(self) -> int:
        """The number of the last page (1 for an empty list)."""
        return max(1, -(-self.total // self.per_page))


def page(items: list[JSON], query: Mapping[str, str]) -> Page:
    """The page ``query`` asks for (``per_page`` ≤ 100, 30 by default), as GitHub pages."""
    try:
        per_page = max(1, min(100, int(query.get("per_page", "30"))))
        number = max(1, int(query.get("page", "1")))
    except ValueError:
        per_page, number = 30, 1
    start = (number - 1) * per_page
    return Page(items[start : start + per_page], number=number, per_page=per_page, total=len(items))
