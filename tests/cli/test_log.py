"""The logging setup: per-hotfix JSON lines, a quiet console, secrets and tracebacks kept out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from hotfix_fsm.core.redact import register_secret
from hotfix_fsm.log import configure_logging, log_path, read_log, set_console_writer


@pytest.fixture
def console() -> Iterator[list[str]]:
    lines: list[str] = []
    old = set_console_writer(lines.append)
    yield lines
    set_console_writer(old)
    structlog.reset_defaults()


def test_json_file_per_hotfix_gets_every_level_console_only_warnings(
    console: list[str], tmp_path: Path
) -> None:
    configure_logging(0, state_dir=tmp_path, colors=False)
    register_secret("tok-abcdef-123456")
    log = structlog.get_logger("t")
    log.debug("detail", hotfix="H-1", n=1)
    log.info("progress", hotfix="H-1", url="https://x/?token=tok-abcdef-123456")
    log.warning("careful", hotfix="H-1")
    log.info("no hotfix named")
    rows = read_log("H-1", tmp_path)
    assert [r["event"] for r in rows] == ["detail", "progress", "careful"]
    assert rows[1]["url"] == "https://x/?token=***"
    assert all(r["timestamp"].endswith("Z") for r in rows)
    assert len(console) == 1
    assert "careful" in console[0]


def test_verbose_shows_info_and_tracebacks_stay_in_the_file(
    console: list[str], tmp_path: Path
) -> None:
    configure_logging(1, state_dir=tmp_path, colors=False)
    log = structlog.get_logger("t")
    log.info("step", hotfix="H-2")
    try:
        raise ValueError("kaput")
    except ValueError:
        log.error("phase_crashed", hotfix="H-2", exc_info=True)
    assert any("step" in line for line in console)
    crash = next(line for line in console if "phase_crashed" in line)
    assert "Traceback" not in crash
    assert str(log_path("H-2", tmp_path)) in crash
    rows = read_log("H-2", tmp_path)
    assert "ValueError: kaput" in rows[-1]["exception"]


@pytest.mark.parametrize("hostile", ["../x", "..", "a/b", "-rf", ""])
def test_ids_unfit_for_a_path_are_never_written(hostile: str, tmp_path: Path) -> None:
    assert log_path(hostile, tmp_path) is None
