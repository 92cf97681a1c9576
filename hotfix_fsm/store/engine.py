"""Open the store: resolve the URL, set SQLite's pragmas, migrate on open.

SQLite gets WAL, ``synchronous=FULL`` (a laptop losing power must not lose a committed
checkpoint), a busy timeout, foreign keys and ``BEGIN IMMEDIATE`` for every transaction, all
in one connect listener. The schema revision is checked with one plain query so start-up
does not import Alembic unless the database actually needs an upgrade; a new, empty SQLite
store is made at head from the statements the migrations give (``fresh``), without it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, OperationalError

from hotfix_fsm.errors import SchemaTooNew, StoreError
from hotfix_fsm.store import fresh
from hotfix_fsm.store.faults import describe, sqlite_path

# Newest first; the first entry is the head this code writes. Kept in step with
# migrations/versions (a test checks it) so opening needs no Alembic import.
KNOWN_REVISIONS: tuple[str, ...] = (
    "0004_two_page_checkpoint",
    "0003_lean_checkpoint",
    "0002_active_hotfixes",
    "0001_initial",
)
HEAD_REVISION = KNOWN_REVISIONS[0]
BUSY_TIMEOUT_MS = 10_000
_UPGRADE_LOCK = threading.RLock()


def default_db_path() -> Path:
    """``$XDG_STATE_HOME/hotfix_fsm/hotfix.db`` (``~/.local/state`` when unset)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hotfix_fsm" / "hotfix.db"


def resolve_url(url: str | os.PathLike[str] | None = None) -> str:
    """An explicit URL or path wins, then ``HOTFIX_FSM_DB``, then the XDG default.

    Only the default location is created; a store path given by the user must be in a
    directory that exists, so a typo is an error naming the path rather than a new, empty
    store that says "no hotfixes in progress".
    """
    raw = os.fspath(url) if url is not None else os.environ.get("HOTFIX_FSM_DB") or None
    if raw is None:
        path = default_db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    if "://" not in raw:
        path = Path(raw).expanduser()
        _require_folder(path)
        return f"sqlite:///{path}"
    path_in_url = sqlite_path(raw)
    if path_in_url is not None:
        _require_folder(path_in_url)
    return raw


def _require_folder(path: Path) -> None:
    folder = path.parent
    if folder.is_dir():
        return
    problem = "is not a directory" if folder.exists() else "does not exist"
    raise StoreError(
        f"the store {path} cannot be used: its directory {folder} {problem}",
        hint="check --db (or HOTFIX_FSM_DB) for a typo; to start a new store there, create "
        f"the directory first (mkdir -p {folder}). Without either, the store is "
        f"{default_db_path()}",
    )


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    # Take over transaction control from the driver so ``BEGIN IMMEDIATE`` can be emitted.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


# A driver frozen inside a transaction (a suspended laptop, SIGSTOP, a stalled VM) would
# hold the hotfix row's lock until its TCP connection dies, and the driver that takes the
# hotfix over would wait on it. The store's transactions never wait on anything but the
# database, so PostgreSQL ends a session idle inside one after this long, freeing its locks.
IDLE_IN_TRANSACTION = "10s"


def _postgres_session(dbapi_conn: Any, _record: Any) -> None:
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True
    try:
        with dbapi_conn.cursor() as cur:
            cur.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
    finally:
        dbapi_conn.autocommit = autocommit


def _sqlite_begin(conn: Any) -> None:
    # Writers take the write lock up front, so they queue on the busy timeout instead of
    # failing a later lock upgrade; readers stay deferred and never block a writer (WAL).
    if conn.get_execution_options().get("hotfix_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine for ``url`` with the store's connection settings."""
    try:
        return _make_engine(url)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StoreError(
            f"cannot use the store URL {_safe_url(url)}: {exc}",
            hint="use a SQLite path, sqlite:///PATH, or postgresql+psycopg://USER@HOST/DB "
            "(pip install 'hotfix-fsm[postgres]')",
        ) from exc


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _postgres_session)
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrations_dir() -> Path:
    """Where the Alembic scripts are: beside this code in a source tree, else inside the
    installed package. The source tree goes first: an editable install of another checkout
    would otherwise lend its migrations (and its models) to this code."""
    from importlib import resources

    source = Path(__file__).resolve().parents[2]
    if (source / "pyproject.toml").is_file() and (source / "migrations" / "env.py").is_file():
        return source / "migrations"
    try:
        shipped = Path(str(resources.files("hotfix_fsm.migrations")))
        if (shipped / "env.py").exists():
            return shipped
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "migrations"


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply Alembic migrations up to ``revision`` over ``engine``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # Alembic's context and op proxies are process-global: one upgrade at a time.
    with _UPGRADE_LOCK:
        _upgrade_locked(cfg, engine, revision)


def _upgrade_locked(cfg: Any, engine: Engine, revision: str) -> None:
    from alembic import command

    # A write transaction: two processes opening a new store at once queue here, and the
    # second finds the schema already at head.
    with engine.execution_options(hotfix_write=True).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _create_fresh(engine: Engine) -> bool:
    """Make an empty SQLite store at head without Alembic (``fresh``); False when the
    database is not empty (or not SQLite), for Alembic to upgrade."""
    if engine.dialect.name != "sqlite" or fresh.REVISION != HEAD_REVISION:
        return False
    # The write transaction Alembic's upgrade takes: of two processes opening a new store at
    # once, the second finds the tables made and leaves them to Alembic, which finds head.
    with engine.execution_options(hotfix_write=True).begin() as conn:
        return fresh.create_if_empty(conn)


def open_engine(url: str | os.PathLike[str] | None = None, *, migrate: bool = True) -> Engine:
    """Open (creating or upgrading) the store at ``url``; refuse a schema newer than this code."""
    resolved = resolve_url(url)
    engine = make_engine(resolved)
    # One opener at a time in this process: Alembic's proxies are process-global, and two
    # threads creating the same new store must not both try to create its tables.
    with _UPGRADE_LOCK:
        return _open_checked(engine, resolved, migrate=migrate)


def _open_checked(engine: Engine, resolved: str, *, migrate: bool) -> Engine:
    try:
        revision = current_revision(engine)
    except (OperationalError, DatabaseError) as exc:
        engine.dispose()
        raise describe(exc, _safe_url(resolved), writing=False) from exc
    if revision is not None and revision not in KNOWN_REVISIONS:
        engine.dispose()
        where = sqlite_path(resolved) or _safe_url(resolved)
        raise SchemaTooNew(
            f"the store {where} was written by a newer hotfix_fsm: its schema revision "
            f"{revision!r} is newer than this hotfix_fsm knows (up to {HEAD_REVISION!r})",
            hint="upgrade hotfix_fsm where you run this command (pip install -U hotfix-fsm), "
            "or give this version a store of its own with --db; the database was left untouched",
        )
    if revision != HEAD_REVISION:
        if not migrate:
            raise StoreError(f"the store at {_safe_url(resolved)} needs a schema upgrade")
        try:
            if revision is None and _create_fresh(engine):
                return engine
            upgrade(engine)
        except (OperationalError, DatabaseError) as exc:
            engine.dispose()
            raise describe(exc, _safe_url(resolved), writing=True) from exc
    return engine


def _safe_url(url: str) -> str:
    """The URL without a password, fit for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by scheme only
        return url.split("://", 1)[0] + "://…"
