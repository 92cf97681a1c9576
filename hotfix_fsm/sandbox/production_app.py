"""A local stand-in for the production service: health, Prometheus metrics, controllable modes.

It also stands in for PagerDuty's Events API v2 (``POST /v2/enqueue``): every accepted event
is recorded (without its routing key) so a drill shows the incidents it opened and closed.

The running version is set by the rehearsal GitHub server when a deploy run succeeds, and a
mode can be pinned to a version ("the fix is broken"), so deploying that version makes health
fail and rolling back makes it healthy again.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hotfix_fsm.sandbox.serving import (
    BackgroundServer,
    ServedApp,
    TrackedHandler,
    write_json_atomically,
)

__all__ = ["MODES", "ProductionApp"]

MODES = ("healthy", "failing", "flapping", "slow", "garbage", "degraded")
STATE_FILE = "production-state.json"


@dataclass(frozen=True)
class Metrics:
    """What the service reports in a given mode."""

    error_rate: float
    response_time_ms: float
    uptime: float


_METRICS = {
    "healthy": Metrics(0.1, 120.0, 99.99),
    "failing": Metrics(25.0, 950.0, 95.0),
    "degraded": Metrics(12.0, 1800.0, 99.5),
    "garbage": Metrics(0.1, 120.0, 99.99),
}
_QUERIES = {
    "error_rate": "error_rate",
    "response_time_ms": "response_time_ms",
    "uptime": "uptime",
    "hotfix_error_rate": "error_rate",
    "hotfix_response_time_ms": "response_time_ms",
    "hotfix_uptime": "uptime",
}


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


class ProductionApp(ServedApp):
    """The production app on 127.0.0.1 with ``/health``, ``/metrics`` and a query API."""

    def __init__(
        self,
        state_dir: Path,
        *,
        version: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port
        self._path = self.state_dir / STATE_FILE
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {
            "version": version,
            "mode": "healthy",
            "version_modes": {},
            "slow_seconds": 2.0,
            "flap": 0,
            "counters": {},
            "versions_seen": [version] if version else [],
            "pagerduty_events": [],
        }
        if self._path.exists():
            self._state.update(json.loads(self._path.read_text(encoding="utf-8")))
        else:
            self._save()
        self._serving = BackgroundServer(host, port)
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self, self._serving)

    # -- control -----------------------------------------------------------------------------

    @property
    def version(self) -> str:
        """The deployed version (a commit sha)."""
        with self._lock:
            return str(self._state["version"])

    def set_version(self, sha: str) -> None:
        """Deploy ``sha`` (called by the rehearsal GitHub server's ``on_deploy``)."""
        with self._lock:
            self._state["version"] = sha
            if sha not in self._state["versions_seen"]:
                self._state["versions_seen"].append(sha)
            self._save()

    def on_deploy(self, workflow: str, sha: str, inputs: dict[str, str]) -> None:
        """Adapter matching ``RehearsalGitHub(on_deploy=...)``."""
        self.set_version(sha)

    def set_mode(
        self, mode: str, *, for_version: str | None = None, slow_seconds: float | None = None
    ) -> None:
        """Set the global mode, or the mode used while ``for_version`` is deployed."""
        _check_mode(mode)
        with self._lock:
            if for_version is None:
                self._state["mode"] = mode
            else:
                self._state["version_modes"][for_version] = mode
            if slow_seconds is not None:
                self._state["slow_seconds"] = float(slow_seconds)
            self._save()

    def clear_mode(self, for_version: str) -> None:
        """Forget a per-version mode."""
        with self._lock:
            self._state["version_modes"].pop(for_version, None)
            self._save()

    def effective_mode(self) -> str:
        """The mode that applies to the deployed version."""
        with self._lock:
            return str(
                self._state["version_modes"].get(self._state["version"], self._state["mode"])
            )

    def counters(self) -> dict[str, int]:
        """Requests served per ``endpoint status`` key."""
        with self._lock:
            return dict(self._state["counters"])

    def snapshot(self) -> dict[str, Any]:
        """A copy of the whole persisted state."""
        with self._lock:
            return json.loads(json.dumps(self._state))  # type: ignore[no-any-return]

    # -- internals ---------------------------------------------------------------------------

    def _save(self) -> None:
        write_json_atomically(self._path, self._state, prefix=".prod-")

    def _count(self, key: str) -> None:
        counters = self._state["counters"]
        counters[key] = int(counters.get(key, 0)) + 1

    def _metrics(self, mode: str) -> Metrics:
        if mode == "slow":
            return Metrics(0.1, float(self._state["slow_seconds"]) * 1000.0, 99.99)
        if mode == "flapping":
            # Metrics follow the half of the cycle the next health check will see.
            return _METRICS["failing" if self._state["flap"] % 2 else "healthy"]
        return _METRICS[mode]

    def health(self) -> tuple[int, bytes, str]:
        """Answer GET /health: ``(status, body, content type)``."""
        with self._lock:
            mode = self.effective_mode()
            if mode == "flapping":
                mode = "failing" if self._state["flap"] % 2 else "healthy"
                self._state["flap"] += 1
            delay = float(self._state["slow_seconds"]) if mode == "slow" else 0.0
            metrics = self._metrics(mode)
            version = str(self._state["version"])
        if delay:
            time.sleep(delay)  # outside the lock: other requests keep being served
        if mode == "garbage":
            status, body, ctype = 200, b"<html>502 Bad Gateway</html>\x00\xff", "text/html"
        else:
            healthy = mode != "failing"
            payload = {
                "status": "healthy" if healthy else "unhealthy",
                "version": version,
                "responseTime": metrics.response_time_ms,
                "errorRate": metrics.error_rate,
                "uptime": metrics.uptime,
            }
            status = 200 if healthy else 503
            body, ctype = json.dumps(payload).encode(), "application/json"
        with self._lock:
            self._count(f"health {status}")
            self._save()
        return status, body, ctype

    def prometheus_text(self) -> bytes:
        """GET /metrics in the Prometheus text exposition format."""
        with self._lock:
            m = self._metrics(self.effective_mode())
            version = str(self._state["version"])
            self._count("metrics 200")
            self._save()
        lines = []
        for name, help_text, value in (
            ("hotfix_error_rate", "Percentage of failed requests.", m.error_rate),
            ("hotfix_response_time_ms", "Mean response time in milliseconds.", m.response_time_ms),
            ("hotfix_uptime", "Availability in percent.", m.uptime),
        ):
            lines += [
                f"# HELP {name} {help_text}",
                f"# TYPE {name} gauge",
                f'{name}{{version="{version}"}} {value}',
            ]
        return ("\n".join(lines) + "\n").encode()

    def query(self, expr: str) -> tuple[int, dict[str, Any]]:
        """GET /api/v1/query?query=<name> in the Prometheus HTTP API shape."""
        with self._lock:
            metric = _QUERIES.get(expr.strip())
            if metric is None:
                self._count("query 400")
                self._save()
                return 400, {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": f"unknown query {expr!r}; known: error_rate, response_time_ms, uptime",
                }
            value = getattr(self._metrics(self.effective_mode()), metric)
            self._count("query 200")
            self._save()
        return 200, {
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {"__name__": metric}, "value": [time.time(), str(value)]}],
            },
        }

    def pagerduty_event(self, body: Any) -> tuple[int, dict[str, Any]]:
        """POST /v2/enqueue: validate as PagerDuty does, record, answer 202 with the dedup key."""
        if not isinstance(body, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid"}
        action = body.get("event_action")
        errors = []
        if not body.get("routing_key"):
            errors.append("'routing_key' is missing or blank")
        if action not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        payload = body.get("payload")
        if action == "trigger":
            if not isinstance(payload, dict):
                errors.append("'payload' is missing")
            else:
                for key in ("summary", "source", "severity"):
                    if not payload.get(key):
                        errors.append(f"'payload.{key}' is missing or blank")
        elif not body.get("dedup_key"):
            errors.append("'dedup_key' is missing or blank")
        if errors:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": errors,
            }
        dedup = str(body.get("dedup_key") or f"sandbox-{time.time_ns()}")
        event = {
            "event_action": action,
            "dedup_key": dedup,
            "at": time.time(),
            "summary": str(payload.get("summary", "")) if isinstance(payload, dict) else "",
            "severity": str(payload.get("severity", "")) if isinstance(payload, dict) else "",
            "class": str(payload.get("class", "")) if isinstance(payload, dict) else "",
        }
        with self._lock:
            self._state.setdefault("pagerduty_events", []).append(event)
            self._save()
        return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup}

    def control(self, body: dict[str, Any]) -> None:
        """POST /_control: ``{mode, version?, for_version?, slow_seconds?}``."""
        if "version" in body and body["version"] is not None:
            self.set_version(str(body["version"]))
        if "mode" in body:
            for_version = body.get("for_version")
            slow = body.get("slow_seconds")
            self.set_mode(
                str(body["mode"]),
                for_version=str(for_version) if for_version is not None else None,
                slow_seconds=float(slow) if slow is not None else None,
            )
        elif body.get("slow_seconds") is not None:
            with self._lock:
                self._state["slow_seconds"] = float(body["slow_seconds"])
                self._save()


def _make_handler(app: ProductionApp, srv: BackgroundServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(TrackedHandler):
        server_version = "RehearsalProduction/1"
        serving = srv

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            # A client that timed out (slow mode) has gone; that is not a server error.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def _json(self, status: int, obj: Any) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/") or "/"
            if path == "/health":
                self._send(*app.health())
            elif path == "/metrics":
                self._send(200, app.prometheus_text(), "text/plain; version=0.0.4")
            elif path == "/api/v1/query":
                self._json(*app.query(dict(parse_qsl(parts.query)).get("query", "")))
            elif path == "/_state":
                self._json(200, app.snapshot())
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            raw = self.read_body()
            path = urlsplit(self.path).path.rstrip("/")
            if path == "/api/v1/query":
                form = dict(parse_qsl(raw.decode("utf-8", "replace")))
                self._json(*app.query(form.get("query", "")))
                return
            if path == "/v2/enqueue":
                try:
                    event = json.loads(raw)
                except ValueError:
                    self._json(400, {"status": "invalid event", "message": "not JSON"})
                    return
                self._json(*app.pagerduty_event(event))
                return
            if path != "/_control":
                self._json(404, {"error": "not found"})
                return
            try:
                body = json.loads(raw) if raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                app.control(body)
            except (ValueError, TypeError) as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, app.snapshot())

    return _Handler
