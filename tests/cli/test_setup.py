"""``hotfix init``, ``hotfix check``, ``hotfix start --dry-run`` and ``hotfix sandbox``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hotfix_fsm.config import load_config
from hotfix_fsm.sandbox.serve import RunningSandbox
from hotfix_fsm.sandbox.world import SandboxInfo
from tests.cli.conftest import Cli, assert_clean_error


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_init_detects_npm_gates_and_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "web"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "remote", "add", "origin", "git@github.com:acme/web.git")
    (repo / "package.json").write_text(
        json.dumps({"scripts": {"test:critical": "jest critical", "build": "vite build"}})
    )
    first = cli("init", "--repo", str(repo))
    assert first.code == 0, first
    config = load_config(repo)
    assert config.gates.tests.command == ["npm", "run", "test:critical"]
    assert config.gates.build.command == ["npm", "run", "build"]
    assert config.gates.audit.command == ["npm", "audit", "--audit-level=high"]
    assert config.github.repository == "acme/web"
    text = (repo / "hotfix.toml").read_text()
    assert text.count("#") > 20  # commented
    again = cli("init", "--repo", str(repo))
    assert again.code == 2
    assert "already exists" in again.err
    assert "--force" in again.err
    assert_clean_error(again)
    assert cli("init", "--repo", str(repo), "--force").code == 0


def test_init_detects_python_gates(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    assert cli("init", "--repo", str(tmp_path)).code == 0
    config = load_config(tmp_path)  # hotfix.toml wins over pyproject.toml
    assert config.gates.tests.command == ["python", "-m", "pytest", "-q"]
    assert config.source.endswith("hotfix.toml")


def test_check_passes_against_a_served_sandbox(cli: Cli, served: RunningSandbox) -> None:
    result = cli("check", "--json", cwd=Path(served.info.work))
    assert result.code == 0, result.out
    doc = json.loads(result.out)
    assert doc["ok"] is True
    checks = {f["check"]: f["status"] for f in doc["findings"]}
    for name in (
        "configuration",
        "git remote",
        "production branch",
        "github token",
        "token scopes",
        "deploy workflow",
        "rollback workflow",
        "health url",
    ):
        assert checks[name] == "ok", (name, doc)
    assert served.info.token not in result.out
    assert served.effects()["dispatches"] == []  # check changed nothing


def test_check_reports_what_to_do_when_services_are_down(cli: Cli, world: SandboxInfo) -> None:
    result = cli("check", "--repo", world.work)
    assert result.code == 1
    assert "✗ github api" in result.out
    assert "✗ health url" in result.out
    assert "what to do:" in result.out
    assert "✓ production branch" in result.out
    assert_clean_error(result)


def test_dry_run_prints_the_plan_and_changes_nothing(
    cli: Cli, world: SandboxInfo, cli_env: dict[str, str]
) -> None:
    work = Path(world.work)
    before = (_git(work, "ls-remote", "origin"), _git(work, "branch", "-a"))
    result = cli(
        "start",
        "INC-9",
        "Fix token expiry check",
        "--cherry-pick",
        world.fix_sha,
        "--dry-run",
        cwd=work,
    )
    assert result.code == 0, result
    out = result.out
    assert "dry run" in out
    assert "create hotfix/INC-9-YYYYmmdd-HHMMSS from origin/production" in out
    assert f"cherry-pick {world.fix_sha}" in out
    assert "deploy-production.yml" in out
    assert "rollback.yml" in out
    assert f"{world.production_url}/health" in out or "/health" in out
    assert (
        f"rollback target: {world.production_sha[:12]} (current production head, tag v1.0.0)" in out
    )
    assert (_git(work, "ls-remote", "origin"), _git(work, "branch", "-a")) == before
    assert not Path(cli_env["HOTFIX_FSM_DB"]).exists()  # no store, so certainly no row
    hostile = cli("start", "$(id)", "x", "--dry-run", cwd=work)
    assert hostile.code == 2
    assert_clean_error(hostile)


def test_sandbox_init_and_effects_commands(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "drill"
    made = cli("sandbox", "init", str(target))
    assert made.code == 0, made
    assert "hotfix sandbox serve" in made.out
    assert (target / "work" / "hotfix.toml").is_file()
    assert cli("sandbox", "init", str(target)).code == 2  # not empty
    effects = json.loads(cli("sandbox", "effects", str(target), "--json").out)
    for key in (
        "pull_requests",
        "labels_added",
        "dispatches",
        "merges",
        "refs",
        "deploys",
        "force_updates",
    ):
        assert effects[key] == [], key
    assert cli("sandbox", "effects", str(tmp_path)).code == 2  # not a sandbox


def test_sandbox_serve_prints_urls_serves_and_stops_on_sigterm(
    world: SandboxInfo, cli_env: dict[str, str]
) -> None:
    import signal
    import sys
    import urllib.request

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hotfix_fsm.cli",
            "sandbox",
            "serve",
            world.root,
            "--mode",
            "failing",
        ],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        text = "".join(lines)
        assert f"GitHub API:  {world.github_url}" in text
        health = f"{world.production_url}/health"
        with pytest.raises(urllib.error.HTTPError) as failing:
            urllib.request.urlopen(health, timeout=60)
        failing.value.close()
        assert failing.value.code == 503  # --mode failing took effect
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
