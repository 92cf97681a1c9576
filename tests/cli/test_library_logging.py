"""A library user who sets nothing up sees nothing; whatever the package logs is redacted."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotfix_fsm.core.redact import register_secret
from hotfix_fsm.log import (
    configure_logging,
    get_logger,
    read_log,
    reset_logging,
    set_console_writer,
)
from tests.cli.conftest import REPO_ROOT

SECRET = "Lib-s3cret-Qz7Xw2Pk9Vb4"
TOKEN = "ghp_" + "Lq3Zr8Wm2Kx7Vd5Nt1Hb6Jc4Fy9Ps0Ga2Ue"

# Package loggers of several modules: a plain line, a traceback (exc_info and exception()),
# a non-string value whose text holds the secret, and every level.
_LIBRARY_USE = f"""
import structlog

import hotfix_fsm
from hotfix_fsm import HotfixEngine  # the engine, runner and store: every logging module
from hotfix_fsm.adapters.github_retry import log as github_log
from hotfix_fsm.adapters.alerts import log as alerts_log
from hotfix_fsm.durable.step import log as gating_log
from hotfix_fsm.core.redact import register_secret
from hotfix_fsm.durable.runner import log as runner_log

SECRET = {SECRET!r}
register_secret(SECRET)
for log in (runner_log, github_log, alerts_log, gating_log):
    log.debug("debugging", token=SECRET)
    log.info("progress", url="https://x.test/?token=" + SECRET, hotfix="H-1")
    log.warning("careful", header="token {TOKEN}")
    log.error("failed", error=RuntimeError("refused " + SECRET))
    try:
        raise RuntimeError("request with " + SECRET + " failed")
    except RuntimeError:
        log.warning("subscriber_failed", hotfix="H-1", exc_info=True)
        log.exception("phase_crashed")
assert not structlog.is_configured(), "importing hotfix_fsm configured structlog"
"""


def _python(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO_ROOT),
        "HOTFIX_FSM_STATE_DIR": str(tmp_path / "state"),
        "HOME": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_library_user_who_sets_nothing_up_sees_nothing(tmp_path: Path) -> None:
    proc = _python(_LIBRARY_USE, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == ""
    assert not (tmp_path / "state").exists()  # and no log file was written either


def test_an_application_that_configures_logging_gets_masked_lines(tmp_path: Path) -> None:
    script = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, level=logging.DEBUG,"
        " format='%(levelname)s %(name)s %(message)s')\n" + _LIBRARY_USE
    )
    proc = _python(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    text = proc.stderr
    assert "DEBUG hotfix_fsm.durable.runner debugging token='***'" in text
    assert "INFO hotfix_fsm.github progress url='https://x.test/?token=***'" in text
    assert "WARNING hotfix_fsm.alerts careful header='token ***'" in text
    assert "error='refused ***'" in text
    assert text.count("Traceback (most recent call last)") == 8  # tracebacks are kept...
    assert "RuntimeError: request with *** failed" in text  # ...masked
    assert SECRET not in text
    assert TOKEN not in text


@pytest.fixture
def root_records() -> Iterator[list[logging.LogRecord]]:
    """What an application's own root handler receives (at DEBUG), restored afterwards."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler, level = Keep(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def test_captured_records_carry_masked_text_and_fields(
    root_records: list[logging.LogRecord],
) -> None:
    register_secret(SECRET)
    log = get_logger("hotfix_fsm.durable.runner")
    log.info("phase_retry", hotfix="H-3", error=f"401 with {SECRET}", attempt=2)
    try:
        raise ValueError(f"kaput {TOKEN}")
    except ValueError:
        log.error("phase_crashed", hotfix="H-3", exc_info=True)
    retry, crash = (r for r in root_records if r.name == "hotfix_fsm.durable.runner")
    assert retry.levelno == logging.INFO
    assert retry.getMessage() == "phase_retry hotfix='H-3' error='401 with ***' attempt=2"
    assert retry.event_dict["error"] == "401 with ***"  # type: ignore[attr-defined]
    assert retry.event_dict["timestamp"].endswith("Z")  # type: ignore[attr-defined]
    assert crash.levelno == logging.ERROR
    assert crash.exc_info is None  # a stdlib formatter never prints the raw traceback
    text = logging.Formatter().format(crash)
    assert "ValueError: kaput ***" in text
    assert SECRET not in text + retry.getMessage()
    assert TOKEN not in text


def test_the_cli_set_up_takes_the_package_loggers_and_can_be_undone(
    tmp_path: Path, root_records: list[logging.LogRecord]
) -> None:
    lines: list[str] = []
    old = set_console_writer(lines.append)
    try:
        register_secret(SECRET)
        configure_logging(0, state_dir=tmp_path / "other", colors=False)
        configure_logging(0, state_dir=tmp_path, colors=False)  # replaces, never doubles
        log = get_logger("hotfix_fsm.durable.runner")
        log.debug("detail", hotfix="H-4")
        log.info("progress", hotfix="H-4", token=SECRET)
        try:
            raise RuntimeError(f"boom {SECRET}")
        except RuntimeError:
            log.warning("subscriber_failed", hotfix="H-4", exc_info=True)
        rows = read_log("H-4", tmp_path)
        assert [r["event"] for r in rows] == ["detail", "progress", "subscriber_failed"]
        assert [r["level"] for r in rows] == ["debug", "info", "warning"]
        assert rows[1]["token"] == "***"
        assert "RuntimeError: boom ***" in rows[2]["exception"]
        assert all(r["timestamp"].endswith("Z") for r in rows)
        assert not (tmp_path / "other").exists()
        assert len(lines) == 1  # the console shows warnings, without the traceback
        assert "subscriber_failed" in lines[0]
        assert "Traceback" not in lines[0]
        assert "traceback in" in lines[0]
        reset_logging()
        root_records.clear()
        log.warning("after_reset", hotfix="H-4")
        assert [r["event"] for r in read_log("H-4", tmp_path)][-1] == "subscriber_failed"
        assert len(lines) == 1
        assert [r.getMessage() for r in root_records] == ["after_reset hotfix='H-4'"]
    finally:
        set_console_writer(old)
        reset_logging()
    written = (tmp_path / "hotfixes" / "H-4" / "log.jsonl").read_text(encoding="utf-8")
    assert SECRET not in "\n".join(lines) + written
