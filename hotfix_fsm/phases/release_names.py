"""Release tag names: ``<prefix>X.Y.Z`` versions and the next free patch version. Pure."""

from __future__ import annotations

import re

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def semver(tag: str, prefix: str) -> tuple[int, int, int] | None:
    """``(X, Y, Z)`` of a ``<prefix>X.Y.Z`` tag, else None."""
    match = _SEMVER.match(tag[len(prefix) :]) if tag.startswith(prefix) else None
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def next_patch(tags: list[str], prefix: str) -> str:
    """The next patch version after the highest ``<prefix>X.Y.Z`` in ``tags``."""
    best: tuple[int, int, int] | None = None
    for tag in tags:
        version = semver(tag, prefix)
        if version is not None:
            best = version if best is None or version > best else best
    major, minor, patch = best or (0, 0, 0)
    return f"{prefix}{major}.{minor}.{patch + 1}"


def bump_until_free(name: str, taken: set[str], prefix: str) -> str:
    """``name`` or the next patch versions after it that no tag uses yet."""
    while name in taken:
        name = next_patch([name], prefix)
    return name
