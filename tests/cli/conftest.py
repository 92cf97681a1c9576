"""Fixtures for driving the real ``hotfix`` command as a subprocess against a served sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotfix_fsm.log import reset_logging
from hotfix_fsm.sandbox.serve import RunningSandbox, serve_sandbox
from hotfix_fsm.sandbox.world import SandboxInfo, build_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


def assert_clean_error(result: Result) -> None:
    """An expected error: a message, no traceback."""
    assert "Traceback" not in result.err, result.err
    assert "Traceback" not in result.out, result.out


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Tests that call ``main()`` in-process configure logging; leave it as found."""
    yield
    reset_logging()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTFIX_FSM_FAILPOINT")}
    env["HOTFIX_FSM_DB"] = str(tmp_path / "cli-store.db")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("COLUMNS", None)
    env["COLUMNS"] = "200"  # rich tables do not wrap ids in the assertions
    return env


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path) -> Cli:
    """Run ``python -m hotfix_fsm.cli ARGS`` and capture its exit code and output."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        stdin: str | None = None,
    ) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "hotfix_fsm.cli", *args],
            cwd=cwd or tmp_path,
            env={**cli_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin if stdin is not None else "",
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture
def world(tmp_path: Path) -> SandboxInfo:
    """A built (not served) sandbox."""
    return build_sandbox(tmp_path / "sandbox")


@pytest.fixture
def served(world: SandboxInfo) -> Iterator[RunningSandbox]:
    """The sandbox served from threads of the test process."""
    with serve_sandbox(world.root) as running:
        yield running
