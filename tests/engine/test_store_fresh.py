"""A new SQLite store is made without Alembic, from statements the migrations give."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from hotfix_fsm.store import fresh
from hotfix_fsm.store.engine import HEAD_REVISION, make_engine, migrations_dir, open_engine, upgrade


def schema(db: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
        ).fetchall()
        tables = {name for kind, name, _, _ in rows if kind == "table"}
        versions = (
            conn.execute("SELECT version_num FROM alembic_version").fetchall()
            if "alembic_version" in tables
            else []
        )
    conn.close()
    return [*rows, ("alembic_version", "", "", ",".join(v for (v,) in versions))]


def test_the_statements_are_what_the_migrations_give_now() -> None:
    assert fresh.REVISION == HEAD_REVISION
    assert fresh.offline_statements(migrations_dir()) == fresh.STATEMENTS, (
        "a migration changed: replace fresh.STATEMENTS with the tuple printed by "
        "fresh.offline_statements(migrations_dir())"
    )


def test_a_fresh_store_has_the_schema_alembic_gives_it(tmp_path: Path) -> None:
    by_alembic = tmp_path / "alembic.db"
    engine = make_engine(f"sqlite:///{by_alembic}")
    upgrade(engine)
    engine.dispose()
    made_fresh = tmp_path / "fresh.db"
    open_engine(made_fresh).dispose()
    expected = schema(by_alembic)
    assert [row[1] for row in expected if row[0] == "index"]  # indexes are compared too
    assert schema(made_fresh) == expected
    assert expected[-1][-1] == HEAD_REVISION


def test_opening_a_new_store_does_not_import_alembic(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from hotfix_fsm.store import open_store\n"
        "store = open_store(sys.argv[1])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    db = tmp_path / "new.db"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(db)], capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "[]"
    assert schema(db)[-1][-1] == HEAD_REVISION


def test_a_database_holding_tables_is_left_to_alembic(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    engine = make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        assert not fresh.create_if_empty(conn)
    engine.dispose()
    assert [row[1] for row in schema(db) if row[0] == "table"] == ["notes"]
    open_engine(db).dispose()  # Alembic adds the store's tables beside it, as before
    tables = sorted(row[1] for row in schema(db) if row[0] == "table")
    assert tables == ["alembic_version", "hotfixes", "journal", "notes"]
