"""Every example runs against a rehearsal sandbox; the sample files load and fit the phases."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotfix_fsm.config import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(name: str, tmp_path: Path) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_api_drive_resumes_after_a_crash_and_approves(tmp_path: Path) -> None:
    out = run_example("api_drive.py", tmp_path)
    assert "crashed right after the push" in out
    assert "push adopted after a probe: True" in out
    assert "paused at gate 'deploy'" in out
    assert "approved " in out
    assert "finished: done" in out
    assert "hotfix branch created on the remote 1 time(s)" in out


def test_custom_deployer_replaces_the_deploy_workflow(tmp_path: Path) -> None:
    out = run_example("custom_deployer.py", tmp_path)
    assert ": done" in out
    assert "deploy workflow dispatches: 0" in out


def test_event_subscriber_posts_every_journal_row(tmp_path: Path) -> None:
    out = run_example("event_subscriber.py", tmp_path)
    assert ": done; the receiver got" in out
    assert "→ state done" in out


@pytest.mark.parametrize("name", ["hotfix.npm.toml", "hotfix.python.toml"])
def test_sample_configurations_load(name: str) -> None:
    config = load_config(None, EXAMPLES / name)
    assert config.gates.tests.command
    assert config.gates.build.artifact == "dist"
    assert config.deploy.workflow == "deploy-production.yml"
    assert config.rollback.workflow == "rollback.yml"
    assert config.verify.url.startswith("https://")
    assert config.monitor.duration >= 300  # the checklist's 5-15 minutes
    assert config.github.token == ""  # tokens come from the environment
    for metric in config.monitor.metrics:
        assert metric.source != "prometheus" or config.monitor.prometheus_url


def _inputs(text: str) -> set[str]:
    block = text.split("inputs:", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^      ([a-z_]+):$", block, flags=re.MULTILINE))


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("deploy-production.yml", {"correlation_id", "hotfix_id", "sha"}),
        ("rollback.yml", {"correlation_id", "hotfix_id", "target_sha"}),
    ],
)
def test_sample_workflows_accept_what_the_phases_send(name: str, inputs: set[str]) -> None:
    text = (EXAMPLES / "workflows" / name).read_text()
    assert "workflow_dispatch:" in text
    assert _inputs(text) == inputs
    run_name = next(line for line in text.splitlines() if line.startswith("run-name:"))
    assert "${{ inputs.correlation_id }}" in run_name  # how the phases find the run
    for line in text.splitlines():
        if line.strip().startswith("run:"):
            assert "${{" not in line, f"inputs must reach the shell through env: {line}"
