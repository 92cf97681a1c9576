"""The GitHub client over real HTTP: configuration, errors, conditional requests, rate
limits, retries and serialised writes, against the rehearsal server."""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2
import pytest

from hotfix_fsm.adapters.github import (
    AmbiguousWrite,
    GitHubAPIError,
    GitHubClient,
    GitHubUnavailable,
    parse_repository,
    resolve_repository,
    resolve_token,
)
from hotfix_fsm.adapters.github_errors import translate
from hotfix_fsm.adapters.github_retry import PolicyTransport, RetryPolicy
from hotfix_fsm.config import Config
from hotfix_fsm.core.redact import redact
from hotfix_fsm.errors import ConfigError, PermanentError
from tests.github.conftest import TOKEN, World, base_config, git


class Sleeps:
    """An injected sleep that records what the policy asked for and barely waits."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        time.sleep(min(seconds, 0.005))


@pytest.fixture
def client(world: World) -> Iterator[GitHubClient]:
    made = GitHubClient(
        owner="acme",
        repo="shop",
        token=TOKEN,
        api_url=world.gh.base_url,
        backoff_base=0.001,
        max_backoff=0.01,
        secondary_base=0.01,
        sleep=Sleeps(),
    )
    yield made
    made.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/shop.git", ("acme", "shop")),
        ("https://x-token:secret@ghe.example.com/acme/shop", ("acme", "shop")),
        ("git@github.com:acme/shop.git", ("acme", "shop")),
        ("ssh://git@ghe.example.com:2222/acme/shop.git", ("acme", "shop")),
        ("git@ghe.example.com:team/sub/shop.git", ("sub", "shop")),
        ("/srv/git/shop.git", None),
        ("./relative/path", None),
        ("file:///srv/git/acme/shop.git", None),
        ("https://github.com/acme", None),
        ("", None),
    ],
)
def test_owner_and_repo_come_from_the_remote_url(url: str, expected: Any) -> None:
    assert parse_repository(url) == expected


def test_repository_from_remote_or_configuration(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    git(tmp_path, "remote", "add", "origin", "git@github.com:acme/shop.git")
    assert resolve_repository(Config(), tmp_path) == ("acme", "shop")
    git(tmp_path, "remote", "set-url", "origin", str(tmp_path / "bare.git"))
    with pytest.raises(ConfigError, match="cannot tell the GitHub repository") as err:
        resolve_repository(Config(), tmp_path)
    assert err.value.hint is not None
    assert "github.repository" in err.value.hint
    config = Config()
    config.github.repository = "other/repo"
    assert resolve_repository(config, tmp_path) == ("other", "repo")
    config.github.repository = "not a repo"
    with pytest.raises(ConfigError, match="is not owner/name"):
        resolve_repository(config, tmp_path)


def test_token_sources_in_order_and_gh_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # no gh on PATH: ignored
    config = Config()
    with pytest.raises(PermanentError, match="no GitHub token found") as err:
        resolve_token(config)
    assert err.value.hint is not None
    assert "gh auth login" in err.value.hint

    gh = bin_dir / "gh"
    gh.write_text(
        '#!/bin/sh\n[ "$3" = "--hostname" ] && [ "$4" = "ghe.example.com" ] '
        "&& echo from-gh-cli-token\n"
    )
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    assert resolve_token(config, "https://ghe.example.com/api/v3") == "from-gh-cli-token"
    assert redact("token from-gh-cli-token") == "token ***"

    monkeypatch.setenv("GH_TOKEN", "from-gh-token-env")
    assert resolve_token(config) == "from-gh-token-env"
    monkeypatch.setenv("GITHUB_TOKEN", "from-github-token-env")
    assert resolve_token(config) == "from-github-token-env"
    config.github.token = "from-config-literal"
    assert resolve_token(config) == "from-config-literal"
    monkeypatch.setenv("TEAM_GH_TOKEN", "from-named-env")
    config.github.token_env = "TEAM_GH_TOKEN"
    assert resolve_token(config) == "from-named-env"


def test_from_config_uses_the_configured_server(world: World) -> None:
    config = base_config(world.gh.base_url)
    client = GitHubClient.from_config(config, world.work)
    try:
        assert client.full_name == "acme/shop"
        assert client.repository()["default_branch"] == "main"
        assert client.request_count == 1
    finally:
        client.close()


def test_bad_token_and_unknown_repository_are_permanent_and_clear(world: World) -> None:
    bad = GitHubClient(
        owner="acme", repo="shop", token="wrong-token-1234", api_url=world.gh.base_url
    )
    missing = GitHubClient(owner="acme", repo="nope", token=TOKEN, api_url=world.gh.base_url)
    good = GitHubClient(owner="acme", repo="shop", token=TOKEN, api_url=world.gh.base_url)
    try:
        with pytest.raises(GitHubAPIError) as err:
            bad.find_pull("hotfix/x")
        assert err.value.status == 401
        assert "GitHub rejected the token (401 Bad credentials)" in str(err.value)
        assert "wrong-token-1234" not in str(err.value)
        with pytest.raises(GitHubAPIError, match="repository acme/nope does not exist"):
            missing.repository()
        with pytest.raises(GitHubAPIError, match=r"workflow nope\.yml does not exist"):
            good.dispatch_workflow("nope.yml", "main", {})
    finally:
        for made in (bad, missing, good):
            made.close()


def test_a_403_names_the_missing_scope() -> None:
    response = httpx2.Response(
        403, headers={"x-oauth-scopes": "repo", "x-accepted-oauth-scopes": "workflow"}
    )
    exc = SimpleNamespace(
        status_code=403,
        message="Resource not accessible",
        raw={"message": "Resource not accessible by integration"},
        response=response,
        error_type="",
    )
    err = translate(
        exc,
        "dispatching workflow deploy.yml on main",
        full_name="acme/shop",
        api_url="https://api.github.com",
        write=True,
        not_found=None,
    )
    assert isinstance(err, GitHubAPIError)
    assert "needs the `workflow` scope" in str(err)
    assert "the token has scopes [repo]" in str(err)


def test_polling_is_conditional(world: World, client: GitHubClient) -> None:
    sha = world.push_fix()
    # Poll until two answers in a row are the same (CI may move between any two polls on
    # a busy machine): the second of them was a 304, answered from the cache.
    deadline = time.monotonic() + 60
    previous = client.check_runs(sha)
    while True:
        current = client.check_runs(sha)
        if current == previous:
            break
        assert time.monotonic() < deadline, "CI never held still between two polls"
        previous = current
    assert client.not_modified_count >= 1
    counts = world.gh.request_counts()["GET /repos/{owner}/{repo}/commits/{ref}/check-runs"]
    assert counts["not_modified"] == client.not_modified_count
    # CI moves on: a changed answer is fresh, never the cached one.
    while client.check_runs(sha)[0]["status"] != "completed":
        assert time.monotonic() < deadline, "CI never completed"
        time.sleep(0.02)
    assert client.stats.requests == client.request_count


def test_primary_rate_limit_waits_until_the_reset(world: World, client: GitHubClient) -> None:
    world.gh.set_fault("GET *", primary_rate_limit_rate=0.5, seed=3)
    for _ in range(8):
        assert client.repository()["full_name"] == "acme/shop"
    waits = [s for why, s in client.waits if why.startswith("primary")]
    assert waits
    assert all(0.9 <= s <= 3.0 for s in waits)  # until x-ratelimit-reset (+1 s of skew)


def test_secondary_rate_limit_honours_retry_after(world: World, client: GitHubClient) -> None:
    world.gh.set_fault("GET *", secondary_rate_limit_rate=0.5, seed=5)
    for _ in range(8):
        client.repository()
    waits = [s for why, s in client.waits if why.startswith("secondary")]
    assert waits
    assert set(waits) == {1.0}


def test_secondary_rate_limit_without_retry_after_backs_off_from_a_minute() -> None:
    policy = RetryPolicy()
    assert [policy.secondary_wait(None, n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]
    assert policy.secondary_wait("7", 3) == 7.0
    assert RetryPolicy(secondary_base=0.5).secondary_wait(None, 2) == 1.0


def test_server_errors_and_drops_are_retried_for_reads(world: World, client: GitHubClient) -> None:
    world.gh.set_fault("GET *", error_rate=0.4, drop_rate=0.2, seed=11)
    for _ in range(10):
        assert client.repository()["name"] == "shop"
    assert client.stats.retries > 0
    assert client.request_count > 10


def test_retries_are_bounded(world: World) -> None:
    world.gh.set_fault("GET *", error_rate=1.0, status=503)
    client = GitHubClient(
        owner="acme",
        repo="shop",
        token=TOKEN,
        api_url=world.gh.base_url,
        max_retries=2,
        backoff_base=0.001,
        sleep=Sleeps(),
    )
    try:
        with pytest.raises(GitHubUnavailable, match=r"GitHub kept failing \(HTTP 503\)"):
            client.repository()
        assert client.request_count == 3
    finally:
        client.close()


def test_a_dispatch_is_never_resent_blindly(world: World, client: GitHubClient) -> None:
    world.push_fix()
    world.gh.set_fault("POST */dispatches", error_rate=1.0, status=502)
    with pytest.raises(AmbiguousWrite, match="may or may not have taken effect"):
        client.dispatch_workflow("deploy-production.yml", world.branch, {"correlation_id": "c1"})
    counts = world.gh.request_counts()
    assert (
        counts["POST /repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches"]["count"] == 1
    )


def test_writes_whose_duplicates_are_detectable_are_retried(
    world: World, client: GitHubClient
) -> None:
    world.push_fix()
    world.gh.set_fault("POST /repos/{owner}/{repo}/pulls", error_rate=0.6, status=502, seed=2)
    pr, created = client.open_pull(world.branch, "production", "t", "b")
    assert created
    assert len(world.gh.effects()["pull_requests"]) == 1
    again, created_again = client.open_pull(world.branch, "production", "t", "b")
    assert (again["number"], created_again) == (pr["number"], False)


class InFlight(httpx2.BaseTransport):
    """Real HTTP underneath; counts how many requests of each kind overlap."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.lock = threading.Lock()
        self.now = {"write": 0, "read": 0}
        self.peak = {"write": 0, "read": 0}

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        kind = "read" if request.method == "GET" else "write"
        with self.lock:
            self.now[kind] += 1
            self.peak[kind] = max(self.peak[kind], self.now[kind])
        try:
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.now[kind] -= 1

    def close(self) -> None:
        self.inner.close()


def test_writes_are_sent_one_at_a_time(world: World) -> None:
    world.gh.set_fault("*", latency=0.05)
    counter = InFlight()
    transport = PolicyTransport(RetryPolicy(), sleep=Sleeps(), inner=counter)
    headers = {"Authorization": f"token {TOKEN}"}
    url = f"{world.gh.base_url}/repos/acme/shop"
    with httpx2.Client(transport=transport, headers=headers) as http:

        def write(i: int) -> None:
            http.post(f"{url}/labels", json={"name": f"label-{i}", "color": "ededed"})

        def read(_i: int) -> None:
            http.get(url)

        threads = [threading.Thread(target=fn, args=(i,)) for i in range(4) for fn in (write, read)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert counter.peak["write"] == 1
    assert counter.peak["read"] > 1
    assert len(world.gh.effects()["labels_created"]) == 4
