"""``build_sandbox`` and ``serve_sandbox``: a real origin, a real app, servers that restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hotfix_fsm.config import load_config
from hotfix_fsm.errors import ConfigError, UsageError
from hotfix_fsm.sandbox.serve import effects_of, serve_sandbox
from hotfix_fsm.sandbox.world import FIX_SUBJECT, SandboxInfo, build_sandbox, load_info


def git(cwd: Path | str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)


@pytest.fixture
def info(tmp_path: Path) -> SandboxInfo:
    return build_sandbox(tmp_path / "sb")


def test_origin_has_main_production_tag_and_a_fix_on_main(info: SandboxInfo) -> None:
    origin = Path(info.origin)
    heads = git(origin, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags")
    assert set(heads.splitlines()) >= {
        "refs/heads/main",
        "refs/heads/production",
        "refs/tags/v1.0.0",
    }
    assert git(origin, "rev-parse", "production") == info.production_sha
    assert git(origin, "rev-parse", "v1.0.0^{commit}") == info.production_sha
    assert git(origin, "rev-parse", "main") == info.fix_sha
    assert git(origin, "log", "-1", "--format=%s", info.fix_sha) == FIX_SUBJECT
    assert git(origin, "rev-parse", f"{info.fix_sha}^") == info.production_sha


def test_work_tree_is_clean_with_its_config_ignored(info: SandboxInfo) -> None:
    work = Path(info.work)
    assert git(work, "status", "--porcelain") == ""
    assert git(work, "branch", "--show-current") == "main"
    assert git(work, "branch", "--list", "production") == ""  # read from the remote only
    config = load_config(work)
    assert config.github.repository == "acme/shop"
    assert config.github.api_url == info.github_url
    assert config.verify.url == f"{info.production_url}/health"
    assert config.monitor.duration <= 5
    assert config.secret(config.github.token, config.github.token_env) == info.token
    assert info.token in config.secrets()
    assert load_info(info.root) == info


def test_app_tests_fail_on_production_pass_with_the_fix_and_build_and_audit_run(
    info: SandboxInfo,
) -> None:
    work = Path(info.work)
    config = load_config(work)
    tests, build, audit = (
        config.gates.tests.command,
        config.gates.build.command,
        config.gates.audit.command,
    )
    assert run(work, *tests).returncode == 0  # main carries the fix
    git(work, "checkout", "-q", info.production_sha)
    assert run(work, *tests).returncode == 1  # production has the bug
    git(work, "cherry-pick", info.fix_sha)
    assert run(work, *tests).returncode == 0
    git(work, "checkout", "-q", info.broken_fix_sha)
    assert run(work, *tests).returncode == 1  # the "bad fix" breaks a test
    git(work, "checkout", "-q", "main")
    assert run(work, *build).returncode == 0
    assert (work / "dist" / "app.tar").stat().st_size > 0
    assert run(work, *audit).returncode == 0
    (work / "requirements.lock").write_text("insecure-crypto==0.1\n")
    assert run(work, *audit).returncode == 1
    assert tests[0] == sys.executable


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        build_sandbox(tmp_path / "x")
    with pytest.raises(ConfigError, match="not a sandbox"):
        load_info(tmp_path / "x")


def test_serve_writes_urls_keeps_ports_across_restarts_and_wires_deploys(
    info: SandboxInfo,
) -> None:
    with serve_sandbox(info.root) as running:
        first = dict(running.urls)
        assert first["github"] == f"http://127.0.0.1:{info.github_port}"
        with urllib.request.urlopen(first["health"], timeout=60) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "healthy"
        assert body["version"] == info.production_sha
        # A successful deploy run sets the production version.
        req = urllib.request.Request(
            f"{first['github']}/repos/acme/shop/actions/workflows/deploy-production.yml/dispatches",
            data=json.dumps({"ref": "main", "inputs": {"sha": info.fix_sha}}).encode(),
            headers={"Authorization": f"token {info.token}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=60):
            pass
        deadline = time.monotonic() + 120
        while running.production.version != info.fix_sha:
            assert time.monotonic() < deadline, "the deploy never reached production"
            running.github.effects()  # reading the API advances runs, as a poller would
            time.sleep(0.05)
        online = effects_of(info.root)
        assert len(online["dispatches"]) == 1
        assert len(online["deploys"]) == 1
    saved = json.loads((Path(info.root) / "sandbox.json").read_text())
    assert saved["github_url"] == first["github"]
    offline = effects_of(info.root)  # from the state files, changing nothing
    assert len(offline["dispatches"]) == 1
    with serve_sandbox(info.root) as again:
        assert again.urls == first  # same ports, so hotfix.toml stays valid
        assert again.production.version == info.fix_sha  # state survived the restart


def test_serve_moves_to_a_free_port_when_the_old_one_is_taken(info: SandboxInfo) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", info.github_port))
        blocker.listen()
        with serve_sandbox(info.root) as running:
            port = running.info.github_port
            assert port != info.github_port
            config = load_config(info.work)
            assert config.github.api_url == f"http://127.0.0.1:{port}"
    assert load_info(info.root).github_port == port
