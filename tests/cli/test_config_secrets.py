"""Configuration diagnostics describe a value that looks like a secret; they never echo it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.cli.check import token_of
from hotfix_fsm.config import Config, GitHubConfig, config_from_mapping
from hotfix_fsm.core.redact import looks_like_secret, register_secret
from hotfix_fsm.errors import ConfigError
from tests.cli.conftest import Cli

CLASSIC = "ghp_" + "Aq7Zr2Wm9Kx4Vd1Nt6Hb3Jc8Fy5Ps0Ga7Ue1"
FINE_GRAINED = "github_pat_" + "11ABCDEFG0" * 2 + "_" + "Xy7Zq2Wv9Lm4Np1Rs6Tu3Kb8" * 2
SLACK = "https://hooks.slack.com/services/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"
OPAQUE = "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm"  # no known shape, just random
HEX = "9f3b2c7e1a8d4f6b0c5e2a9d7f1b3c8e4a6d0f2b"
PASTED = "the value is not shown"
TOKEN_ENV_MESSAGE = (
    "github.token_env must name an environment variable (it looks like a token was pasted; "
    "the value is not shown)"
)


def _error(data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(data, "hotfix.toml")
    return caught.value


def _text(exc: ConfigError) -> str:
    return f"{exc}\n{exc.message}\n{exc.hint}"


@pytest.mark.parametrize("token", [CLASSIC, FINE_GRAINED, OPAQUE, HEX, f"  {CLASSIC}\n"])
def test_a_token_pasted_into_token_env_is_refused_without_being_shown(token: str) -> None:
    exc = _error({"github": {"token_env": token}})
    assert exc.message == TOKEN_ENV_MESSAGE
    assert "hotfix.toml" in (exc.hint or "")
    assert token.strip() not in _text(exc)


@pytest.mark.parametrize(
    ("key", "value"),
    [("slack_webhook_env", SLACK), ("webhook_url_env", OPAQUE)],
)
def test_every_env_key_refuses_a_pasted_secret(key: str, value: str) -> None:
    exc = _error({"alerts": {key: value}})
    assert exc.message.startswith(f"alerts.{key} must name an environment variable")
    assert PASTED in exc.message
    assert value not in _text(exc)


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "HOTFIX_FSM_GITHUB_TOKEN",
        "ORG_CI_GITHUB_APP_TOKEN_V2_READONLY_2025",
        "GH_TOKEN_PROD_EU_WEST_1_2024",
        "HotfixGithubToken2024Prod",
        "myOrgHotfixBotGithubPAT2",
        "hotfix_github_token_for_ci_v2",
    ],
)
def test_plausible_variable_names_are_accepted(name: str) -> None:
    assert not looks_like_secret(name)
    assert config_from_mapping({"github": {"token_env": name}}).github.token_env == name


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"github": {"max_retries": CLASSIC}}, "github.max_retries"),
        ({"verify": {"timeout": FINE_GRAINED}}, "verify.timeout"),
        ({"ci": {"poll_interval": OPAQUE}}, "ci.poll_interval"),
        ({"gates": {"parallel": SLACK}}, "gates.parallel"),
        ({"retry_limit": [1, CLASSIC]}, "retry_limit"),
        ({"merge": {"method": CLASSIC}}, "merge.method"),
        ({"monitor": {"metrics": [{"name": "m", "field": "x", "success": CLASSIC}]}}, "metrics"),
        ({"github": {CLASSIC: 1}}, "unknown configuration key"),
    ],
)
def test_a_secret_in_the_wrong_key_is_described_not_shown(data: dict[str, Any], key: str) -> None:
    exc = _error(data)
    assert key in exc.message
    assert "looks like a secret" in exc.message
    for secret in (CLASSIC, FINE_GRAINED, OPAQUE, SLACK):
        assert secret not in _text(exc)


def test_a_registered_secret_is_not_shown_either() -> None:
    secret = "s3cr3t-from-the-vault"  # no token shape, not long: only registration tells
    register_secret(secret)
    exc = _error({"deploy": {"timeout": secret}})
    assert "deploy.timeout in hotfix.toml must be float" in exc.message
    assert secret not in _text(exc)


def test_ordinary_wrong_values_are_still_shown() -> None:
    assert "('eight')" in _error({"github": {"max_retries": "eight"}}).message
    choice = _error({"merge": {"method": "fastest"}})
    assert "merge.method = 'fastest' in hotfix.toml is not one of" in choice.message


def test_token_of_never_names_a_token_as_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Config built in code skips load-time validation; the check must not echo it either.
    monkeypatch.setenv(OPAQUE, "the-real-token")
    token, source = token_of(Config(github=GitHubConfig(token_env=OPAQUE)))
    assert token == "the-real-token"
    assert OPAQUE not in source
    monkeypatch.setenv("TEAM_GH_TOKEN", "the-real-token")
    assert token_of(Config(github=GitHubConfig(token_env="TEAM_GH_TOKEN")))[1] == "$TEAM_GH_TOKEN"


def _repo(tmp_path: Path, toml: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hotfix.toml").write_text(toml, encoding="utf-8")
    return repo


@pytest.mark.parametrize("token", [CLASSIC, OPAQUE])
@pytest.mark.parametrize("as_json", [False, True])
def test_check_does_not_print_a_token_pasted_into_token_env(
    cli: Cli, tmp_path: Path, token: str, as_json: bool
) -> None:
    repo = _repo(tmp_path, f'[github]\ntoken_env = "{token}"\n')
    result = cli("check", "--repo", str(repo), *(["--json"] if as_json else []))
    assert result.code == 2, result
    assert token not in result.out + result.err
    if as_json:
        (finding,) = json.loads(result.out)["findings"]
        assert finding == {
            "check": "configuration",
            "status": "fail",
            "detail": TOKEN_ENV_MESSAGE,
            "hint": f"in {repo / 'hotfix.toml'}: put the secret in an environment variable "
            "and set github.token_env to that variable's name",
        }
    else:
        assert f"✗ configuration: {TOKEN_ENV_MESSAGE}" in result.out


def test_check_and_start_do_not_print_a_token_put_into_a_number_key(
    cli: Cli, tmp_path: Path
) -> None:
    repo = _repo(tmp_path, f'[github]\nmax_retries = "{OPAQUE}"\n')
    check = cli("check", "--repo", str(repo))
    assert check.code == 2, check
    assert "github.max_retries" in check.out
    assert "must be int, not str (<a value that looks like a secret; not shown>)" in check.out
    start = cli("start", "INC-1", "x", "--repo", str(repo), "--dry-run")
    assert start.code == 2, start
    assert "github.max_retries" in start.err
    for result in (check, start):
        assert OPAQUE not in result.out + result.err
