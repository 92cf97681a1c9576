"""The check that keeps the rehearsal GitHub to GitHub's OpenAPI description.

``tests/conftest.py`` records every real answer of the rehearsal GitHub in every test and
validates it with ``tests/openapi_check.py``. These tests show that the check covers every
route, that it can fail (and says where), and that only real answers are recorded.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.sandbox.exchange_log import RECORD_ENV
from hotfix_fsm.sandbox.github_routes import RATE_LIMIT_ROUTE, ROUTES
from tests.github.conftest import TOKEN, World
from tests.openapi_check import (
    DESCRIPTION,
    GRAPHQL_ROUTE,
    check_exchanges,
    description,
    read_exchanges,
)

REFRESH = Path(__file__).resolve().parents[2] / "scripts" / "refresh-github-openapi.py"


def _exchange(route: str, status: int, response: Any, **more: Any) -> dict[str, Any]:
    method, _, template = route.partition(" ")
    return {
        "method": method,
        "path": template,
        "route": route,
        "user_agent": "hotfix-fsm",
        "request": None,
        "status": status,
        "response": response,
        "headers": {},
        **more,
    }


def test_every_rehearsal_route_has_its_operation_in_the_description() -> None:
    listed = re.findall(r'^    "([\w-]+/[\w-]+)",$', REFRESH.read_text(encoding="utf-8"), re.M)
    ids = {
        op["operationId"]
        for item in description()["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    assert ids == set(listed), "the description and the refresh script's list differ"
    for route in (*ROUTES, RATE_LIMIT_ROUTE):
        if f"{route.method} {route.template}" == GRAPHQL_ROUTE:
            continue  # not a REST operation: checked against GraphQL's response format
        tally = check_exchanges([_exchange(f"{route.method} {route.template}", 500, {})])
        assert tally.operations, (
            f"{route.method} {route.template} has no operation in {DESCRIPTION.name}: add its "
            "operationId to OPERATIONS in scripts/refresh-github-openapi.py and run it"
        )


def test_the_stored_description_is_the_version_its_note_names() -> None:
    folder = DESCRIPTION.parent
    version = description()["info"]["version"]
    assert f"version **{version}**" in (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert "MIT License" in (folder / "LICENSE").read_text(encoding="utf-8")


def test_a_thin_answer_fails_the_check_naming_operation_status_and_path() -> None:
    thin = {"number": 1, "state": "open", "head": {"ref": "x", "sha": "a"}}
    tally = check_exchanges([_exchange("GET /repos/{owner}/{repo}/pulls/{number}", 200, thin)])
    assert tally.violations > 40
    assert tally.missing_required == tally.violations
    report = tally.messages[0]
    assert report.startswith("GET /repos/{owner}/{repo}/pulls/{number} answered 200 (pulls/get)")
    assert "    $.head: missing required label, repo, user\n" in report
    assert "    $: missing required _links, additions, assignee, author_association," in report


def test_an_undocumented_status_and_a_wrong_type_fail_the_check() -> None:
    commits = "GET /repos/{owner}/{repo}/pulls/{number}/commits"
    teapot = check_exchanges([_exchange(commits, 418, {"message": "I'm a teapot"})])
    assert teapot.violations == 1
    assert "status 418 is not documented (documented: 200)" in teapot.messages[0]
    wrong = check_exchanges([_exchange(commits, 200, {"sha": "abc"})])
    assert "$: {'sha': 'abc'} is not of type 'array'" in wrong.messages[0]
    # 404 is an answer GitHub gives to any request: its body must be GitHub's basic error.
    missing = check_exchanges([_exchange(commits, 404, {"message": 404})])
    assert "$.message: 404 is not of type 'string'" in missing.messages[0]


def test_the_clients_request_bodies_are_checked_and_a_strangers_are_not() -> None:
    create = "POST /repos/{owner}/{repo}/pulls"
    bad_request = {"head": 7, "base": "main"}
    answer = {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}
    ours = check_exchanges([_exchange(create, 422, answer, request=bad_request)])
    assert "request $.head: 7 is not of type 'string'" in ours.messages[0]
    probe = check_exchanges(
        [_exchange(create, 422, answer, request=bad_request, user_agent="Python-urllib/3.11")]
    )
    assert probe.violations == 0


def _send(world: World, method: str, path: str, body: dict[str, Any] | None = None) -> int:
    request = urllib.request.Request(
        world.gh.base_url + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_real_answers_are_recorded_and_they_conform(world: World) -> None:
    folder = Path(os.environ[RECORD_ENV])
    world.gh.set_fault("GET /repos/{owner}/{repo}/pulls", error_rate=1.0, status=502)
    assert _send(world, "GET", "/repos/acme/shop/pulls") == 502
    assert _send(world, "POST", "/_sandbox/ci", {"conclusion": "success"}) == 204
    assert _send(world, "GET", "/repos/acme/shop") == 200
    assert _send(world, "GET", "/repos/acme/shop/pulls/99") == 404
    recorded = list(read_exchanges(folder))
    assert [(e["route"], e["status"]) for e in recorded] == [
        ("GET /repos/{owner}/{repo}", 200),
        ("GET /repos/{owner}/{repo}/pulls/{number}", 404),
    ]
    assert "authorization" not in json.dumps(recorded).lower()
    tally = check_exchanges(recorded)
    assert (tally.requests, tally.violations) == (2, 0), tally.messages
    assert tally.operations == {"repos/get", "pulls/get"}


def test_pull_request_list_items_are_in_githubs_list_shape(world: World) -> None:
    world.push_fix()
    client = GitHubClient(owner="acme", repo="shop", token=TOKEN, api_url=world.gh.base_url)
    try:
        created = client.create_pull("hotfix/INC-1", "production", "Fix", "body")
        listed = client.find_pull("hotfix/INC-1", base="production")
        single = client.get_pull(created["number"])
    finally:
        client.close()
    assert listed is not None
    # GitHub's pull-request-simple has no mergeability and no merge flag; the single PR has.
    for field in ("mergeable", "mergeable_state", "merged", "commits", "additions"):
        assert field not in listed
        assert field in single
    assert (single["commits"], single["changed_files"], single["additions"]) == (1, 1, 1)


BROKEN_SHAPE = """
from tests.github.conftest import World, make_world, world  # noqa: F401  (fixtures)
from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.sandbox.github_state import WorldBase


def test_a_rehearsal_answer_missing_a_field(world, monkeypatch):
    thin = lambda self: {"id": 1, "name": "shop", "full_name": "acme/shop"}
    monkeypatch.setattr(WorldBase, "repository", thin)
    client = GitHubClient(owner="acme", repo="shop", token="{token}", api_url=world.gh.base_url)
    try:
        assert client.repository()["full_name"] == "acme/shop"
    finally:
        client.close()
"""


def test_a_violation_fails_the_test_that_caused_it(tmp_path: Path) -> None:
    """End to end: the conftest's check turns a thin answer into a failed test."""
    root = Path(__file__).resolve().parents[2]
    case = tmp_path / "test_broken_shape.py"
    case.write_text(BROKEN_SHAPE.replace("{token}", TOKEN), encoding="utf-8")
    # A pytest of its own, in one process (`-n 0`), whether or not this one is an xdist worker.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (RECORD_ENV, "PYTEST_ADDOPTS") and not k.startswith("PYTEST_XDIST_")
    }
    args = ["-p", "tests.conftest", "-p", "no:cacheprovider", "-n", "0", "--rootdir", str(root)]
    args += ["-c", str(root / "pyproject.toml"), str(case)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 passed, 1 error" in out, out
    assert "GET /repos/acme/shop answered 200 (repos/get):" in out
    assert "    $: missing required archive_url, archived," in out


def test_graphql_answers_are_checked_against_the_graphql_response_format() -> None:
    good = {"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": 1}}}}
    assert check_exchanges([_exchange(GRAPHQL_ROUTE, 200, good)]).violations == 0
    refused = {"data": None, "errors": [{"message": "Pull request is in clean status"}]}
    assert check_exchanges([_exchange(GRAPHQL_ROUTE, 200, refused)]).violations == 0
    tally = check_exchanges([_exchange(GRAPHQL_ROUTE, 200, {"errors": [{"type": "X"}]})])
    assert tally.violations >= 2, tally.messages  # no `data`; an error without `message`
    assert "graphql" in tally.operations
