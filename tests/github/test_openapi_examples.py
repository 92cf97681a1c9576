"""The client's parsers fed GitHub's own documented answers.

A server on 127.0.0.1 answers every operation with the example GitHub's OpenAPI description
documents for it (tests/openapi/api.github.com.json, ``components/examples``): the client
reads them over real HTTP through ghapi and its transport, and the phases' readers (CI
checks, protection requirements, reviews, environment reviewers) turn them into the values
the example shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from hotfix_fsm.adapters.github import GitHubClient
from hotfix_fsm.phases import ci_phase, merge_requirements
from hotfix_fsm.phases.workflow_runs import waiting_for
from hotfix_fsm.sandbox.serving import BackgroundServer, TrackedHandler
from tests.openapi_check import description, follow, operations

PR_SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"


def _example(pointer: str) -> tuple[int, Any]:
    """The documented success status of the operation at ``pointer`` and its example."""
    op: dict[str, Any] = _get(pointer)
    for status in sorted(op["responses"]):
        if not status.startswith("2"):
            continue
        response = _get(follow(f"{pointer}/responses/{status}"))
        for media, entry in response.get("content", {}).items():
            if media.startswith("application/json") and entry.get("examples"):
                first = next(iter(entry["examples"].values()))
                return int(status), _get(follow(first["$ref"].removeprefix("#")))["value"]
        return int(status), None
    raise AssertionError(f"{op['operationId']} documents no success")


def _get(pointer: str) -> Any:
    node: Any = description()
    for token in pointer.strip("/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _routes() -> list[tuple[str, re.Pattern[str], str]]:
    out = []
    for op in operations().values():
        # A ref or branch may hold slashes (heads/hotfix/X); other parameters may not.
        regex = re.sub(
            r"\{(\w+)\}",
            lambda m: "(.+)" if m[1] in ("ref", "branch") else "([^/]+)",
            op.path,
        )
        out.append((op.method, re.compile(f"^{regex}$"), op.pointer))
    # Literal segments first: /actions/runs/{id} must not swallow /pending_deployments.
    return sorted(out, key=lambda r: -len(r[1].pattern.replace("(.+)", "")))


class ExampleGitHub:
    """Answers each documented operation with its documented example."""

    def __init__(self) -> None:
        self.routes = _routes()
        self.served: list[str] = []
        self.serving = BackgroundServer("127.0.0.1", 0)

    def answer(self, method: str, path: str) -> tuple[int, Any]:
        for wanted, pattern, pointer in self.routes:
            if wanted == method and pattern.match(path):
                self.served.append(_get(pointer)["operationId"])
                return _example(pointer)
        return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}

    def start(self) -> str:
        app = self

        class Handler(TrackedHandler):
            serving = self.serving

            def _serve(self) -> None:
                self.read_body()
                status, body = app.answer(self.command, self.path.split("?", 1)[0])
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                if raw:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        handler: type[BaseHTTPRequestHandler] = Handler
        return self.serving.start(handler)


@pytest.fixture
def examples() -> Iterator[tuple[ExampleGitHub, GitHubClient]]:
    server = ExampleGitHub()
    url = server.start()
    client = GitHubClient(
        owner="octocat", repo="Hello-World", token="example-token", api_url=url, max_retries=0
    )
    yield server, client
    client.close()
    server.serving.stop()


def test_pull_requests_parse_to_the_documented_values(
    examples: tuple[ExampleGitHub, GitHubClient],
) -> None:
    server, gh = examples
    pr = gh.get_pull(1347)
    assert (pr["number"], pr["state"], pr["head"]["ref"], pr["base"]["ref"]) == (
        1347,
        "open",
        "new-topic",
        "master",
    )
    assert (pr["head"]["sha"], pr["mergeable"], pr["merged"]) == (PR_SHA, True, False)
    # The list item is GitHub's pull-request-simple: found by head, and without mergeability.
    listed = gh.find_pull("new-topic", base="master")
    assert listed is not None
    assert (listed["number"], listed["head"]["label"]) == (1347, "octocat:new-topic")
    assert "mergeable" not in listed
    merged = gh.merge_pull(1347, sha=PR_SHA, method="squash")
    assert (merged["merged"], merged["sha"]) == (True, PR_SHA)
    assert gh.add_labels(1347, ["bug"]) == ["bug", "enhancement"]
    assert gh.ensure_label("bug", "f29513") is False  # the example answers that it exists
    assert {"pulls/get", "pulls/list", "pulls/merge", "issues/add-labels"} <= set(server.served)


def test_ci_checks_parse_to_the_documented_values(
    examples: tuple[ExampleGitHub, GitHubClient],
) -> None:
    _, gh = examples
    runs = gh.check_runs(PR_SHA)
    assert [(r["name"], r["status"], r["conclusion"]) for r in runs] == [
        ("mighty_readme", "completed", "neutral")
    ]
    assert gh.combined_status(PR_SHA)["state"] == "success"
    checks = ci_phase.collect(gh, PR_SHA)
    assert [(c.name, c.state) for c in checks] == [
        ("continuous-integration/jenkins", "passed"),
        ("mighty_readme", "passed"),
        ("security/brakeman", "passed"),
    ]
    assert ci_phase.evaluate(checks, ["security/brakeman"])[0] == "passed"


def test_protection_and_reviews_parse_to_the_documented_values(
    examples: tuple[ExampleGitHub, GitHubClient],
) -> None:
    _, gh = examples
    rules = gh.branch_protection("master")
    assert merge_requirements.required_reviews(rules) == 2
    assert merge_requirements.required_checks(rules) == ["continuous-integration/travis-ci"]
    reviews = merge_requirements.review_records(gh.pull_reviews(12))
    assert [(r["user"], r["state"], r["commit_id"]) for r in reviews] == [
        ("octocat", "APPROVED", "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091")
    ]
    assert merge_requirements.approvers(reviews) == ["octocat"]
    branch = gh.get_branch("main")
    assert branch is not None
    assert (branch["name"], branch["commit"]["sha"], branch["protected"]) == (
        "main",
        "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
        False,
    )
    ref = gh.get_ref("heads/featureA")
    assert ref is not None
    assert ref["object"]["sha"] == "aa218f56b14c9653891f9e74264a383fa43fefbd"
    repo = gh.repository()
    assert (repo["full_name"], repo["default_branch"]) == ("octocat/Hello-World", "master")


def test_actions_parse_to_the_documented_values(
    examples: tuple[ExampleGitHub, GitHubClient],
) -> None:
    _, gh = examples
    run = gh.get_run(30433642)
    assert (run["id"], run["status"], run["conclusion"], run["event"]) == (
        30433642,
        "queued",
        None,
        "push",
    )
    assert [r["id"] for r in gh.workflow_runs("deploy.yml")] == [30433642]
    pending = gh.pending_deployments(30433642)
    assert [p["environment"]["name"] for p in pending] == ["staging"]
    # A reviewer is a user (login) or a team (name): both are named.
    assert waiting_for(pending) == "environment staging (octocat, Justice League)"
    details = gh.dispatch_workflow("deploy.yml", "main", {"correlation_id": "c-1"})
    assert details is not None
    assert (details["workflow_run_id"], details["run_url"]) == (
        1,
        "https://api.github.com/repos/octo-org/octo-repo/actions/runs/1",
    )
