"""Show outside text on a terminal or in Markdown without letting it act.

Text the tool did not write — a check-run name or URL from GitHub, a health answer, a
configuration value, the user's own description, a branch name — may hold control
characters. Printed raw, ESC sequences retitle or clear a terminal (or fake a line), BEL
rings, and bidi overrides reorder what a reader sees. ``sanitize`` shows each such character
escaped (``\\x1b``, ``\\u202e``) so it is visible and inert. It is pure and idempotent:
the escapes it writes are plain printable text.

What is escaped: C0 controls (U+0000-U+001F) except, when ``keep_newlines``, newline and tab;
DEL (U+007F); C1 controls (U+0080-U+009F, which some terminals obey like ESC sequences);
the bidi embedding, override and isolate marks (U+202A-U+202E, U+2066-U+2069) and the
directional marks (U+200E, U+200F, U+061C); the line and paragraph separators
(U+2028, U+2029).
"""

from __future__ import annotations

import re
from typing import Any

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
_ALL = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "]")
_NO_NEWLINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character shown escaped (newline and tab kept when
    ``keep_newlines``: for text whose line breaks the tool itself wrote)."""
    pattern = _NO_NEWLINES if keep_newlines else _ALL
    return pattern.sub(_escape, text)


def sanitize_obj(value: Any) -> Any:
    """``value`` with every string in it (dict keys included) sanitized."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, dict):
        return {sanitize_obj(k): sanitize_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(sanitize_obj(v) for v in value)
    return value


def has_control(text: str, *, allow_newlines: bool = True) -> bool:
    """Whether ``text`` holds a character ``sanitize`` would escape."""
    pattern = _NO_NEWLINES if allow_newlines else _ALL
    return pattern.search(text) is not None


__all__ = ["has_control", "sanitize", "sanitize_obj"]
