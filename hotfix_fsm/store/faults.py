"""What a store fault means, in the words an on-call engineer needs.

``describe`` turns a driver error (SQLite or PostgreSQL) into a ``StoreError`` that names the
cause — read-only, disk full, locked (and by whom), damaged, not a database file — the store's
path (a URL is shown without its password) and what to do. The driver's own words are kept at
the end of the message, for the record.

SQLite's words are often generic ("unable to open database file" on a read-only mount, "disk
I/O error" when a full disk fails a write or an fsync), so the cause is confirmed on the file
system: ``os.access`` and the mount flags for read-only, ``statvfs`` for a full disk, and on
Linux ``/proc/locks`` for the process holding the write lock.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotfix_fsm.errors import StoreError

# SQLite's primary result codes (the low byte of an extended code).
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26
# Under this much free space an I/O error is taken for what it almost surely is: a full disk.
LOW_SPACE_BYTES = 1 << 20
# The byte of the ``-shm`` file a WAL writer locks, and the database file's lock bytes
# (PENDING, RESERVED, then the SHARED range) in rollback-journal mode (see SQLite's os_unix.c).
WAL_WRITE_LOCK_BYTE = 120
PENDING_BYTE = 0x40000000
SHARED_RANGE_END = PENDING_BYTE + 2 + 510
NOTHING_WRITTEN = "nothing was committed half-way"

# (hotfix id, lease owner) of every hotfix whose driver's lease is live.
LiveDrivers = Callable[[], Sequence[tuple[str, str]]]


@dataclass(frozen=True)
class Holder:
    """A process of this machine holding the store's write lock."""

    pid: int
    name: str

    def __str__(self) -> str:
        return f"process {self.pid} ({self.name})" if self.name else f"process {self.pid}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:  # an unparsable URL has no file to look at
        return None
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def read_only_reason(path: Path) -> str | None:
    """Why ``path`` (a SQLite store) cannot be written, or None when it can be, as far as the
    file system tells. SQLite writes ``NAME-wal`` and ``NAME-shm`` beside the file, even to
    read a store in WAL mode, so a read-only directory is enough to stop it."""
    folder = path.parent
    try:
        if _mounted_read_only(folder):
            return f"the file system holding {folder} is mounted read-only"
        if path.exists() and not os.access(path, os.W_OK):
            return f"{path} is not writable (its permissions or ownership)"
        if folder.is_dir() and not os.access(folder, os.W_OK):
            return (
                f"its directory {folder} is not writable (SQLite creates {path.name}-wal and "
                f"{path.name}-shm there, even to read the store)"
            )
    except OSError:
        return None
    return None


def _mounted_read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def free_bytes(path: Path) -> int | None:
    """Bytes free for this user on the file system holding ``path``'s directory."""
    try:
        st = os.statvfs(path.parent)
    except (OSError, AttributeError):
        return None
    return int(st.f_bavail * st.f_frsize)


def lock_holders(path: Path) -> list[Holder]:
    """Other processes of this machine holding the SQLite write lock of ``path`` (Linux:
    ``/proc/locks``; empty where it cannot be told)."""
    wanted: dict[tuple[int, int, int], tuple[int, int]] = {}
    for file, first, last in (
        (Path(f"{path}-shm"), WAL_WRITE_LOCK_BYTE, WAL_WRITE_LOCK_BYTE),
        (path, PENDING_BYTE, SHARED_RANGE_END),
    ):
        try:
            st = file.stat()
        except OSError:
            continue
        wanted[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = (first, last)
    if not wanted:
        return []
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        pid = _write_lock_pid(line, wanted)
        if pid is not None and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return [Holder(pid, _process_name(pid)) for pid in pids]


def _write_lock_pid(line: str, wanted: dict[tuple[int, int, int], tuple[int, int]]) -> int | None:
    """The pid of a held WRITE lock on one of the ``wanted`` byte ranges, from one line of
    ``/proc/locks`` (``1: POSIX  ADVISORY  WRITE 4242 fe:00:2180195 120 120``)."""
    parts = line.split()
    if len(parts) < 8 or parts[1] == "->" or parts[3] != "WRITE":  # "->" marks a waiter
        return None
    try:
        pid = int(parts[4])
        major, minor, inode = parts[5].split(":")
        key = (int(major, 16), int(minor, 16), int(inode))
        start = int(parts[6])
        end = PENDING_BYTE * 4 if parts[7] == "EOF" else int(parts[7])
    except ValueError:
        return None
    span = wanted.get(key)
    if pid <= 0 or span is None or end < span[0] or start > span[1]:
        return None
    return pid


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _driver_of(holder: Holder, drivers: Sequence[tuple[str, str]]) -> str | None:
    """The hotfix whose live lease ``holder`` owns (owners are ``host:pid:random``)."""
    host = socket.gethostname()
    for hotfix_id, owner in drivers:
        owner_host, _, rest = owner.partition(":")
        if owner_host == host and rest.partition(":")[0] == str(holder.pid):
            return hotfix_id
    return None


# -- the causes -----------------------------------------------------------------------------


def _codes(exc: Any) -> tuple[int | None, str | None, str]:
    """(SQLite primary result code, PostgreSQL SQLSTATE, the driver's first line)."""
    orig = getattr(exc, "orig", None) or exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    code = getattr(orig, "sqlite_errorcode", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return (
        code & 0xFF if isinstance(code, int) else None,
        sqlstate if isinstance(sqlstate, str) else None,
        detail,
    )


def describe(
    exc: Any,
    url: str,
    *,
    writing: bool,
    live_drivers: LiveDrivers | None = None,
) -> StoreError:
    """A StoreError saying what the driver error ``exc`` means for the store at ``url`` (shown
    without a password) and what to do about it."""
    code, sqlstate, detail = _codes(exc)
    lowered = detail.lower()
    path = sqlite_path(url)
    where = str(path) if path is not None else url
    what = "write to" if writing else "read"
    said = f"({'SQLite' if path is not None else 'the database'} said: {detail})"

    def error(cause: str, hint: str) -> StoreError:
        return StoreError(f"could not {what} the hotfix store {where}: {cause} {said}", hint=hint)

    if sqlstate is not None:
        found = _postgres(sqlstate, where)
        if found is not None:
            return error(*found)
    if path is not None and path.is_dir():
        return error(
            "it is a directory, not a database file",
            f"give the path of a file (for example {path / 'hotfix.db'}) to --db or HOTFIX_FSM_DB",
        )
    if (
        code in (SQLITE_CORRUPT, SQLITE_NOTADB)
        or "malformed" in lowered
        or "not a database" in lowered
    ):
        return error(
            "the file is damaged or is not a hotfix store at all",
            f"the file was left as it is. Keep a copy of it; restore {where} from a backup, or "
            "move it aside and rebuild the unfinished hotfixes from the git remote and GitHub "
            "with `hotfix adopt --issue ISSUE --repo PATH` into a fresh store",
        )
    if code == SQLITE_FULL or "full" in lowered or sqlstate == "53100":
        return error(_full_cause(path), _full_hint(path))
    if code in (SQLITE_BUSY, SQLITE_LOCKED) or "locked" in lowered or "busy" in lowered:
        return error(*_locked(path, live_drivers))
    reason = read_only_reason(path) if path is not None else None
    if (
        code == SQLITE_READONLY
        or "readonly" in lowered
        or "read-only" in lowered
        or (reason is not None and code in (None, SQLITE_CANTOPEN, SQLITE_IOERR))
    ):
        return error(
            f"the store is read-only: {reason or 'SQLite opened it read-only'}",
            f"make {where} and its directory writable (remount the file system read-write, "
            "or fix the permissions), or copy the store to a writable place and point --db "
            f"(or HOTFIX_FSM_DB) at the copy; {NOTHING_WRITTEN}",
        )
    free = free_bytes(path) if path is not None else None
    if code == SQLITE_IOERR and free is not None and free < LOW_SPACE_BYTES:
        return error(_full_cause(path), _full_hint(path))
    if path is not None and code == SQLITE_CANTOPEN and not path.parent.is_dir():
        return error(
            f"its directory {path.parent} does not exist",
            f"check --db or HOTFIX_FSM_DB for a typo, or create {path.parent} first",
        )
    if path is not None and code == SQLITE_CANTOPEN and not os.access(path.parent, os.X_OK):
        return error(
            f"its directory {path.parent} cannot be entered (permissions)",
            f"fix the permissions of {path.parent}, or point --db at another store",
        )
    if path is not None and code == SQLITE_CANTOPEN and not path.exists():
        return error(
            f"the file does not exist and cannot be created in {path.parent}",
            "give --db (or HOTFIX_FSM_DB) a path in a directory where you can create files",
        )
    if path is not None and code == SQLITE_CANTOPEN and not os.access(path, os.R_OK):
        return error(
            "the file cannot be read (permissions)",
            f"fix the permissions of {path}, or point --db at another store",
        )
    if path is None:
        return error(
            "the database server could not be used",
            f"check that the server of {where} runs, is reachable and knows this user, then "
            f"run the command again; {NOTHING_WRITTEN}",
        )
    return error(
        "the database refused the operation",
        f"{NOTHING_WRITTEN}; fix the cause above and run the command again",
    )


def _full_cause(path: Path | None) -> str:
    if path is None:
        return "the database server's disk is full"
    return f"the disk holding {path.parent} is full"


def _full_hint(path: Path | None) -> str:
    if path is None:
        return f"free space on the database server and run the command again; {NOTHING_WRITTEN}"
    free = free_bytes(path)
    left = f" ({free} bytes left)" if free is not None else ""
    return (
        f"free space on the file system holding {path.parent}{left} (`df -h {path.parent}` "
        f"shows it), then run the command again; {NOTHING_WRITTEN}"
    )


def _locked(path: Path | None, live_drivers: LiveDrivers | None) -> tuple[str, str]:
    holders = lock_holders(path) if path is not None else []
    drivers: Sequence[tuple[str, str]] = ()
    if live_drivers is not None:
        try:
            drivers = live_drivers()
        except Exception:  # best effort: the lock may stop even a read
            drivers = ()
    wait = f"wait for it to finish and run the command again; {NOTHING_WRITTEN}"
    if holders:
        named = []
        for holder in holders:
            hotfix = _driver_of(holder, drivers)
            named.append(f"{holder}, the driver of hotfix {hotfix}," if hotfix else str(holder))
        pids = " ".join(str(h.pid) for h in holders)
        return (
            f"it is locked: {'; '.join(named)} holds its write lock and did not let go within "
            "the busy timeout",
            f"{wait}. If that process is stuck, stop it (`kill {pids}`)",
        )
    cause = "it is locked: another process holds the database lock"
    if drivers:
        cause += " (live drivers: " + ", ".join(f"hotfix {h} by {o}" for h, o in drivers) + ")"
    return cause, f"{wait}. `hotfix status` names the driver of each hotfix"


def _postgres(sqlstate: str, where: str) -> tuple[str, str] | None:
    if sqlstate == "25006":
        return (
            "the database server only accepts reads (a standby or a read-only transaction)",
            f"point --db at the primary server; {NOTHING_WRITTEN}",
        )
    if sqlstate in ("55P03", "40P01"):
        return (
            "it is locked: another session holds the rows this command needs",
            f"wait for it to finish and run the command again; {NOTHING_WRITTEN}",
        )
    if sqlstate.startswith("XX"):
        return (
            "the database server reports damaged data",
            "ask the database's administrator to check and restore it",
        )
    if sqlstate.startswith("28"):
        return (
            "the database server refused the credentials",
            f"check the user and password of {where} (the password is never shown)",
        )
    if sqlstate.startswith(("08", "57P")):
        return (
            "the database server cannot be reached or is shutting down",
            f"check that the server of {where} runs and is reachable, then run the command "
            f"again; {NOTHING_WRITTEN}",
        )
    return None


__all__ = [
    "Holder",
    "describe",
    "free_bytes",
    "lock_holders",
    "read_only_reason",
    "sqlite_path",
]
