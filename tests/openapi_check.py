"""Check the rehearsal GitHub's answers against GitHub's official OpenAPI description.

``tests/openapi/api.github.com.json`` is the part of the description the client uses
(refreshed by ``scripts/refresh-github-openapi.py``). ``tests/conftest.py`` points every
test's rehearsal servers at a record directory (``HOTFIX_FSM_SANDBOX_RECORD``) and hands
what they recorded to :func:`check_exchanges` afterwards: each real answer's status must
be documented for its operation (or be one GitHub answers to any request: 401, 403, 404,
5xx) and its body must match the documented schema; each request body the client sent
(user agent ``hotfix-fsm``) must match the operation's request schema. Validators are
compiled once per process and cached per operation and status.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import (
    OAS30ReadValidator,
    OAS30WriteValidator,
    oas30_format_checker,
)
from referencing import Registry
from referencing.jsonschema import DRAFT4

DESCRIPTION = Path(__file__).resolve().parent / "openapi" / "api.github.com.json"
ROOT = "urn:github-openapi"
CLIENT_AGENT = "hotfix-fsm"
# Statuses GitHub may answer to any request; their body is GitHub's basic error. 422 is
# among them: GitHub refuses a request it cannot process (an unknown ref for check runs,
# a workflow input it does not declare, no pending deployment to review) with a 422 the
# description leaves out for several operations.
ANY_OPERATION = frozenset({401, 403, 404, 422, 500, 502, 503})
MAX_LINES = 12
# GitHub's GraphQL endpoint is not in the REST description; its answers are checked against
# the GraphQL specification's response format ("Response" section): an object with `data`
# and, when something went wrong, `errors`, each error with a `message`.
GRAPHQL_ROUTE = "POST /graphql"
GRAPHQL_RESPONSE: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": ["object", "null"]},
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "locations": {"type": "array"},
                    "path": {"type": "array"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Operation:
    """One documented operation."""

    method: str
    path: str
    operation_id: str
    pointer: str  # JSON pointer of the operation object in the description


@dataclass
class Tally:
    """What one batch of exchanges covered and broke."""

    requests: int = 0
    operations: set[str] = field(default_factory=set)
    violations: int = 0
    missing_required: int = 0
    messages: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.requests += other.requests
        self.operations |= other.operations
        self.violations += other.violations
        self.missing_required += other.missing_required


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@functools.cache
def description() -> dict[str, Any]:
    """The stored excerpt of GitHub's description."""
    loaded: dict[str, Any] = json.loads(DESCRIPTION.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def _registry() -> Registry[Any]:
    return Registry().with_resource(ROOT, DRAFT4.create_resource(description()))


@functools.cache
def operations() -> dict[tuple[str, str], Operation]:
    """Documented operations by ``(METHOD, path shape)`` (parameter names erased)."""
    out: dict[tuple[str, str], Operation] = {}
    for path, item in description()["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                pointer = f"/paths/{_escape(path)}/{method}"
                out[method.upper(), _shape(path)] = Operation(
                    method.upper(), path, op["operationId"], pointer
                )
    return out


def operation_for(route: str) -> Operation | None:
    """The documented operation of a rehearsal route key such as ``GET /repos/{o}/{r}``."""
    method, _, template = route.partition(" ")
    return operations().get((method, _shape(template)))


def _get(pointer: str) -> Any:
    target: Any = description()
    for token in pointer.removeprefix("/").split("/") if pointer else ():
        target = target[token.replace("~1", "/").replace("~0", "~")]
    return target


def follow(pointer: str) -> str:
    """``pointer`` with every ``$ref`` at it followed (a response, a request body)."""
    while isinstance(node := _get(pointer), dict) and "$ref" in node:
        pointer = str(node["$ref"]).removeprefix("#")
    return pointer


def _json_schema(holder: str) -> str | None:
    """The pointer of the JSON schema of the response or request body at ``holder``."""
    holder = follow(holder)
    for media, entry in _get(holder).get("content", {}).items():
        if media.startswith("application/json") and "schema" in entry:
            return f"{holder}/content/{_escape(media)}/schema"
    return None


def _compiled(schema_pointer: str, *, write: bool) -> Any:
    # The schema's own "#/components/..." references must resolve against the whole
    # description: validate through a reference to its place in it.
    cls = OAS30WriteValidator if write else OAS30ReadValidator
    return cls(
        {"$ref": f"{ROOT}#{schema_pointer}"},
        registry=_registry(),
        format_checker=oas30_format_checker,
    )


@functools.cache
def response_validator(op: Operation, status: int) -> Any:
    """A validator of the answer's body; None when ``status`` is not documented, False when
    it is documented without a JSON body."""
    responses = _get(op.pointer)["responses"]
    if str(status) in responses:
        schema = _json_schema(f"{op.pointer}/responses/{status}")
    elif status in ANY_OPERATION:
        return basic_error_validator()
    else:
        return None
    return _compiled(schema, write=False) if schema else False


@functools.cache
def basic_error_validator() -> Any:
    """A validator of GitHub's error body (``basic-error``)."""
    return _compiled("/components/schemas/basic-error", write=False)


@functools.cache
def request_validator(op: Operation) -> Any:
    """A validator of the request body; False when the operation takes none."""
    if "requestBody" not in _get(op.pointer):
        return False
    schema = _json_schema(f"{op.pointer}/requestBody")
    return _compiled(schema, write=True) if schema else False


def _nullable_enum(error: ValidationError) -> bool:
    # GitHub's description marks fields such as a check run's ``conclusion`` ``nullable``
    # with an ``enum`` that lists no null, and GitHub sends null there: the intent of
    # OpenAPI 3.0's ``nullable`` (null is allowed), which the strict reading of 3.0.3 drops.
    schema = error.schema if isinstance(error.schema, dict) else {}
    return error.validator == "enum" and error.instance is None and bool(schema.get("nullable"))


def _errors(validator: Any, instance: Any) -> list[ValidationError]:
    found = (e for e in validator.iter_errors(instance) if not _nullable_enum(e))
    return sorted(found, key=lambda e: (e.json_path, e.message))


def _describe(error: ValidationError) -> str:
    message = error.message
    if len(message) > 160:
        message = message[:157] + "..."
    return f"    {error.json_path}: {message}"


def read_exchanges(folder: Path) -> Iterator[dict[str, Any]]:
    """Every exchange recorded under ``folder`` (a line cut short by a kill is skipped)."""
    for path in sorted(folder.glob("github-exchanges-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue


def check_exchanges(exchanges: Iterable[dict[str, Any]]) -> Tally:
    """Validate each exchange; the tally holds the figures and a readable report."""
    tally = Tally()
    for ex in exchanges:
        tally.requests += 1
        op = operation_for(ex["route"])
        head = f"{ex['method']} {ex['path']} answered {ex['status']}"
        if ex["route"] == GRAPHQL_ROUTE:
            tally.operations.add("graphql")
            graphql = _errors(Draft7Validator(GRAPHQL_RESPONSE), ex["response"])
            if graphql:
                tally.violations += len(graphql)
                tally.messages.append(head + ":\n" + "\n".join(_lines(graphql, "    ")))
            continue
        if op is None:
            if "<unmatched>" not in ex["route"]:
                tally.violations += 1
                tally.messages.append(
                    f"{head}: route {ex['route']} has no operation in {DESCRIPTION.name} "
                    "(add its operationId to scripts/refresh-github-openapi.py)"
                )
            continue
        tally.operations.add(op.operation_id)
        problems: list[str] = []
        count = missing = 0
        if ex["user_agent"].startswith(CLIENT_AGENT) and ex["request"] is not None:
            check = request_validator(op)
            if check is False:
                count += 1
                problems.append("    the client sent a body to an operation that takes none")
            else:
                errors = _errors(check, ex["request"])
                count += len(errors)
                problems.extend(_lines(errors, "request "))
        status = int(ex["status"])
        check = response_validator(op, status) if status != 304 else False
        if check is None:
            count += 1
            documented = ", ".join(sorted(_get(op.pointer)["responses"]))
            problems.append(f"    status {status} is not documented (documented: {documented})")
        elif check is False and status >= 400 and ex["response"] is not None:
            # An error documented without a body (git/delete-ref's 422): GitHub still sends
            # its basic error, so that is what it must be.
            errors = _errors(basic_error_validator(), ex["response"])
            count += len(errors)
            problems.extend(_lines(errors, ""))
        elif check is False:
            if ex["response"] is not None and status not in (204, 304):
                count += 1
                problems.append("    a body where the operation documents none")
        else:
            errors = _errors(check, ex["response"])
            count += len(errors)
            missing += sum(1 for e in errors if e.validator == "required")
            problems.extend(_lines(errors, ""))
        if problems:
            tally.violations += count
            tally.missing_required += missing
            shown = problems[:MAX_LINES]
            if len(problems) > MAX_LINES:
                shown.append(f"    ... and {len(problems) - MAX_LINES} more")
            tally.messages.append(f"{head} ({op.operation_id}):\n" + "\n".join(shown))
    return tally


def _lines(errors: list[ValidationError], prefix: str) -> list[str]:
    """One line per error, but one line per object for its missing required fields."""
    missing: dict[str, list[str]] = {}
    lines: list[str] = []
    for error in errors:
        if error.validator == "required":
            field = error.message.split("'")[1] if "'" in error.message else error.message
            missing.setdefault(error.json_path, []).append(field)
        else:
            lines.append(f"    {prefix}{_describe(error).strip()}")
    for where, fields in sorted(missing.items()):
        lines.append(f"    {prefix}{where}: missing required {', '.join(sorted(fields))}")
    return sorted(lines)
