"""What the GitHub client accepts of GitHub's answers: plain values, the right shapes.

ghapi hands back its own ``AttrDict``/``L`` types (``as_plain`` makes them dicts and lists)
and whatever the server sent. A proxy's HTML page, an empty body or an object missing a
field the client relies on is not an answer to act on: each ``expect_*`` raises
``GitHubUnavailable`` naming what came back instead (``describe``) and saying that asking
again (``hotfix resume``) may help. The fields checked are those the phases read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hotfix_fsm.adapters.github_errors import GitHubUnavailable


def as_plain(value: Any) -> Any:
    """ghapi's AttrDicts and L lists as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "L":
        return [as_plain(v) for v in value]
    return value


def next_link(headers: Any) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, if any."""
    value = (headers or {}).get("link") or (headers or {}).get("Link") or ""
    for part in str(value).split(","):
        url, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            return url.strip().strip("<>")
    return None


def expect_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise GitHubUnavailable(
            f"GitHub answered {describe(value)} to {what}, not the expected list",
            hint="a proxy or GitHub itself may be misbehaving; `hotfix resume` asks again",
        )
    return value


def expect_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise GitHubUnavailable(
            f"GitHub answered {describe(value)} to {what}, not the expected JSON object",
            hint="a proxy or GitHub itself may be misbehaving; `hotfix resume` asks again",
        )
    return value


def expect_fields(
    value: Any, what: str, fields: Mapping[str, type | tuple[type, ...]]
) -> dict[str, Any]:
    obj = expect_dict(value, what)
    for name, kind in fields.items():
        got = obj.get(name)
        if not isinstance(got, kind) or (kind is int and isinstance(got, bool)):
            raise GitHubUnavailable(
                f"GitHub answered an object whose {name!r} is {describe(got)} to {what}",
                hint="a proxy or GitHub itself may be misbehaving; `hotfix resume` asks again",
            )
    return obj


def expect_pull(value: Any, what: str) -> dict[str, Any]:
    out: dict[str, Any] = expect_fields(
        value, what, {"number": int, "state": str, "head": dict, "base": dict}
    )
    return out


def expect_pulls(value: Any, what: str) -> list[dict[str, Any]]:
    return [expect_pull(item, what) for item in expect_list(value, what)]


def expect_run(value: Any, what: str) -> dict[str, Any]:
    out: dict[str, Any] = expect_fields(value, what, {"id": int, "status": str})
    return out


def expect_runs(value: Any, what: str) -> dict[str, Any]:
    obj = expect_fields(value, what, {"workflow_runs": list})
    obj["workflow_runs"] = [expect_run(r, what) for r in obj["workflow_runs"]]
    return obj


def expect_check_runs(value: Any, what: str) -> dict[str, Any]:
    obj = expect_fields(value, what, {"check_runs": list, "total_count": int})
    obj["check_runs"] = [
        expect_fields(r, what, {"name": str, "status": str}) for r in obj["check_runs"]
    ]
    return obj


def expect_combined(value: Any, what: str) -> dict[str, Any]:
    out: dict[str, Any] = expect_fields(value, what, {"state": str, "statuses": list})
    return out


def expect_labels(value: Any, what: str) -> list[dict[str, Any]]:
    return [expect_fields(item, what, {"name": str}) for item in expect_list(value, what)]


def describe(value: Any) -> str:
    if isinstance(value, str | bytes):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        head = " ".join(text.split())[:60]
        return f"text ({head!r})" if head else "an empty body"
    if value is None:
        return "nothing"
    return f"a JSON {type(value).__name__}"


__all__ = [
    "as_plain",
    "describe",
    "expect_check_runs",
    "expect_combined",
    "expect_dict",
    "expect_fields",
    "expect_labels",
    "expect_list",
    "expect_pull",
    "expect_pulls",
    "expect_run",
    "expect_runs",
    "next_link",
]
