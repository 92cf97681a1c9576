"""Keep secrets (tokens, webhook URLs) out of logs, the journal and reports.

Secrets are registered once (from configuration and the environment) and every string that
leaves the process through a log line, a journal payload or a report passes ``redact``.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from typing import Any

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Whether every registered secret reads the same inside JSON text (``json.dumps`` escapes
# quotes, backslashes, control and non-ASCII characters): only then can a search of the
# serialised text stand for a search of every string in the value (``json_is_clean``).
_json_safe = True
# Shapes that are secrets whoever registered them: GitHub tokens and Slack webhook paths.
_SHAPES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|https://hooks\.slack\.com/services/[^\s\"'<>]+)"
)
# A bare token: one run of token characters (letters, digits, base64 and URL-safe marks).
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_.~-]+")
_SEPARATORS = re.compile(r"[+/=_.~-]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")
# The usual spelling of an environment variable name: never taken for a token.
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")


def register_secret(*values: str) -> None:
    """Add secrets to mask; values shorter than 4 characters are ignored (too common)."""
    global _pattern, _json_safe
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 4)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        _json_safe = all(_reads_the_same_in_json(s) for s in _secrets)


def _reads_the_same_in_json(secret: str) -> bool:
    return secret.isascii() and all(c >= " " and c not in '"\\' for c in secret)


def json_is_clean(text: str) -> bool:
    """Whether ``text``, the ``json.dumps`` of a value, shows that ``redact_obj`` would change
    nothing in that value: no secret shape and no registered secret occurs in it.

    A match anywhere in the text (a key, a number, across tokens) answers False, as does a
    registered secret that JSON escaping would alter; the caller then redacts value by value.
    One search of the serialised text is much cheaper than redacting every string of a large
    value, and nearly every value is clean.
    """
    if not _json_safe or _SHAPES.search(text):
        return False
    pattern = _pattern
    return pattern is None or pattern.search(text) is None


def looks_like_secret(value: str) -> bool:
    """Whether ``value`` must never be echoed back (in an error message, a diagnostic).

    True for a secret shape (GitHub tokens ``ghp_…``/``github_pat_…``, Slack webhook URLs), a
    registered secret, or a long high-entropy token. Callers describe such a value instead of
    printing it; a false positive only costs the echo.
    """
    if not value:
        return False
    if _SHAPES.search(value):
        return True
    pattern = _pattern
    if pattern is not None and pattern.search(value):
        return True
    return _high_entropy(value.strip())


def _high_entropy(text: str) -> bool:
    """A long random-looking token, told apart from names such as ``HotfixGithubToken2``.

    Names are made of words (``GITHUB_TOKEN``, ``HotfixToken2024``); a random token, split
    the same way (capitalised words, upper-case runs, digit runs), falls into runs of one or
    two characters, and uses many distinct characters. Long hex strings count too.
    """
    if len(text) < 20 or not _TOKEN_CHARS.fullmatch(text) or _ENV_NAME.fullmatch(text):
        return False
    if len(text) >= 32 and _HEX.fullmatch(text):
        return any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    words = [w for part in _SEPARATORS.split(text) for w in _WORDS.findall(part)]
    return entropy >= 3.0 and len(words) >= 2 and sum(map(len, words)) / len(words) < 3.0


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPES.sub(MASK, text)


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where ``redact`` finds a secret in ``text``: the (start, end) of each registered secret
    and each secret shape, sorted. A writer that must cut a stream in pieces cuts outside
    them: a secret split in two is masked in neither piece."""
    spans = [m.span() for m in _SHAPES.finditer(text)]
    pattern = _pattern
    if pattern is not None:
        spans += [m.span() for m in pattern.finditer(text)]
    return sorted(spans)


def redact_obj(value: Any) -> Any:
    """``redact`` applied to every string inside dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_obj(k): redact_obj(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_obj(v) for v in value]
    return value
