"""Logging: one JSON-lines file per hotfix plus a human console on stderr, both redacted.

``configure_logging`` sets structlog up so that every event dict

1. gets a level and an ISO timestamp,
2. passes ``hotfix_fsm.core.redact.redact_obj`` (tokens and webhook URLs never reach a log),
3. is appended as one JSON line to ``<state dir>/hotfixes/<id>/log.jsonl`` when it names a
   hotfix (``hotfix=<id>``; every level, so the file has what the console hid), and
4. is shown on stderr when its level reaches the console threshold: warnings by default,
   info with ``-v``, debug with ``-vv``.

The console writer can be swapped (``set_console_writer``) so a live progress display can
print log lines above its spinner instead of tearing it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import structlog

from hotfix_fsm.core.redact import redact_obj

_LEVELS = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "critical": 50,
    "exception": 40,
}
# Hotfix ids are validated issue ids plus a timestamp; anything else never becomes a path.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")

ConsoleWriter = Callable[[str], None]
_TRACEBACK_KEYS = ("traceback", "exception", "exc_info")


def _stderr_writer(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# One slot, swapped by a live progress display while it runs.
_console: list[ConsoleWriter] = [_stderr_writer]
_write_lock = threading.Lock()


def set_console_writer(writer: ConsoleWriter | None) -> ConsoleWriter:
    """Route console log lines through ``writer`` (None restores stderr); returns the old one."""
    old = _console[0]
    _console[0] = writer or _stderr_writer
    return old


def log_path(hotfix_id: str, root: Path | None = None) -> Path | None:
    """Where the JSON log of ``hotfix_id`` lives (None for an id unfit for a path)."""
    if not _SAFE_ID.match(hotfix_id) or ".." in hotfix_id:
        return None
    if root is None:
        from hotfix_fsm.phases.services import state_root

        root = state_root()
    return root / "hotfixes" / hotfix_id / "log.jsonl"


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor masking every secret anywhere in the event dict."""
    cleaned = redact_obj(dict(event_dict))
    event_dict.clear()
    event_dict.update(cleaned)
    return event_dict


class _Sink:
    """The last processor: write the JSON file and the console line, then drop the event."""

    def __init__(self, console_level: int, state_dir: Path | None, colors: bool) -> None:
        self.console_level = console_level
        self.state_dir = state_dir
        self.renderer = structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False)

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        level = _LEVELS.get(str(event_dict.get("level", method)).lower(), 20)
        hotfix = event_dict.get("hotfix")
        if isinstance(hotfix, str):
            self._write_file(hotfix, event_dict)
        if level >= self.console_level:
            # A traceback belongs in the file, never on the terminal: say where it is.
            shown = {k: v for k, v in event_dict.items() if k not in _TRACEBACK_KEYS}
            if any(k in event_dict for k in _TRACEBACK_KEYS):
                where = log_path(hotfix, self.state_dir) if isinstance(hotfix, str) else None
                shown["details"] = f"traceback in {where}" if where else "traceback not shown"
            try:
                line = str(self.renderer(logger, method, dict(shown)))
            except Exception:  # rendering must never break the caller
                line = json.dumps(shown, default=str)
            _console[0](line)
        raise structlog.DropEvent

    def _write_file(self, hotfix_id: str, event_dict: MutableMapping[str, Any]) -> None:
        path = log_path(hotfix_id, self.state_dir)
        if path is None:
            return
        line = json.dumps(dict(event_dict), default=str, sort_keys=True) + "\n"
        try:
            with _write_lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
        except OSError:
            pass  # a full disk must not stop the hotfix; the journal is the record


def console_level(verbosity: int) -> int:
    """The console threshold for ``-v`` counts: 0 warnings, 1 info, 2+ debug."""
    if verbosity >= 2:
        return logging.DEBUG
    if verbosity == 1:
        return logging.INFO
    return logging.WARNING


def configure_logging(
    verbosity: int = 0,
    *,
    state_dir: Path | None = None,
    colors: bool | None = None,
) -> None:
    """Configure structlog for the ``hotfix`` command (library users may call it too)."""
    if colors is None:
        colors = sys.stderr.isatty()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            _Sink(console_level(verbosity), state_dir, colors),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def read_log(hotfix_id: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The JSON log lines of a hotfix (a torn last line is skipped)."""
    path = log_path(hotfix_id, root)
    if path is None or not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


__all__ = [
    "configure_logging",
    "console_level",
    "log_path",
    "read_log",
    "redact_processor",
    "set_console_writer",
]
