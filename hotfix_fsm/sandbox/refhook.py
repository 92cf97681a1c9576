"""A ``reference-transaction`` hook that logs every ref update of a bare repository.

The hook sees pushes into the repository and the rehearsal server's own ``update-ref``
calls alike, so the log is the world's record of what happened to branches and tags.
This module is stdlib-only because git runs it as a plain script (``python -I refhook.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ZERO_OID = "0" * 40
HOOK_NAME = "reference-transaction"


def install_ref_log(bare_repo: Path, log_path: Path) -> None:
    """Install the hook into ``bare_repo`` so committed ref updates append to ``log_path``."""
    hooks = Path(bare_repo) / "hooks"
    hooks.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path).resolve()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.touch(exist_ok=True)
    # A shell wrapper (not a shebang line) so paths with spaces survive; -I keeps
    # PYTHONPATH and the user's site-packages out of a hook that needs only stdlib.
    argv = [sys.executable, "-I", str(Path(__file__).resolve()), str(log_path)]
    script = "#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n'
    hook = hooks / HOOK_NAME
    tmp = hook.with_name(hook.name + ".tmp")
    tmp.write_text(script, encoding="utf-8")
    tmp.chmod(0o755)
    os.replace(tmp, hook)


def read_ref_log(log_path: Path) -> list[dict[str, Any]]:
    """Return the logged ref updates, oldest first (a torn last line is ignored)."""
    try:
        text = Path(log_path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries: list[dict[str, Any]] = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                entries.append(item)
    return entries


def _git_ok(*args: str) -> bool:
    proc = subprocess.run(["git", *args], capture_output=True, check=False)
    return proc.returncode == 0


def _is_forced(old: str, new: str) -> bool:
    if ZERO_OID in (old, new):
        return False
    return not _git_ok("merge-base", "--is-ancestor", old, new)


def _last_values(entries: list[dict[str, Any]]) -> dict[str, str]:
    last: dict[str, str] = {}
    for entry in entries:
        last[str(entry.get("ref"))] = str(entry.get("new"))
    return last


def _record(log_path: Path, lines: list[str]) -> None:
    updates: list[tuple[str, str, str]] = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("refs/"):
            updates.append((parts[0], parts[1], parts[2]))
    if not updates:
        return
    with open(log_path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        last = _last_values(read_ref_log(log_path))
        out: list[str] = []
        for old, new, ref in updates:
            # git 2.39 also runs the hook for pack-refs (loose -> packed moves and
            # pruning), which changes no ref value: skip anything that is not a change.
            if old == new:
                continue
            if new == ZERO_OID:
                # One deletion may reach us from both the loose and the packed backend.
                if last.get(ref) == ZERO_OID or _git_ok("rev-parse", "-q", "--verify", ref):
                    continue
            elif last.get(ref) == new:
                continue
            entry = {
                "ref": ref,
                "old": old,
                "new": new,
                "at": datetime.now(UTC).isoformat(),
                "forced": _is_forced(old, new),
            }
            last[ref] = new
            out.append(json.dumps(entry, sort_keys=True) + "\n")
        if out:
            fh.seek(0, os.SEEK_END)
            fh.write("".join(out))
            fh.flush()


def main(argv: list[str]) -> int:
    """Hook entry point: ``refhook.py <log_path> <state>`` with updates on stdin."""
    try:
        lines = sys.stdin.read().splitlines()
        if len(argv) >= 2 and argv[1] == "committed":
            _record(Path(argv[0]), lines)
    except Exception as exc:  # the hook must never fail or block a push
        print(f"refhook: {exc!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
