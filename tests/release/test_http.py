"""Health checks and the Prometheus client against the real production app on 127.0.0.1."""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from hotfix_fsm.adapters.http import (
    BODY_LIMIT,
    HealthExpectation,
    HealthResult,
    MeasurementError,
    PrometheusClient,
    fetch_health,
    json_path,
    judge_health,
    version_matches,
)
from hotfix_fsm.sandbox.production_app import ProductionApp

from .conftest import Receiver, free_port

SHA = "b" * 40


def test_healthy_answer_is_measured_and_judged(
    prod: ProductionApp, session: requests.Session
) -> None:
    prod.set_version(SHA)
    result = fetch_health(session, prod.base_url + "/health", timeout=30)
    assert result.status == 200
    assert result.latency_ms > 0
    assert result.field("errorRate") == 0.1
    judgement = judge_health(result, HealthExpectation(versions=(SHA[:7],)))
    assert judgement.ok
    assert judgement.version == SHA


def test_wrong_version_status_and_body_are_reasons(
    prod: ProductionApp, session: requests.Session
) -> None:
    url = prod.base_url + "/health"
    judgement = judge_health(
        fetch_health(session, url, timeout=30), HealthExpectation(versions=(SHA,))
    )
    assert not judgement.ok
    assert "reports version" in judgement.reason
    prod.set_mode("failing")
    failing = judge_health(fetch_health(session, url, timeout=30), HealthExpectation())
    assert failing.reason == "HTTP 503, expected 200"
    prod.set_mode("garbage")
    garbage = fetch_health(session, url, timeout=30)
    assert garbage.body is None
    assert judge_health(garbage, HealthExpectation()).reason == "the body is not JSON (text/html)"
    assert judge_health(garbage, HealthExpectation(json_field="")).ok
    prod.set_mode("healthy")
    wrong = judge_health(
        fetch_health(session, url, timeout=30), HealthExpectation(json_value="green")
    )
    assert wrong.reason == "status is 'healthy', expected 'green'"


def test_transport_failures_are_measurements_not_exceptions(
    prod: ProductionApp, session: requests.Session
) -> None:
    down = fetch_health(session, f"http://127.0.0.1:{free_port()}/health", timeout=1)
    assert down.status is None
    assert down.error is not None
    assert down.error.startswith("cannot connect")
    assert not judge_health(down, HealthExpectation()).ok
    prod.set_mode("slow", slow_seconds=0.4)
    slow = fetch_health(session, prod.base_url + "/health", timeout=0.1)
    assert slow.error == "no answer within 0.1s"


def test_json_path_and_version_prefixes() -> None:
    body = {"a": {"b": [1, {"c": "x"}]}}
    assert json_path(body, "a.b.1.c") == "x"
    assert json_path(body, "a.b.-1.c") == "x"
    assert json_path(body, "a.b.5") is None
    assert json_path(body, "a.z") is None
    assert json_path("text", "a") is None
    assert json_path(body, "") == body
    assert version_matches(SHA, SHA[:7])
    assert version_matches(SHA[:9], SHA)
    assert not version_matches(SHA[:6], SHA)
    assert not version_matches("c" * 40, SHA)
    result = HealthResult(url="u", status=200, latency_ms=1.0, body={"version": {"x": 1}})
    assert judge_health(result, HealthExpectation(json_field="", versions=(SHA,))).version is None


@pytest.mark.parametrize(("query", "value"), [("error_rate", 0.1), ("hotfix_uptime", 99.99)])
def test_prometheus_instant_queries(
    prod: ProductionApp, session: requests.Session, query: str, value: float
) -> None:
    client = PrometheusClient(session, prod.base_url + "/", timeout=30)
    assert client.query(query) == value
    prod.set_mode("failing")
    assert client.query("error_rate") == 25.0


def test_prometheus_errors(prod: ProductionApp, session: requests.Session) -> None:
    with pytest.raises(MeasurementError, match="unknown query"):
        PrometheusClient(session, prod.base_url, timeout=30).query("rate(x[5m])")
    with pytest.raises(MeasurementError, match="cannot connect"):
        PrometheusClient(session, f"http://127.0.0.1:{free_port()}", timeout=1).query("up")


class PromServer(Receiver):
    """Answers GET /api/v1/query with a canned payload."""

    def __init__(self, payload: object) -> None:
        super().__init__()
        import json

        body = json.dumps(payload).encode()
        handler = self.server.RequestHandlerClass

        def do_get(h: object) -> None:
            h.send_response(200)  # type: ignore[attr-defined]
            h.send_header("Content-Length", str(len(body)))  # type: ignore[attr-defined]
            h.end_headers()  # type: ignore[attr-defined]
            h.wfile.write(body)  # type: ignore[attr-defined]

        handler.do_GET = do_get  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"resultType": "vector", "result": []}, None),
        ({"resultType": "scalar", "result": [1.0, "42"]}, 42.0),
        ({"resultType": "vector", "result": [{"metric": {}, "value": [1.0, "NaN"]}]}, None),
    ],
)
def test_prometheus_result_shapes(
    session: requests.Session, data: object, expected: float | None
) -> None:
    server = PromServer({"status": "success", "data": data})
    try:
        assert PrometheusClient(session, server.url, timeout=30).query("q") == expected
    finally:
        server.close()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "unsupported"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{}]}}, "without"),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "x"]}}, "not a num"),
        ({"status": "error", "error": "boom"}, "boom"),
    ],
)
def test_prometheus_bad_answers(session: requests.Session, payload: object, message: str) -> None:
    server = PromServer(payload)
    try:
        with pytest.raises(MeasurementError, match=message):
            PrometheusClient(session, server.url, timeout=30).query("q")
    finally:
        server.close()


class _Trickle(BaseHTTPRequestHandler):
    """Answers 200 at once, then its JSON body one byte every 50 ms (10 s in all)."""

    finished = threading.Event()

    def do_GET(self) -> None:
        body = b'{"status": "healthy", "pad": "' + b"x" * 170 + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client hung up: what a bounded call does
            return
        type(self).finished.set()

    def log_message(self, *_args: object) -> None:
        pass


def test_a_trickled_body_is_cut_at_the_timeout_of_the_whole_call(
    session: requests.Session,
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/health"
        result = fetch_health(session, url, timeout=0.5)
        # Each byte came well within the socket timeout; the call still ended long before
        # the body did, with a failure that says why.
        assert not _Trickle.finished.is_set()
        assert result.status is None
        assert "took longer than 0.5s" in (result.error or "")
        assert not judge_health(result, HealthExpectation()).ok
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=60)


def test_only_the_body_limit_is_read(session: requests.Session) -> None:
    class Enormous(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()  # no length: the body ends when the connection closes
            with contextlib.suppress(OSError):  # the client stops reading at the limit
                self.wfile.write(b"[" + b"1," * (BODY_LIMIT * 4))

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Enormous)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        result = fetch_health(session, f"http://127.0.0.1:{server.server_address[1]}/", timeout=30)
        assert result.status == 200
        assert result.body is None  # cut at the limit: not JSON we can judge
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=60)
