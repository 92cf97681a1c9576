"""Small HTTP helpers on ``requests``: health checks that measure themselves, Prometheus queries.

Nothing here raises for a network failure of a health check: the failure is part of the
measurement (``HealthResult.error``), because "production does not answer" is exactly what
the verify and monitor phases need to judge. The Prometheus client raises
``MeasurementError`` so the analysis can count a measurement error.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.redact import redact

if TYPE_CHECKING:  # the caller's session brings requests in: importing it costs ~50 ms
    import requests

BODY_LIMIT = 64 * 1024  # bytes of a health body kept for parsing


class MeasurementError(Exception):
    """A value could not be measured (transport error, bad answer, query error)."""


@dataclass(frozen=True)
class HealthResult:
    """One health call: what came back and how long it took."""

    url: str
    status: int | None
    latency_ms: float
    body: Any = None  # the parsed JSON body, or None when it is not JSON
    error: str | None = None  # transport error (no HTTP answer at all)
    content_type: str = ""

    @property
    def answered(self) -> bool:
        return self.status is not None

    def field(self, path: str) -> Any:
        """A value of the JSON body by dotted path (``a.b.0``); None when absent."""
        return json_path(self.body, path)


def json_path(body: Any, path: str) -> Any:
    """Follow a dotted path through dicts and lists; None when any step is missing."""
    current = body
    for part in path.split(".") if path else []:
        if isinstance(current, dict):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def fetch_health(session: requests.Session, url: str, *, timeout: float) -> HealthResult:
    """GET ``url`` once; never raises for transport errors (they land in ``error``).

    ``timeout`` bounds the whole call, the body included: an answer whose body is still
    arriving when it passes is a failure (``error``), and at most ``BODY_LIMIT`` bytes of
    the body are read.
    """
    import requests

    start = time.monotonic()
    try:
        response = session.get(
            url,
            timeout=timeout,
            headers={"Accept": "application/json"},
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        return _failed(url, start, f"no answer within {timeout:g}s")
    except requests.ConnectionError as exc:
        return _failed(url, start, f"cannot connect ({_reason(exc)})")
    except requests.RequestException as exc:
        return _failed(url, start, f"request failed ({type(exc).__name__})")
    try:
        raw = _read_body(response.raw, start + timeout)
    except Exception as exc:  # urllib3 read errors are not all requests/OS errors
        return _failed(url, start, f"the answer broke off ({type(exc).__name__})")
    finally:
        response.close()
    if raw is None:
        return _failed(url, start, f"the answer took longer than {timeout:g}s (its body trickled)")
    latency = (time.monotonic() - start) * 1000.0
    body: Any = None
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # not a body we can judge
        body = None
    return HealthResult(
        url=url,
        status=response.status_code,
        latency_ms=round(latency, 2),
        body=body,
        content_type=response.headers.get("Content-Type", ""),
    )


def _read_body(raw: Any, deadline: float) -> bytes | None:
    """At most ``BODY_LIMIT`` bytes of the (decoded) body; None when ``deadline`` (monotonic)
    passes first. ``read1`` returns what has arrived, so a body trickled a byte at a time is
    cut at the deadline: the timeout bounds the call, not each socket read (a read begun
    just before the deadline still waits at most the socket timeout)."""
    chunks: list[bytes] = []
    size = 0
    while size < BODY_LIMIT:
        if time.monotonic() >= deadline:
            return None
        chunk = raw.read1(BODY_LIMIT - size, decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _failed(url: str, start: float, error: str) -> HealthResult:
    latency = (time.monotonic() - start) * 1000.0
    return HealthResult(url=url, status=None, latency_ms=round(latency, 2), error=error)


def _reason(exc: BaseException) -> str:
    """A short cause of a connection error, without the URL (which may carry a secret)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "Connection reset",
        "No route to host",
        "Temporary failure in name",
    ):
        if marker in text:
            return marker.lower()
    return type(exc).__name__


@dataclass(frozen=True)
class HealthExpectation:
    """What a healthy answer looks like (built from ``config.VerifyConfig``)."""

    expected_status: int = 200
    json_field: str = "status"  # empty: do not look at the body
    json_value: str = "healthy"
    version_field: str = "version"  # empty: do not look at the version
    versions: tuple[str, ...] = field(default_factory=tuple)  # acceptable shas

    @classmethod
    def from_config(cls, verify: Any, versions: Iterable[str] = ()) -> HealthExpectation:
        return cls(
            expected_status=int(verify.expected_status),
            json_field=verify.json_field,
            json_value=verify.json_value,
            version_field=verify.version_field,
            versions=tuple(v for v in versions if v),
        )


@dataclass(frozen=True)
class HealthJudgement:
    ok: bool
    reason: str  # why not ok, or a short description of the healthy answer
    version: str | None = None  # what production reports, when it does


def judge_health(result: HealthResult, expect: HealthExpectation) -> HealthJudgement:
    """Whether one health answer is healthy: status, body condition and version."""
    version = _version(result, expect.version_field)
    if result.error is not None:
        return HealthJudgement(False, result.error, version)
    if result.status != expect.expected_status:
        return HealthJudgement(
            False, f"HTTP {result.status}, expected {expect.expected_status}", version
        )
    if expect.json_field:
        if not isinstance(result.body, dict | list):
            kind = result.content_type.split(";")[0] or "no content type"
            return HealthJudgement(False, f"the body is not JSON ({kind})", version)
        got = result.field(expect.json_field)
        if got is None or _text(got) != expect.json_value:
            return HealthJudgement(
                False, f"{expect.json_field} is {got!r}, expected {expect.json_value!r}", version
            )
    matches = any(version_matches(version or "", want) for want in expect.versions)
    if expect.version_field and expect.versions and version and not matches:
        wanted = " or ".join(v[:12] for v in expect.versions)
        shown = redact(version)[:40]  # mask first: a cut must not split a secret
        return HealthJudgement(
            False, f"production reports version {shown!r}, expected {wanted}", version
        )
    return HealthJudgement(True, f"HTTP {result.status}", version)


def _version(result: HealthResult, version_field: str) -> str | None:
    if not version_field:
        return None
    value = result.field(version_field)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def version_matches(reported: str, expected: str) -> bool:
    """Equal shas, or one a prefix of the other (short shas), at least 7 characters."""
    a, b = reported.strip().lower(), expected.strip().lower()
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    return len(short) >= 7 and long_.startswith(short)


class PrometheusClient:
    """Instant queries against the Prometheus HTTP API (``GET /api/v1/query``)."""

    def __init__(self, session: requests.Session, base_url: str, *, timeout: float) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def query(self, expr: str) -> float | None:
        """The value of a scalar or the first sample of a vector; None for an empty result.

        Raises ``MeasurementError`` when the server cannot be reached or answers an error.
        """
        import requests

        url = f"{self.base_url}/api/v1/query"
        try:
            response = self.session.get(url, params={"query": expr}, timeout=self.timeout)
        except requests.Timeout:
            raise MeasurementError(f"prometheus: no answer within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise MeasurementError(f"prometheus: cannot connect ({_reason(exc)})") from None
        with response:
            try:
                payload = response.json()
            except ValueError:
                raise MeasurementError(
                    f"prometheus: HTTP {response.status_code} with a body that is not JSON"
                ) from None
        if not isinstance(payload, dict) or payload.get("status") != "success":
            error = payload.get("error") if isinstance(payload, dict) else None
            raise MeasurementError(
                f"prometheus: HTTP {response.status_code}: {redact(str(error or payload))[:200]}"
            )
        return _sample(payload.get("data"))


def _sample(data: Any) -> float | None:
    if not isinstance(data, dict):
        raise MeasurementError("prometheus: the answer has no data")
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return _value(result)
    if kind == "vector" and isinstance(result, list):
        if not result:
            return None
        first = result[0]
        if not isinstance(first, dict) or "value" not in first:
            raise MeasurementError("prometheus: a vector sample without a value")
        return _value(first["value"])
    raise MeasurementError(
        f"prometheus: unsupported result type {kind!r} (use an instant "
        "query that yields a scalar or a vector)"
    )


def _value(pair: Any) -> float | None:
    if not isinstance(pair, list) or len(pair) != 2:
        raise MeasurementError("prometheus: a sample is not [time, value]")
    try:
        number = float(pair[1])
    except (TypeError, ValueError):
        raise MeasurementError(f"prometheus: sample value {pair[1]!r} is not a number") from None
    return None if math.isnan(number) else number
