"""Logging: one JSON-lines file per hotfix plus a human console on stderr, both redacted.

The package's modules log through ``get_logger(name)``: a structlog logger of its own (the
application's structlog configuration is never read nor changed) whose first processor
masks every secret, handing a rendered message to the standard library logger ``name``
(under ``hotfix_fsm``). That logger has a ``NullHandler``, so a library user who sets
nothing up sees nothing; an application that configures ``logging`` gets redacted lines,
with the event's fields in ``record.event_dict``.

``configure_logging`` (the ``hotfix`` command) attaches to that path, and also sets
structlog up for code that logs with ``structlog.get_logger``, so that every event dict

1. gets a level and an ISO timestamp,
2. passes ``hotfix_fsm.core.redact.redact_obj`` (tokens and webhook URLs never reach a log),
3. is appended as one JSON line to ``<state dir>/hotfixes/<id>/log.jsonl`` when it names a
   hotfix (``hotfix=<id>``; every level, so the file has what the console hid), and
4. is shown on stderr when its level reaches the console threshold: warnings by default,
   info with ``-v``, debug with ``-vv``.

The console writer can be swapped (``set_console_writer``) so a live progress display can
print log lines above its spinner instead of tearing it.

structlog (and, through its console renderer, rich) is imported on the first line actually
logged, not when a module asks for its logger: ``hotfix status`` and ``hotfix --version`` never
log, and should not pay ~40 ms for it. ``configure_logging(..., structlog_global=False)`` (the
``hotfix`` command) leaves structlog's global configuration alone, since nothing in the command
logs through ``structlog.get_logger``.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from hotfix_fsm.core.redact import redact, redact_obj

if TYPE_CHECKING:
    import structlog

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
ROOT = "hotfix_fsm"
# The standard library's convention for a library: nothing is printed unless the application
# configures logging. Every package logger comes from ``get_logger`` here, so this runs first.
logging.getLogger(ROOT).addHandler(logging.NullHandler())


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
        from hotfix_fsm.paths import state_root

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


def _redact_event(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """The first processor: an exception becomes its traceback text, then all is masked.

    Values other than plain data become their masked text (a repr could hold a secret). An
    event its stdlib logger would discard is dropped here, before any work.
    """
    import structlog

    if isinstance(logger, logging.Logger) and not logger.isEnabledFor(_LEVELS.get(method, 20)):
        raise structlog.DropEvent
    event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    cleaned = {k: _plain(v) for k, v in redact_obj(dict(event_dict)).items()}
    event_dict.clear()
    event_dict.update(cleaned)
    return event_dict


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return redact(str(value))


def render_message(event_dict: MutableMapping[str, Any]) -> str:
    """``event key=value ...`` with a traceback on the following lines (for stdlib logging)."""
    skip = {"event", "level", "timestamp", *_TRACEBACK_KEYS}
    parts = [str(event_dict.get("event", ""))]
    parts += [f"{k}={v!r}" for k, v in event_dict.items() if k not in skip]
    text = " ".join(parts)
    for key in _TRACEBACK_KEYS:
        if isinstance(event_dict.get(key), str):
            text += "\n" + event_dict[key].rstrip()
    return text


def _to_stdlib(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """The last processor: the stdlib logger gets the message and the (masked) fields.

    No ``exc_info`` is passed on: stdlib handlers would print the unmasked traceback.
    """
    return (render_message(event_dict),), {"extra": {"event_dict": dict(event_dict)}}


_made: dict[str, Any] = {}


def _real_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The structlog logger behind ``get_logger(name)``, built (and structlog imported) once."""
    made = _made.get("class")
    if made is None:
        import structlog

        class _BoundLogger(structlog.stdlib.BoundLogger):
            def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
                """An error with the traceback: stdlib ``Logger.exception`` would add the raw
                one."""
                kw.setdefault("exc_info", True)
                return self.error(event, *args, **kw)

        # Nothing between the first and the last processor adds text of the caller's.
        _made["processors"] = [
            _redact_event,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _to_stdlib,
        ]
        made = _made["class"] = _BoundLogger
    return cast(
        "structlog.stdlib.BoundLogger", made(logging.getLogger(name), _made["processors"], {})
    )


class _LazyLogger:
    """A module's logger until its first use, when the structlog logger is built."""

    __slots__ = ("_name", "_real")

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: structlog.stdlib.BoundLogger | None = None

    def __getattr__(self, attr: str) -> Any:
        real = self._real
        if real is None:
            real = self._real = _real_logger(self._name)
        return getattr(real, attr)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of a hotfix_fsm module (``name`` under ``hotfix_fsm``): always redacted.

    Its lines reach stdlib ``logging.getLogger(name)``; nothing is printed unless the
    application configures logging, or calls ``configure_logging``. structlog is imported
    when the first line is logged.
    """
    return cast("structlog.stdlib.BoundLogger", _LazyLogger(name))


class _Sink:
    """Write the JSON file and the console line (as structlog's last processor: then drop)."""

    def __init__(self, console_level: int, state_dir: Path | None, colors: bool) -> None:
        self.console_level = console_level
        self.state_dir = state_dir
        self.colors = colors
        self._renderer: Any = None

    @property
    def renderer(self) -> Any:
        """structlog's console renderer, made on the first console line (it imports rich)."""
        if self._renderer is None:
            import structlog

            self._renderer = structlog.dev.ConsoleRenderer(colors=self.colors, sort_keys=False)
        return self._renderer

    def __call__(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
        import structlog

        self.emit(logger, method, event_dict)
        raise structlog.DropEvent

    def emit(self, logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> None:
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


class _SinkHandler(logging.Handler):
    """Hands the package's stdlib records (from ``get_logger``) to the sink."""

    def __init__(self, sink: _Sink) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = getattr(record, "event_dict", None)
            if not isinstance(event, dict):  # a plain stdlib call: mask it the same way
                event = {
                    "event": record.getMessage(),
                    "logger": record.name,
                    "timestamp": datetime.fromtimestamp(record.created, UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
                if record.exc_info:
                    event["exception"] = logging.Formatter().formatException(record.exc_info)
                event = redact_obj(event)
            event.setdefault("level", record.levelname.lower())
            self.sink.emit(None, record.levelname.lower(), dict(event))
        except Exception:
            self.handleError(record)


# The handler configure_logging attached (replaced by the next call, removed by reset).
_installed: list[_SinkHandler] = []


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
    structlog_global: bool = True,
) -> None:
    """Set logging up for the ``hotfix`` command (library users may call it too).

    The package's loggers (stdlib ``hotfix_fsm``, every level) and structlog's global
    configuration both end in one sink: the per-hotfix JSON file and the console. With
    ``structlog_global=False`` structlog's global configuration is left as it is (and
    structlog is not imported until something logs).
    """
    if colors is None:
        colors = sys.stderr.isatty()
    sink = _Sink(console_level(verbosity), state_dir, colors)
    package = logging.getLogger(ROOT)
    for old in _installed:
        package.removeHandler(old)
    _installed[:] = [_SinkHandler(sink)]
    package.addHandler(_installed[0])
    package.setLevel(logging.DEBUG)
    if not structlog_global:
        return
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            sink,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.ReturnLoggerFactory(),
        cache_logger_on_first_use=False,
    )


def logging_configured() -> bool:
    """Whether ``configure_logging`` has set the package's sink up (and not been reset)."""
    return bool(_installed)


def reset_logging() -> None:
    """Undo ``configure_logging``: the package is quiet again, structlog at its defaults."""
    package = logging.getLogger(ROOT)
    for old in _installed:
        package.removeHandler(old)
    _installed.clear()
    package.setLevel(logging.NOTSET)
    if "structlog" in sys.modules:  # never configured otherwise: nothing to undo
        import structlog

        structlog.reset_defaults()


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
    "get_logger",
    "log_path",
    "logging_configured",
    "read_log",
    "redact_processor",
    "render_message",
    "reset_logging",
    "set_console_writer",
]
