"""The store's records: a hotfix row, a journal row, an entry to append, a lease (and who
holds it), and how the store serialises payloads. Plain values: reading them needs no
database."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Hotfix:
    """A snapshot of one hotfix row."""

    id: str
    issue: str
    description: str
    repo: str
    state: str
    failed_from: str | None
    paused_reason: str | None
    paused_gate: str | None
    error: str | None
    context: dict[str, Any]
    options: dict[str, Any]
    graph_hash: str
    created_at: float
    updated_at: float
    last_seq: int
    lease_owner: str | None
    lease_acquired_at: float | None
    lease_expires_at: float | None
    fencing_token: int

    def lease_live(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return bool(self.lease_owner) and (self.lease_expires_at or 0) > now

    def lease_holder_gone(self) -> bool:
        """Whether the lease's holder ran on this machine and its process has ended (killed,
        or its terminal closed): ``resume`` takes such a lease over without waiting."""
        return bool(self.lease_owner) and holder_is_dead(str(self.lease_owner))


@dataclass(frozen=True)
class JournalEntry:
    hotfix_id: str
    seq: int
    at: float
    kind: str
    phase: str | None
    attempt: int
    key: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Entry:
    """A journal row to append."""

    kind: str
    phase: str | None = None
    attempt: int = 0
    key: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    hotfix_id: str
    owner: str
    token: int
    ttl: float


def new_owner() -> str:
    """``host:pid:random`` — names the holder in messages and is unique per driver."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def holder_is_dead(owner: str) -> bool:
    """True when the lease holder ran on this host and its process is gone (a killed
    terminal, not a lost laptop), so resuming need not wait for the lease to expire."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def to_json(value: Any) -> str:
    """How the store serialises context, options and payloads."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
