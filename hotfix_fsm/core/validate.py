"""Validation of what users type: issue ids, descriptions, ref names.

An issue id travels into branch names, tags, PR titles and workflow inputs that other
people's scripts read, so it must match a conservative pattern *and* make a valid git ref.
Anything else is refused with a clear error, never silently "sanitised" into another id.
"""

from __future__ import annotations

import re

from hotfix_fsm.errors import InvalidInput

MAX_ISSUE = 64
MAX_DESCRIPTION = 4000
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def ref_problem(name: str) -> str | None:
    """Why ``name`` is not a valid git ref name (git-check-ref-format rules), or None."""
    if not name:
        return "it is empty"
    if _REF_FORBIDDEN.search(name):
        return "it contains a space, control character or one of ~ ^ : ? * [ \\"
    if ".." in name:
        return "it contains '..'"
    if "@{" in name:
        return "it contains '@{'"
    if name == "@":
        return "it is '@'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it has an empty path component"
    if name.endswith("."):
        return "it ends with '.'"
    for part in name.split("/"):
        if part.startswith("."):
            return "a component starts with '.'"
        if part.endswith(".lock"):
            return "a component ends with '.lock'"
    if name.startswith("-"):
        return "it starts with '-' (it would read as an option)"
    return None


def validate_ref(name: str, what: str = "ref name") -> str:
    problem = ref_problem(name)
    if problem:
        raise InvalidInput(f"{what} {name!r} is not a valid git ref: {problem}")
    return name


def validate_issue(issue: str, pattern: str) -> str:
    """Return ``issue`` unchanged if acceptable, else raise InvalidInput (exit code 2)."""
    shown = repr(issue) if len(issue) <= 80 else repr(issue[:80]) + "…"
    if len(issue) > MAX_ISSUE:
        raise InvalidInput(
            f"issue id {shown} is too long ({len(issue)} characters, at most {MAX_ISSUE})",
            hint="use the tracker's short id, for example INC-1234",
        )
    if not re.fullmatch(pattern, issue):
        raise InvalidInput(
            f"issue id {shown} is refused: it must match {pattern}",
            hint="use letters, digits, '-', '_' and '.', not starting with '-' or '.'; "
            "the id goes into branch names, tags and workflow inputs",
        )
    problem = ref_problem(f"hotfix/{issue}")
    if problem:
        raise InvalidInput(f"issue id {shown} would not make a valid git branch: {problem}")
    return issue


def validate_description(description: str) -> str:
    if not description.strip():
        raise InvalidInput(
            "the description is empty", hint='say what the fix does, e.g. "Fix token expiry check"'
        )
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"the description is too long ({len(description)} characters, at "
            f"most {MAX_DESCRIPTION})"
        )
    if "\x00" in description:
        raise InvalidInput("the description contains a NUL character")
    return description


def first_line(description: str, limit: int = 72) -> str:
    """A one-line summary fit for a commit subject or PR title."""
    line = " ".join(description.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
