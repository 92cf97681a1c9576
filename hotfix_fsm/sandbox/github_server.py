"""A local, faithful subset of the GitHub REST API over real HTTP, backed by a bare git repo.

``RehearsalGitHub`` serves PRs, labels, CI checks, workflow dispatches and runs, git refs
and merges for one repository, with GitHub-shaped bodies, auth, rate-limit headers, ETags
and per-endpoint fault injection. Everything is persisted in ``state_dir`` after each
request, so a restarted server continues where the old one stopped.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import random
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from hotfix_fsm.sandbox.exchange_log import record_exchange
from hotfix_fsm.sandbox.github_git import BareRepo
from hotfix_fsm.sandbox.github_jobs import set_workflow_jobs
from hotfix_fsm.sandbox.github_routes import GitHubWorld, Route, match_route
from hotfix_fsm.sandbox.github_state import (
    JSON,
    ApiError,
    DeployHook,
    Page,
    StateFile,
    workflow_name,
)
from hotfix_fsm.sandbox.refhook import install_ref_log, read_ref_log
from hotfix_fsm.sandbox.serving import BackgroundServer, ServedApp, TrackedHandler

__all__ = ["RehearsalGitHub"]

RATE_LIMIT = 5000
RATE_WINDOW = 3600
DEFAULT_WORKFLOWS = ("deploy-production.yml", "rollback.yml")


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    raw_body: bytes
    route: Route | None
    params: dict[str, str]

    @property
    def template(self) -> str:
        return self.route.template if self.route else "<unmatched>"

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class Reply:
    """What the handler writes back; ``body`` None means no body, ``drop`` no response.

    ``route`` names the REST route of a real answer (not a control endpoint or a fault).
    """

    status: int
    body: bytes | None = None
    headers: dict[str, str] | None = None
    drop: bool = False
    route: str | None = None


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode("utf-8")


def _error(message: str, **extra: Any) -> bytes:
    return _json_bytes(
        {"message": message, "documentation_url": "https://docs.github.com/rest", **extra}
    )


class RehearsalGitHub(ServedApp):
    """The rehearsal GitHub REST API for one repository backed by ``bare_repo``."""

    def __init__(
        self,
        state_dir: Path,
        bare_repo: Path,
        *,
        owner: str = "acme",
        repo: str = "shop",
        tokens: Iterable[str] = frozenset({"sandbox-token"}),
        ci_seconds: float = 1.0,
        ci_checks: Sequence[str] = ("ci/test",),
        run_queued_seconds: float = 0.3,
        run_seconds: float = 1.0,
        workflows: Sequence[str] | Mapping[str, str] = DEFAULT_WORKFLOWS,
        default_branch: str = "main",
        supports_run_details: bool = True,
        on_deploy: DeployHook | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.bare_repo = Path(bare_repo)
        self.tokens = frozenset(tokens)
        self.supports_run_details = supports_run_details
        self.host = host
        self.port = port
        self.ref_log_path = self.state_dir / "ref-log.jsonl"
        install_ref_log(self.bare_repo, self.ref_log_path)
        names = (
            dict(workflows)
            if isinstance(workflows, Mapping)
            else {w: workflow_name(w) for w in workflows}
        )
        self._lock = threading.RLock()
        self._state = StateFile(self.state_dir / "github-state.json")
        self.world = GitHubWorld(
            self._state,
            BareRepo(self.bare_repo),
            owner=owner,
            name=repo,
            default_branch=default_branch,
            workflows=names,
            ci_seconds=ci_seconds,
            ci_checks=ci_checks,
            run_queued_seconds=run_queued_seconds,
            run_seconds=run_seconds,
            on_deploy=on_deploy,
        )
        self._serving = BackgroundServer(host, port)
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self, self._serving)

    def start(self) -> str:
        """Serve in a background thread; return the base URL."""
        self.world.base_url = super().start()
        return self.base_url

    # -- control and inspection --------------------------------------------------------------

    def effects(self) -> dict[str, list[JSON]]:
        """Every externally visible effect so far, including the bare repo's ref log."""
        with self._lock:
            if self.world.advance_runs():
                self._state.save()
            out: dict[str, list[JSON]] = {
                key: [dict(item) for item in items]
                for key, items in self._state.data["effects"].items()
            }
        refs = read_ref_log(self.ref_log_path)
        out["refs"] = refs
        out["force_updates"] = [entry for entry in refs if entry.get("forced")]
        return out

    def request_counts(self) -> dict[str, dict[str, int]]:
        """Per ``METHOD /route/template``: ``count`` (incl. 304s), ``not_modified``, ``faulted``."""
        with self._lock:
            return {k: dict(v) for k, v in self._state.data["requests"].items()}

    def set_fault(
        self,
        route_pattern: str = "*",
        *,
        error_rate: float = 0.0,
        status: int = 502,
        latency: float = 0.0,
        drop_rate: float = 0.0,
        primary_rate_limit_rate: float = 0.0,
        secondary_rate_limit_rate: float = 0.0,
        secondary_status: int = 403,
        seed: int = 0,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Add a fault rule (replacing one with the same pattern and methods).

        ``route_pattern`` is an fnmatch pattern over ``"METHOD /route/template"``, the
        template, or the concrete path. A matching request first sleeps ``latency``, then
        with the given probabilities is dropped, answered as a primary or secondary rate
        limit, or answered with ``status``. Faults are decided before handling, so a
        faulted request has no effect. Draws are seeded: replaying a rule replays them.
        """
        rule: JSON = {
            "pattern": route_pattern,
            "methods": sorted(m.upper() for m in methods) if methods is not None else None,
            "error_rate": error_rate,
            "status": status,
            "latency": latency,
            "drop_rate": drop_rate,
            "primary_rate_limit_rate": primary_rate_limit_rate,
            "secondary_rate_limit_rate": secondary_rate_limit_rate,
            "secondary_status": secondary_status,
            "seed": seed,
            "draws": 0,
        }
        with self._lock:
            faults = [
                f
                for f in self._state.data["faults"]
                if (f["pattern"], f["methods"]) != (rule["pattern"], rule["methods"])
            ]
            faults.append(rule)
            self._state.data["faults"] = faults
            self._state.save()

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self._lock:
            self._state.data["faults"] = []
            self._state.save()

    def set_ci(
        self,
        *,
        conclusion: str | None = None,
        checks: Sequence[str] | None = None,
        seconds: float | None = None,
        sha: str | None = None,
    ) -> None:
        """CI outcome for shas first seen from now on, or (``sha``) for one commit."""
        with self._lock:
            self.world.set_ci(conclusion=conclusion, checks=checks, seconds=seconds, sha=sha)
            self._state.save()

    def set_workflow_conclusion(self, workflow: str, conclusion: str) -> None:
        """Conclusion of runs of ``workflow`` dispatched from now on (default success)."""
        with self._lock:
            self.world.set_workflow_conclusion(workflow, conclusion)
            self._state.save()

    def set_workflow_jobs(self, workflow: str, jobs: Sequence[str]) -> None:
        """Name the jobs of ``workflow``'s runs (``GET /actions/runs/{id}/jobs``)."""
        with self._lock:
            set_workflow_jobs(self.world, workflow, jobs)
            self._state.save()

    def protect_branch(self, branch: str | None = None, **rules: Any) -> None:
        """Protect ``branch`` (the default branch): ``required_approving_review_count``,
        ``required_status_checks``, ``strict``, ``allowed_merge_methods``, ``enabled``."""
        with self._lock:
            _protect(self, {"branch": branch or self.world.default_branch, **rules})
            self._state.save()

    def set_ruleset(self, branch: str | None = None, **rules: Any) -> None:
        """A ruleset on ``branch`` (the default branch) with the same keys as
        ``protect_branch`` (and ``name``)."""
        with self._lock:
            _ruleset(self, {"branch": branch or self.world.default_branch, **rules})
            self._state.save()

    def set_repository(self, **settings: Any) -> None:
        """Repository settings: ``allow_auto_merge``."""
        with self._lock:
            _repository(self, settings)
            self._state.save()

    def review_pull(self, number: int, reviewer: str, state: str = "APPROVED") -> JSON:
        """``reviewer`` submits a review of PR ``number`` (a drill's approval)."""
        with self._lock:
            try:
                return _review(self, {"pr": number, "reviewer": reviewer, "state": state})
            finally:
                self._state.save()

    def set_environment(self, name: str, *, reviewers: Sequence[str], **more: Any) -> None:
        """Runs of the deploy workflow (or ``workflows``) wait for one of ``reviewers``."""
        with self._lock:
            _environment(self, {"name": name, "reviewers": list(reviewers), **more})
            self._state.save()

    def approve_deployment(self, run_id: int, reviewer: str, state: str = "approved") -> None:
        """``reviewer`` approves (or rejects) the pending deployment of run ``run_id``."""
        with self._lock:
            try:
                _approve_deployment(self, {"run_id": run_id, "reviewer": reviewer, "state": state})
            finally:
                self._state.save()

    def finish_run(self, run_id: int) -> None:
        """Workflow run ``run_id`` ends now, with its planned conclusion (a run a test holds
        running until it has looked at it, rather than for a time a busy machine outruns).
        A run a protected environment holds still waits for its reviewer first."""
        with self._lock:
            run = self.world.data["runs"].get(str(run_id))
            if run is None:
                raise KeyError(f"no workflow run {run_id} in this rehearsal")
            run["queued_seconds"] = 0.0
            run["run_seconds"] = 0.0
            self._state.save()

    # -- request pipeline --------------------------------------------------------------------

    def _count(self, key: str, field: str) -> None:
        entry = self._state.data["requests"].setdefault(
            key, {"count": 0, "not_modified": 0, "faulted": 0}
        )
        entry[field] += 1

    def _decide_fault(
        self, method: str, template: str, path: str
    ) -> tuple[float, str | None, JSON]:
        latency = 0.0
        for rule in self._state.data["faults"]:
            if rule["methods"] is not None and method not in rule["methods"]:
                continue
            pat = rule["pattern"]
            candidates = (f"{method} {template}", template, path, f"{method} {path}")
            if not any(fnmatch.fnmatchcase(c, pat) for c in candidates):
                continue
            latency += float(rule["latency"])
            # One deterministic generator per (seed, draw) keeps runs reproducible across
            # restarts without persisting a Mersenne Twister state.
            rng = random.Random(f"{rule['seed']}:{rule['draws']}")
            rule["draws"] += 1
            for kind in ("drop", "primary_rate_limit", "secondary_rate_limit", "error"):
                if rng.random() < float(rule[f"{kind}_rate"]):
                    return latency, kind, rule
        return latency, None, {}

    def _rate_headers(self, who: str, *, consume: bool) -> dict[str, str]:
        now = time.time()
        rate = self._state.data["rate"].setdefault(who, {"used": 0, "reset": 0})
        if rate["reset"] <= now:
            rate["used"], rate["reset"] = 0, int(now) + RATE_WINDOW
        if consume:
            rate["used"] += 1
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(0, RATE_LIMIT - rate["used"])),
            "x-ratelimit-reset": str(rate["reset"]),
            "x-ratelimit-used": str(rate["used"]),
            "x-ratelimit-resource": "core",
        }

    def _rate_limit_body(self, who: str) -> JSON:
        headers = self._rate_headers(who, consume=False)
        core = {
            "limit": RATE_LIMIT,
            "remaining": int(headers["x-ratelimit-remaining"]),
            "reset": int(headers["x-ratelimit-reset"]),
            "used": int(headers["x-ratelimit-used"]),
            "resource": "core",
        }
        # Only the core budget is modelled; the others are shown unused, as GitHub lists them.
        others = {
            name: {"limit": limit, "remaining": limit, "reset": core["reset"], "used": 0}
            for name, limit in (("search", 30), ("graphql", 5000), ("code_search", 10))
        }
        return {"resources": {"core": core, **others}, "rate": core}

    def _who(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or token not in self.tokens:
            return None
        # Tokens never reach the state file; a digest is enough to keep budgets apart.
        return hashlib.sha256(token.encode()).hexdigest()[:12]

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Reply:
        """Answer one request (called from the HTTP handler thread)."""
        reply = self._handle(method, target, headers, raw_body)
        if not reply.drop:
            # GitHub names every answer, errors included, for its support staff.
            request_id = uuid.uuid4().hex.upper()
            reply.headers = {
                **(reply.headers or {}),
                "x-github-request-id": f"{request_id[:4]}:{request_id[4:10]}:{request_id[10:18]}",
            }
        if reply.route is not None:
            record_exchange(method, target, reply.route, headers, raw_body, reply)
        return reply

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], raw_body: bytes
    ) -> Reply:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        if path.startswith("/_sandbox/"):
            return self._sandbox(method, path, raw_body)
        route, params = match_route(method, path)
        req = _Request(
            method=method,
            path=path,
            query=dict(parse_qsl(parts.query)),
            headers=headers,
            raw_body=raw_body,
            route=route,
            params=params,
        )
        # Faults are decided before any handling, so a faulted request has no effect.
        with self._lock:
            self._count(req.key, "count")
            latency, fault, rule = self._decide_fault(method, req.template, path)
            if fault:
                self._count(req.key, "faulted")
            self._state.save()
        if latency:
            time.sleep(latency)
        if fault == "drop":
            return Reply(0, drop=True)
        if fault is not None:
            return self._fault_reply(fault, rule)
        with self._lock:
            try:
                reply = self._answer(req)
            finally:
                self._state.save()
        reply.route = req.key
        return reply

    def _fault_reply(self, fault: str, rule: JSON) -> Reply:
        now = int(time.time())
        if fault == "primary_rate_limit":
            return Reply(
                403,
                _error("API rate limit exceeded for user ID 1."),
                {
                    "x-ratelimit-limit": str(RATE_LIMIT),
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": str(now + 1),
                    "x-ratelimit-used": str(RATE_LIMIT),
                    "x-ratelimit-resource": "core",
                },
            )
        if fault == "secondary_rate_limit":
            return Reply(
                int(rule["secondary_status"]),
                _error(
                    "You have exceeded a secondary rate limit. Please wait a few minutes "
                    "before you try again."
                ),
                {"retry-after": "1"},
            )
        status = int(rule["status"])
        return Reply(status, _error("Service Unavailable" if status == 503 else "Server Error"))

    def _answer(self, req: _Request) -> Reply:
        who = self._who(req.headers.get("authorization"))
        if who is None:
            message = (
                "Bad credentials" if req.headers.get("authorization") else "Requires authentication"
            )
            return Reply(401, _error(message), self._rate_headers("anonymous", consume=True))
        self.world.advance_runs()
        self.world.settle_auto_merges()
        auth_headers = {"X-OAuth-Scopes": "repo, workflow", "X-Accepted-OAuth-Scopes": "repo"}
        if req.key == "GET /rate_limit":
            # As on GitHub, asking for the rate limit does not count against it.
            headers_out = {**auth_headers, **self._rate_headers(who, consume=False)}
            return Reply(200, _json_bytes(self._rate_limit_body(who)), headers_out)
        status, body, extra = self._call(req)
        if status == 200 and req.method == "GET" and body is not None:
            # GitHub's ETags on API answers are weak ones.
            etag = 'W/"' + hashlib.sha256(body).hexdigest()[:40] + '"'
            if _etag_matches(req.headers.get("if-none-match"), etag):
                self._count(req.key, "not_modified")
                rate = self._rate_headers(who, consume=False)
                return Reply(304, None, {**auth_headers, **rate, "ETag": etag})
            auth_headers["ETag"] = etag
        return Reply(
            status, body, {**auth_headers, **extra, **self._rate_headers(who, consume=True)}
        )

    def _links(self, req: _Request, result: Any) -> dict[str, str]:
        found = result if isinstance(result, Page) else None
        if isinstance(result, dict):
            found = next((v for v in result.values() if isinstance(v, Page)), None)
        if found is None or found.last <= 1:
            return {}
        rels = []
        for rel, number in (
            ("prev", found.number - 1),
            ("next", found.number + 1),
            ("last", found.last),
            ("first", 1),
        ):
            if 1 <= number <= found.last and (rel in ("last", "first") or number != found.number):
                query = urlencode({**req.query, "page": str(number)})
                rels.append(f'<{self.base_url}{req.path}?{query}>; rel="{rel}"')
        return {"Link": ", ".join(rels)}

    def _call(self, req: _Request) -> tuple[int, bytes | None, dict[str, str]]:
        route, params, world = req.route, req.params, self.world
        if route is None:
            return 404, _error("Not Found"), {}
        if "owner" in params and (
            params["owner"].lower() != world.owner.lower()
            or params["repo"].lower() != world.name.lower()
        ):
            return 404, _error("Not Found"), {}
        body: Any = {}
        if req.raw_body.strip():
            try:
                body = json.loads(req.raw_body)
            except ValueError:
                return 400, _error("Problems parsing JSON"), {}
        # Only the add-labels endpoint accepts a bare JSON array.
        if not isinstance(body, dict) and not (
            isinstance(body, list) and route.template.endswith("/labels")
        ):
            return 400, _error("Problems parsing JSON"), {}
        try:
            result = route.handler(world, params, req.query, body)
        except ApiError as exc:
            return exc.status, _json_bytes(exc.body()), {}
        if route.template.endswith("/dispatches") and isinstance(body, dict):
            status, out = self._dispatch_reply(body, result)
            return status, out, {}
        if route.status == 204 or (route.template.endswith("/merge") and req.method == "GET"):
            return 204, None, {}
        headers = self._links(req, result)
        if route.status == 201 and isinstance(result, dict) and result.get("url"):
            headers["Location"] = str(result["url"])
        return route.status, _json_bytes(result), headers

    def _dispatch_reply(self, body: JSON, run: JSON) -> tuple[int, bytes | None]:
        if self.supports_run_details and body.get("return_run_details") is True:
            return 200, _json_bytes(
                {"workflow_run_id": run["id"], "run_url": run["url"], "html_url": run["html_url"]}
            )
        return 204, None

    def _sandbox(self, method: str, path: str, raw_body: bytes) -> Reply:
        try:
            body: Any = json.loads(raw_body) if raw_body.strip() else {}
        except ValueError:
            return Reply(400, _error("Problems parsing JSON"))
        if not isinstance(body, dict):
            return Reply(400, _error("Problems parsing JSON"))
        if method == "GET" and path == "/_sandbox/effects":
            return Reply(200, _json_bytes(self.effects()))
        if method == "GET" and path == "/_sandbox/requests":
            return Reply(200, _json_bytes(self.request_counts()))
        if method == "POST" and path == "/_sandbox/faults":
            if body.get("clear"):
                self.clear_faults()
            else:
                route = str(body.pop("route", body.pop("route_pattern", "*")))
                try:
                    self.set_fault(route, **body)
                except TypeError as exc:
                    return Reply(422, _error(str(exc)))
            return Reply(204)
        if method == "POST" and path == "/_sandbox/ci":
            try:
                self.set_ci(**body)
            except TypeError as exc:
                return Reply(422, _error(str(exc)))
            return Reply(204)
        if method == "POST" and path in _CONTROLS:
            try:
                with self._lock:
                    result = _CONTROLS[path](self, body)
                    self._state.save()
            except TypeError as exc:
                return Reply(422, _error(str(exc)))
            except ApiError as exc:
                return Reply(exc.status, _json_bytes(exc.body()))
            return Reply(200, _json_bytes(result)) if result is not None else Reply(204)
        if method == "POST" and path == "/_sandbox/workflow_conclusion":
            if not {"workflow", "conclusion"} <= body.keys():
                return Reply(422, _error("workflow and conclusion are required"))
            self.set_workflow_conclusion(str(body["workflow"]), str(body["conclusion"]))
            return Reply(204)
        return Reply(404, _error("Not Found"))


def _etag_matches(header: str | None, etag: str) -> bool:
    # If-None-Match compares weakly: W/"x" matches "x".
    if not header:
        return False
    wanted = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in wanted or etag.removeprefix("W/") in wanted


def _protect(app: RehearsalGitHub, body: JSON) -> None:
    branch = str(body.pop("branch", app.world.default_branch))
    app.world.set_protection(branch, **body)


def _ruleset(app: RehearsalGitHub, body: JSON) -> None:
    branch = str(body.pop("branch", app.world.default_branch))
    app.world.set_ruleset(branch, **body)


def _repository(app: RehearsalGitHub, body: JSON) -> None:
    app.world.set_repository(**body)


def _review(app: RehearsalGitHub, body: JSON) -> JSON:
    if "pr" not in body or "reviewer" not in body:
        raise ApiError(422, "pr and reviewer are required")
    return app.world.review_pull(
        body["pr"], str(body["reviewer"]), str(body.get("state", "APPROVED"))
    )


def _environment(app: RehearsalGitHub, body: JSON) -> None:
    name = str(body.pop("name", "production"))
    app.world.set_environment(name, **body)


def _approve_deployment(app: RehearsalGitHub, body: JSON) -> list[JSON]:
    run_id = str(body.get("run_id", ""))
    run = app.world.data["runs"].get(run_id)
    env = (run or {}).get("environment") or {}
    return app.world.review_deployment(
        run_id,
        {"environment_ids": [env.get("id")], "state": str(body.get("state", "approved"))},
        reviewer=str(body.get("reviewer", "")),
    )


def _workflow_jobs(app: RehearsalGitHub, body: JSON) -> None:
    set_workflow_jobs(app.world, str(body.get("workflow", "deploy.yml")), body.get("jobs") or [])


_CONTROLS: dict[str, Callable[[RehearsalGitHub, JSON], Any]] = {
    "/_sandbox/protection": _protect,
    "/_sandbox/rulesets": _ruleset,
    "/_sandbox/repository": _repository,
    "/_sandbox/reviews": _review,
    "/_sandbox/environments": _environment,
    "/_sandbox/deployment_reviews": _approve_deployment,
    "/_sandbox/workflow_jobs": _workflow_jobs,
}


def _make_handler(app: RehearsalGitHub, srv: BackgroundServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(TrackedHandler):
        server_version = "GitHub.com"
        serving = srv

        def _serve(self) -> None:
            raw = self.read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                reply = app.handle(self.command, self.path, headers, raw)
            except Exception:  # a sandbox bug must look like a 500, not like a dropped socket
                traceback.print_exc()
                reply = Reply(500, _error("Server Error"))
            if reply.drop:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            # A client that gave up (latency faults) has gone; that is not a server error.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._write(reply)

        def _write(self, reply: Reply) -> None:
            self.send_response(reply.status)
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            if reply.status in (204, 304):
                self.end_headers()
                return
            body = reply.body or b""
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return _Handler
