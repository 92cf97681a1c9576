"""Keep secrets (tokens, webhook URLs) out of logs, the journal and reports.

Secrets are registered once (from configuration and the environment) and every string that
leaves the process through a log line, a journal payload or a report passes ``redact``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Shapes that are secrets whoever registered them: GitHub tokens and Slack webhook paths.
_SHAPES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|https://hooks\.slack\.com/services/[^\s\"'<>]+)"
)


def register_secret(*values: str) -> None:
    """Add secrets to mask; values shorter than 4 characters are ignored (too common)."""
    global _pattern
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 4)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPES.sub(MASK, text)


def redact_obj(value: Any) -> Any:
    """``redact`` applied to every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_obj(k): redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value
