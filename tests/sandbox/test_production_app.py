"""The rehearsal production app over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hotfix_fsm.sandbox.production_app import ProductionApp

V1 = "a" * 40
V2 = "b" * 40


@pytest.fixture
def app(tmp_path: Path) -> Iterator[ProductionApp]:
    with ProductionApp(tmp_path / "prod", version=V1) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_healthy_by_default(app: ProductionApp, http: requests.Session) -> None:
    resp = http.get(app.base_url + "/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "healthy"
    assert body["version"] == V1
    assert isinstance(body["responseTime"], float)
    assert body["errorRate"] < 1.0
    assert body["uptime"] > 99.0


def test_failing_degraded_and_garbage(app: ProductionApp, http: requests.Session) -> None:
    app.set_mode("failing")
    failing = http.get(app.base_url + "/health")
    assert failing.status_code == 503
    assert failing.json()["status"] == "unhealthy"
    assert failing.json()["errorRate"] == 25.0

    app.set_mode("degraded")
    degraded = http.get(app.base_url + "/health").json()
    assert degraded["status"] == "healthy"
    assert degraded["errorRate"] == 12.0
    assert degraded["responseTime"] == 1800

    app.set_mode("garbage")
    garbage = http.get(app.base_url + "/health")
    assert garbage.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        garbage.json()
    with pytest.raises(ValueError, match="unknown mode"):
        app.set_mode("on-fire")


def test_flapping_alternates(app: ProductionApp, http: requests.Session) -> None:
    app.set_mode("flapping")
    codes = [http.get(app.base_url + "/health").status_code for _ in range(4)]
    assert codes == [200, 503, 200, 503]


def test_slow_mode_delays_the_answer(app: ProductionApp, http: requests.Session) -> None:
    app.set_mode("slow", slow_seconds=0.2)
    start = time.monotonic()
    resp = http.get(app.base_url + "/health")
    assert time.monotonic() - start >= 0.2
    assert resp.status_code == 200
    assert resp.json()["responseTime"] == 200.0
    with pytest.raises(requests.Timeout):
        http.get(app.base_url + "/health", timeout=0.05)


def test_per_version_mode_follows_deploys(app: ProductionApp, http: requests.Session) -> None:
    app.set_mode("failing", for_version=V2)
    assert http.get(app.base_url + "/health").status_code == 200
    app.on_deploy("deploy-production.yml", V2, {})
    resp = http.get(app.base_url + "/health")
    assert resp.status_code == 503
    assert resp.json()["version"] == V2
    app.set_version(V1)
    assert http.get(app.base_url + "/health").status_code == 200
    app.clear_mode(V2)
    app.set_version(V2)
    assert http.get(app.base_url + "/health").status_code == 200


def test_prometheus_query_api_and_metrics_text(app: ProductionApp, http: requests.Session) -> None:
    app.set_mode("degraded")
    resp = http.get(app.base_url + "/api/v1/query", params={"query": "error_rate"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"
    ts, value = body["data"]["result"][0]["value"]
    assert isinstance(ts, float)
    assert value == "12.0"
    for name in ("response_time_ms", "uptime"):
        assert http.get(app.base_url + "/api/v1/query", params={"query": name}).ok

    bad = http.get(app.base_url + "/api/v1/query", params={"query": "cpu"})
    assert bad.status_code == 400
    assert bad.json()["status"] == "error"
    assert bad.json()["errorType"] == "bad_data"

    text = http.get(app.base_url + "/metrics").text
    assert "# TYPE hotfix_error_rate gauge" in text
    assert f'hotfix_error_rate{{version="{V1}"}} 12.0' in text
    assert "hotfix_response_time_ms" in text
    assert "hotfix_uptime" in text


def test_control_endpoint(app: ProductionApp, http: requests.Session) -> None:
    resp = http.post(app.base_url + "/_control", json={"mode": "failing", "for_version": V2})
    assert resp.status_code == 200
    http.post(app.base_url + "/_control", json={"version": V2})
    assert http.get(app.base_url + "/health").status_code == 503
    bad = http.post(app.base_url + "/_control", json={"mode": "nope"})
    assert bad.status_code == 400
    assert http.get(app.base_url + "/nope").status_code == 404


def test_state_survives_restart(tmp_path: Path) -> None:
    with ProductionApp(tmp_path / "p", version=V1) as first, requests.Session() as http:
        first.set_mode("failing", for_version=V2)
        first.set_mode("degraded")
        first.set_version(V2)
        http.get(first.base_url + "/health")
    second = ProductionApp(tmp_path / "p", version="ignored")
    with second, requests.Session() as http:
        assert second.version == V2
        assert http.get(second.base_url + "/health").status_code == 503
        second.set_version(V1)
        assert http.get(second.base_url + "/health").json()["errorRate"] == 12.0
        assert second.counters()["health 503"] == 2
