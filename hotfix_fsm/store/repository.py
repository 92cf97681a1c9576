"""Reads and fenced writes of hotfixes and their journal.

Every checkpoint is one transaction: a conditional ``UPDATE`` of the hotfix row (it must
still carry this driver's fencing token) that also reserves journal sequence numbers, then
the journal ``INSERT``. A driver that lost its lease changes nothing and gets ``LeaseLost``.

On SQLite the checkpoint runs as prepared statements (the ``UPDATE``, a ``SELECT`` of the
sequence it reserved, the ``INSERT``) straight on a ``sqlite3`` connection the store keeps for
its checkpoints (taken from the engine's pool, so its connect
listener has set the pragmas, and closed when the engine is disposed): SQLAlchemy's
execution layer cost several times the commit itself, and the pool's checkout and reset a
third of what remained. PostgreSQL goes through SQLAlchemy.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Engine, Table, TextClause, and_, event, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from hotfix_fsm.errors import LeaseHeld, LeaseLost, NotFound, StoreError
from hotfix_fsm.store.faults import LiveDrivers, describe
from hotfix_fsm.store.models import hotfixes, journal
from hotfix_fsm.store.notify import announce
from hotfix_fsm.store.records import (
    Entry,
    Hotfix,
    JournalEntry,
    Lease,
    holder_is_dead,
    to_json,
)

# The states a hotfix ends in (the graph's TERMINAL; a test keeps the two equal). Reaching
# one sets ``finished_at``, which the partial indexes read instead of ``state`` (migration
# 0004): a checkpoint of an unfinished hotfix then writes no index page.
FINISHED_STATES = frozenset({"done", "cancelled", "rolled_back"})
# Literal SQL (not bound parameters) so the planner can use the partial indexes
# ix_hotfixes_unfinished and ix_hotfixes_finished_updated, whose predicates it must match.
UNFINISHED_SQL = "finished_at IS NULL"
FINISHED_SQL = "finished_at IS NOT NULL"


_dumps = to_json


_UPDATABLE = frozenset(
    {
        "state",
        "failed_from",
        "paused_reason",
        "paused_gate",
        "error",
        "context",
        "repo",
        "options",
        "description",
    }
)
_INSERT_JOURNAL_SQL = (
    "INSERT INTO journal (hotfix_id, seq, at, kind, phase, attempt, key, payload) "
    "VALUES (:hotfix_id, :seq, :at, :kind, :phase, :attempt, :key, :payload)"
)
_INSERT_JOURNAL = text(_INSERT_JOURNAL_SQL)
# The same INSERT with positional parameters, for the sqlite3 fast path.
_INSERT_JOURNAL_QMARK = (
    "INSERT INTO journal (hotfix_id, seq, at, kind, phase, attempt, key, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_HOTFIX_COLUMNS = tuple(c for c in hotfixes.columns if c.name != "finished_at")
# After a state change to an unfinished state, a hotfix that was finished is not any more.
_REOPEN_SQL = "UPDATE hotfixes SET finished_at = NULL WHERE id = :hid"
_SEQUENCE_SQL = "SELECT last_seq, finished_at FROM hotfixes WHERE id = ?"


def _wrapped(sql: str | None, params: Any, exc: sqlite3.Error) -> DBAPIError:
    """A raw ``sqlite3`` error as SQLAlchemy would have raised it (OperationalError, …)."""
    return cast(DBAPIError, DBAPIError.instance(sql, params, exc, sqlite3.Error))


def _row_to_hotfix(row: Any) -> Hotfix:
    m = row._mapping
    return Hotfix(
        id=m["id"],
        issue=m["issue"],
        description=m["description"],
        repo=m["repo"],
        state=m["state"],
        failed_from=m["failed_from"],
        paused_reason=m["paused_reason"],
        paused_gate=m["paused_gate"],
        error=m["error"],
        context=json.loads(m["context"] or "{}"),
        options=json.loads(m["options"] or "{}"),
        graph_hash=m["graph_hash"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_seq=m["last_seq"],
        lease_owner=m["lease_owner"],
        lease_acquired_at=m["lease_acquired_at"],
        lease_expires_at=m["lease_expires_at"],
        fencing_token=m["fencing_token"],
    )


def _reopened(params: dict[str, Any], finished_at: float | None) -> bool:
    """Whether a hotfix marked finished was just given an unfinished state (the graph has
    no such edge; the store keeps ``finished_at`` true to ``state`` all the same)."""
    return (
        finished_at is not None
        and "v_state" in params
        and (params["v_state"] not in FINISHED_STATES)
    )


# This process's id, kept current across fork() without a getpid() system call per checkpoint.
_process = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, os.getpid()))


@dataclass(frozen=True)
class _Update:
    """A checkpoint's UPDATE, in the two forms its two paths bind."""

    clause: TextClause  # named parameters, ``RETURNING`` the new sequence (PostgreSQL)
    qmark: str  # the same with ``?`` placeholders and no ``RETURNING`` (the sqlite3 path)
    order: tuple[str, ...]  # the parameters' names, in the order of the ``?``


class Store:
    """The hotfix store over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(hotfix_write=True)
        self._safe_url = engine.url.render_as_string(hide_password=True)
        self._statements: dict[tuple[tuple[str, ...], bool, bool], _Update] = {}
        self._sqlite = engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite"
        self._t: Table = hotfixes
        self._j: Table = journal
        # The checkpoints' own connection (SQLite): (the process it was opened in, it).
        self._kept: tuple[int, sqlite3.Connection] | None = None
        self._kept_lock = threading.Lock()
        if self._sqlite:
            event.listen(engine, "engine_disposed", self._close_kept)

    # -- reads ---------------------------------------------------------------------------

    def get(self, hotfix_id: str) -> Hotfix:
        with self._reading() as conn:
            row = conn.execute(select(*_HOTFIX_COLUMNS).where(self._t.c.id == hotfix_id)).first()
        if row is None:
            raise NotFound(
                f"no hotfix {hotfix_id!r} in this store",
                hint="run `hotfix list --all` to see the hotfixes this store knows",
            )
        return _row_to_hotfix(row)

    def find(self, ref: str) -> Hotfix:
        """A hotfix by id, unique id prefix, or issue id (its most recent hotfix)."""
        with self._reading() as conn:
            row = conn.execute(select(*_HOTFIX_COLUMNS).where(self._t.c.id == ref)).first()
            if row is None:
                rows = conn.execute(
                    select(*_HOTFIX_COLUMNS)
                    .where(self._t.c.issue == ref)
                    .order_by(self._t.c.updated_at.desc())
                    .limit(1)
                ).all()
                if not rows:
                    escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    rows = conn.execute(
                        select(*_HOTFIX_COLUMNS)
                        .where(self._t.c.id.like(escaped + "%", escape="\\"))
                        .limit(2)
                    ).all()
                    if len(rows) > 1:
                        raise NotFound(
                            f"{ref!r} matches more than one hotfix",
                            hint="give more of the id (see `hotfix list --all`)",
                        )
                row = rows[0] if rows else None
        if row is None:
            raise NotFound(
                f"no hotfix matches {ref!r}",
                hint="run `hotfix list --all` to see the hotfixes this store knows",
            )
        return _row_to_hotfix(row)

    def list_hotfixes(self, *, include_finished: bool = False, limit: int = 50) -> list[Hotfix]:
        """Unfinished hotfixes (and finished ones too with ``include_finished``), most
        recently updated first."""
        # Each part has its own partial index: a query over both would scan the table.
        parts = (UNFINISHED_SQL, FINISHED_SQL) if include_finished else (UNFINISHED_SQL,)
        rows = []
        with self._reading() as conn:
            for where in parts:
                query = (
                    select(*_HOTFIX_COLUMNS)
                    .where(text(where))
                    .order_by(self._t.c.updated_at.desc())
                    .limit(limit)
                )
                rows += [_row_to_hotfix(r) for r in conn.execute(query)]
        rows.sort(key=lambda h: h.updated_at, reverse=True)
        return rows[:limit]

    def latest_unfinished(self) -> Hotfix | None:
        found = self.list_hotfixes(limit=1)
        return found[0] if found else None

    def active_for_issue(self, issue: str) -> list[Hotfix]:
        query = select(*_HOTFIX_COLUMNS).where(and_(self._t.c.issue == issue, text(UNFINISHED_SQL)))
        with self._reading() as conn:
            return [_row_to_hotfix(r) for r in conn.execute(query)]

    def journal(
        self,
        hotfix_id: str,
        *,
        phase: str | None = None,
        kinds: Sequence[str] | None = None,
        after_seq: int = 0,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[JournalEntry]:
        j = self._j
        query = select(j).where(j.c.hotfix_id == hotfix_id, j.c.seq > after_seq)
        if phase is not None:
            query = query.where(j.c.phase == phase)
        if kinds is not None:
            query = query.where(j.c.kind.in_(list(kinds)))
        query = query.order_by(j.c.seq.desc() if newest_first else j.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as conn:
            return [
                JournalEntry(
                    hotfix_id=r.hotfix_id,
                    seq=r.seq,
                    at=r.at,
                    kind=r.kind,
                    phase=r.phase,
                    attempt=r.attempt,
                    key=r.key,
                    payload=json.loads(r.payload or "{}"),
                )
                for r in conn.execute(query)
            ]

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute(select(func.count()).select_from(self._t)).scalar_one())

    # -- writes --------------------------------------------------------------------------

    def create(
        self,
        *,
        hotfix_id: str,
        issue: str,
        description: str,
        repo: str,
        graph_hash: str,
        options: dict[str, Any],
        context: dict[str, Any] | None = None,
        state: str = "created",
    ) -> Hotfix:
        now = time.time()
        payload = {"issue": issue, "repo": repo, "graph_hash": graph_hash}
        try:
            with self._writing() as conn:
                conn.execute(
                    insert(self._t).values(
                        id=hotfix_id,
                        issue=issue,
                        description=description,
                        repo=repo,
                        state=state,
                        context=_dumps(context or {}),
                        options=_dumps(options),
                        graph_hash=graph_hash,
                        created_at=now,
                        updated_at=now,
                        last_seq=1,
                        fencing_token=0,
                        finished_at=now if state in FINISHED_STATES else None,
                    )
                )
                conn.execute(
                    insert(self._j).values(
                        hotfix_id=hotfix_id,
                        seq=1,
                        at=now,
                        kind="created",
                        phase=None,
                        attempt=0,
                        key=hotfix_id,
                        payload=_dumps(payload),
                    )
                )
                announce(conn, hotfix_id)
        except IntegrityError as exc:
            raise StoreError(
                f"a hotfix with id {hotfix_id!r} already exists",
                hotfix_id=hotfix_id,
                hint=f"`hotfix status {hotfix_id}` shows it; ids carry the start time to "
                "the second, so wait a second to start another",
            ) from exc
        return self.get(hotfix_id)

    def acquire_lease(
        self, hotfix_id: str, owner: str, *, ttl: float = 30.0, take_over: bool = False
    ) -> Lease:
        """Take the hotfix's lease, bumping the fencing token; refuse a live foreign lease."""
        now = time.time()
        with self._writing() as conn:
            row = conn.execute(
                select(
                    self._t.c.lease_owner,
                    self._t.c.lease_expires_at,
                    self._t.c.lease_acquired_at,
                    self._t.c.fencing_token,
                )
                .where(self._t.c.id == hotfix_id)
                .with_for_update()  # PostgreSQL: row lock; SQLite: BEGIN IMMEDIATE already
            ).first()
            if row is None:
                raise NotFound(f"no hotfix {hotfix_id!r} in this store", hotfix_id=hotfix_id)
            live = row.lease_owner and (row.lease_expires_at or 0) > now
            if (
                live
                and row.lease_owner != owner
                and not take_over
                and not holder_is_dead(row.lease_owner)
            ):
                since = time.strftime(
                    "%Y-%m-%d %H:%M:%S UTC", time.gmtime(row.lease_acquired_at or now)
                )
                raise LeaseHeld(
                    f"another driver holds this hotfix: {row.lease_owner} (since {since}, "
                    f"lease expires in {row.lease_expires_at - now:.0f}s)",
                    hotfix_id=hotfix_id,
                    hint="wait for it to finish or its lease to expire; if that machine is gone, "
                    "resume with --take-over",
                )
            token = row.fencing_token + 1
            result = conn.execute(
                update(self._t)
                .where(self._t.c.id == hotfix_id, self._t.c.fencing_token == row.fencing_token)
                .values(
                    lease_owner=owner,
                    lease_acquired_at=now,
                    lease_expires_at=now + ttl,
                    fencing_token=token,
                )
            )
            if result.rowcount != 1:
                raise LeaseHeld(
                    "another driver took this hotfix at the same instant",
                    hotfix_id=hotfix_id,
                    hint="run `hotfix status` to see who drives it",
                )
            announce(conn, hotfix_id)
        return Lease(hotfix_id=hotfix_id, owner=owner, token=token, ttl=ttl)

    def renew_lease(self, lease: Lease) -> bool:
        """Extend the lease; False when it was taken over (the driver must stop)."""
        with self._writing() as conn:
            result = conn.execute(
                update(self._t)
                .where(self._fenced(lease))
                .values(lease_expires_at=time.time() + lease.ttl)
            )
            return bool(result.rowcount == 1)

    def release_lease(self, lease: Lease) -> None:
        with self._writing() as conn:
            conn.execute(
                update(self._t)
                .where(self._fenced(lease))
                .values(lease_owner=None, lease_expires_at=None, lease_acquired_at=None)
            )
            announce(conn, lease.hotfix_id)

    def checkpoint(
        self,
        lease: Lease,
        entries: Iterable[Entry],
        **changes: Any,
    ) -> int:
        """Append ``entries`` and apply ``changes`` to the hotfix row, if the lease still holds.

        ``changes`` may hold ``state``, ``failed_from``, ``paused_reason``, ``paused_gate``,
        ``error``, ``context`` and ``options`` (dicts, replaced whole; or their ``to_json``
        text, which the journal writer hands over when it has serialised it already). Returns
        the last
        sequence number.
        """
        return self._append(list(entries), changes, lease)

    def append(self, hotfix_id: str, entries: Iterable[Entry], **changes: Any) -> int:
        """An unfenced append, for records made outside a driver (approvals, notes)."""
        return self._append(list(entries), changes, None, hotfix_id=hotfix_id)

    def _append(
        self,
        entries: list[Entry],
        changes: dict[str, Any],
        lease: Lease | None,
        *,
        hotfix_id: str | None = None,
    ) -> int:
        hid = lease.hotfix_id if lease else hotfix_id
        if hid is None:
            raise ValueError("an unfenced append needs a hotfix id")
        now = time.time()
        params: dict[str, Any] = {"hid": hid, "n": len(entries), "now": now}
        for key, value in changes.items():
            serialise = key in ("context", "options") and not isinstance(value, str)
            params[f"v_{key}"] = _dumps(value) if serialise else value
        if lease is not None:
            params.update(tok=lease.token, owner=lease.owner, exp=now + lease.ttl)
        finishing = changes.get("state") in FINISHED_STATES
        statement = self._update_statement(
            tuple(sorted(changes)), fenced=lease is not None, finishing=finishing
        )
        if self._sqlite:
            last = self._append_sqlite(statement, params, entries, hid, now)
        else:
            last = self._append_sqlalchemy(statement.clause, params, entries, hid, now)
        if last is None:
            if lease is None:
                raise NotFound(f"no hotfix {hid!r} in this store", hotfix_id=hid)
            raise LeaseLost(
                "this driver lost its lease on the hotfix (another driver took it over); "
                "nothing was written",
                hotfix_id=hid,
                hint="run `hotfix status` to see who drives it now",
            )
        return last

    def _kept_connection(self) -> sqlite3.Connection:
        """The checkpoints' ``sqlite3`` connection (call with ``_kept_lock`` held): taken out
        of the engine's pool once, with the pragmas its connect listener set."""
        pid = _process[0]
        if self._kept is not None and self._kept[0] == pid:
            return self._kept[1]
        # None yet, or inherited through fork: a child never uses its parent's connection.
        self._kept = None
        try:
            fairy = self.engine.raw_connection()
        except (DBAPIError, sqlite3.Error) as exc:
            error = exc if isinstance(exc, DBAPIError) else _wrapped(None, None, exc)
            raise store_error(
                error, self._safe_url, writing=True, live_drivers=self._live_drivers
            ) from exc
        conn = cast(sqlite3.Connection, fairy.driver_connection)
        fairy.detach()  # the store owns it now: the pool neither resets nor closes it
        self._kept = (pid, conn)
        return conn

    def _close_kept(self, _engine: Engine | None = None) -> None:
        """Close the checkpoints' connection (the engine was disposed, or it failed)."""
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == _process[0]:
            kept[1].close()

    def _append_sqlite(
        self, statement: _Update, params: dict[str, Any], entries: list[Entry], hid: str, now: float
    ) -> int | None:
        """The checkpoint on the store's ``sqlite3`` connection: ``BEGIN IMMEDIATE``, the
        fenced UPDATE, the SELECT of the sequence it reserved, the INSERT, ``COMMIT`` —
        nothing written when the fence refuses. One checkpoint at a time per store: they
        would queue on SQLite's write lock anyway, and this way they wait on a lock rather
        than poll the busy timeout."""
        with self._kept_lock:
            conn = self._kept_connection()
            try:
                args = [params[name] for name in statement.order]
                conn.execute("BEGIN IMMEDIATE")
                try:
                    # The fence: no row matched, nothing is written. Then the new sequence,
                    # read in the same transaction: cheaper than SQLite's RETURNING, which
                    # gathers its rows in a temporary table first (about 1 µs a checkpoint).
                    if conn.execute(statement.qmark, args).rowcount != 1:
                        conn.execute("ROLLBACK")
                        return None
                    found = conn.execute(_SEQUENCE_SQL, (hid,)).fetchone()
                    last = int(found[0])
                    if _reopened(params, found[1]):
                        conn.execute(_REOPEN_SQL, params)
                    first = last - len(entries) + 1
                    rows = [
                        (hid, first + i, now, e.kind, e.phase, e.attempt, e.key, _dumps(e.payload))
                        for i, e in enumerate(entries)
                    ]
                    if len(rows) == 1:  # the usual checkpoint: execute() binds it directly
                        conn.execute(_INSERT_JOURNAL_QMARK, rows[0])
                    elif rows:
                        conn.executemany(_INSERT_JOURNAL_QMARK, rows)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                wrapped = _wrapped(statement.qmark, params, exc)
                if isinstance(wrapped, IntegrityError):
                    raise wrapped from exc
                self._close_kept()  # the next checkpoint starts on a new connection
                raise store_error(
                    wrapped, self._safe_url, writing=True, live_drivers=self._live_drivers
                ) from exc
        return last

    def _append_sqlalchemy(
        self,
        statement: TextClause,
        params: dict[str, Any],
        entries: list[Entry],
        hid: str,
        now: float,
    ) -> int | None:
        with self._writing() as conn:
            found = conn.execute(statement, params).first()
            if found is None or found[0] is None:  # the UPDATE matched nothing: nothing written
                return None
            last = found[0]
            if _reopened(params, found[1]):
                conn.execute(text(_REOPEN_SQL), params)
            first = last - len(entries) + 1
            if entries:
                conn.execute(
                    _INSERT_JOURNAL,
                    [
                        {
                            "hotfix_id": hid,
                            "seq": first + i,
                            "at": now,
                            "kind": e.kind,
                            "phase": e.phase,
                            "attempt": e.attempt,
                            "key": e.key,
                            "payload": _dumps(e.payload),
                        }
                        for i, e in enumerate(entries)
                    ],
                )
            announce(conn, hid)
        return int(last)

    def _update_statement(
        self, columns: tuple[str, ...], *, fenced: bool, finishing: bool
    ) -> _Update:
        """The checkpoint's conditional UPDATE for this set of changed columns, built once.

        Plain SQL with bound parameters: building a Core expression per checkpoint cost
        more than the commit itself. Column names come from the model, never from input.
        ``finished_at`` is set only by the UPDATE that finishes the hotfix: naming it in any
        other would rewrite the partial indexes' pages (see FINISHED_STATES).
        """
        key = (columns, fenced, finishing)
        found = self._statements.get(key)
        if found is not None:
            return found
        unknown = set(columns) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable hotfix columns: {sorted(unknown)}")
        sets = [("last_seq", "last_seq + {}", "n"), ("updated_at", "{}", "now")]
        sets += [(c, "{}", f"v_{c}") for c in columns]
        if finishing:
            sets.append(("finished_at", "{}", "now"))
        where = [("id", "hid")]
        if fenced:
            sets.append(("lease_expires_at", "{}", "exp"))
            where += [("fencing_token", "tok"), ("lease_owner", "owner")]

        def sql(mark: Callable[[str], str]) -> str:
            assigned = ", ".join(f"{c} = {value.format(mark(p))}" for c, value, p in sets)
            matched = " AND ".join(f"{c} = {mark(p)}" for c, p in where)
            return f"UPDATE hotfixes SET {assigned} WHERE {matched}"  # noqa: S608

        statement = _Update(
            clause=text(sql(lambda p: f":{p}") + " RETURNING last_seq, finished_at"),
            qmark=sql(lambda _p: "?"),
            order=tuple(p for _c, _v, p in sets) + tuple(p for _c, p in where),
        )
        self._statements[key] = statement
        return statement

    def _fenced(self, lease: Lease) -> Any:
        return and_(
            self._t.c.id == lease.hotfix_id,
            self._t.c.fencing_token == lease.token,
            self._t.c.lease_owner == lease.owner,
        )

    # -- transactions --------------------------------------------------------------------

    def _reading(self) -> Any:
        return _Guard(self.engine.connect(), self._safe_url, False, self._live_drivers)

    def _writing(self) -> Any:
        return _Guard(self._writer.begin(), self._safe_url, True, self._live_drivers)

    def _live_drivers(self) -> list[tuple[str, str]]:
        """(hotfix id, lease owner) of every live lease, to name who may hold a lock; a
        plain read, which a writer's lock does not block (WAL)."""
        t = self._t
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.id, t.c.lease_owner).where(
                    t.c.lease_owner.is_not(None), t.c.lease_expires_at > time.time()
                )
            ).all()
        return [(str(r.id), str(r.lease_owner)) for r in rows]


class _Guard:
    """Turns driver errors (locked, read-only, disk full, corrupt) into a StoreError."""

    def __init__(
        self, ctx: Any, url: str, writing: bool, live_drivers: LiveDrivers | None = None
    ) -> None:
        self._ctx = ctx
        self._url = url
        self._writing = writing
        self._live_drivers = live_drivers

    def _error(self, exc: DBAPIError) -> StoreError:
        return store_error(exc, self._url, writing=self._writing, live_drivers=self._live_drivers)

    def __enter__(self) -> Any:
        try:
            return self._ctx.__enter__()
        except DBAPIError as exc:
            raise self._error(exc) from exc

    def __exit__(self, et: Any, ev: Any, tb: Any) -> Literal[False]:
        try:
            self._ctx.__exit__(et, ev, tb)
        except DBAPIError as exc:
            raise self._error(exc) from exc
        if isinstance(ev, DBAPIError) and not isinstance(ev, IntegrityError):
            raise self._error(ev) from ev
        return False


def store_error(
    exc: DBAPIError, url: str, *, writing: bool, live_drivers: LiveDrivers | None = None
) -> StoreError:
    """A StoreError saying what the driver error means (read-only, disk full, locked and by
    whom, damaged), where the store is, and what to do about it."""
    return describe(exc, url, writing=writing, live_drivers=live_drivers)
