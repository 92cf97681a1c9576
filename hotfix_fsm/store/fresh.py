"""A new, empty SQLite store brought to head without importing Alembic.

Importing Alembic (with Mako and, through Mako, Pygments) costs a first ``hotfix start``
about 12 MB and 90 ms, only to create three tables. ``STATEMENTS`` are the statements
Alembic's offline mode writes for upgrading an empty SQLite database from nothing to
``REVISION`` (``alembic upgrade head --sql``), every migration in turn, the
``alembic_version`` writes included. They are generated from the migrations, which stay the
one source of the schema: ``tests/engine/test_store.py`` checks that ``offline_statements()``
still gives exactly these, and that a store made from them has the schema, indexes and
revision of one Alembic upgraded. Any store that is not empty, and every PostgreSQL store,
is upgraded by Alembic as before.

After changing a migration, print the new tuple with
``python -c "from hotfix_fsm.store import engine, fresh;
print(fresh.offline_statements(engine.migrations_dir()))"``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect

REVISION = "0004_two_page_checkpoint"

STATEMENTS: tuple[str, ...] = (
    "CREATE TABLE alembic_version (\n"
    "\tversion_num VARCHAR(32) NOT NULL, \n"
    "\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n"
    ")\n\n",
    "CREATE TABLE hotfixes (\n"
    "\tid VARCHAR(160) NOT NULL, \n"
    "\tissue VARCHAR(128) NOT NULL, \n"
    "\tdescription TEXT NOT NULL, \n"
    "\trepo TEXT NOT NULL, \n"
    "\tstate VARCHAR(64) NOT NULL, \n"
    "\tfailed_from VARCHAR(64), \n"
    "\tpaused_reason TEXT, \n"
    "\tpaused_gate VARCHAR(32), \n"
    "\terror TEXT, \n"
    "\tcontext TEXT NOT NULL, \n"
    "\toptions TEXT NOT NULL, \n"
    "\tgraph_hash VARCHAR(64) NOT NULL, \n"
    "\tcreated_at FLOAT NOT NULL, \n"
    "\tupdated_at FLOAT NOT NULL, \n"
    "\tlast_seq BIGINT NOT NULL, \n"
    "\tlease_owner VARCHAR(255), \n"
    "\tlease_acquired_at FLOAT, \n"
    "\tlease_expires_at FLOAT, \n"
    "\tfencing_token BIGINT NOT NULL, \n"
    "\tPRIMARY KEY (id)\n"
    ")\n\n",
    "CREATE INDEX ix_hotfixes_state_updated ON hotfixes (state, updated_at)",
    "CREATE INDEX ix_hotfixes_updated ON hotfixes (updated_at)",
    "CREATE INDEX ix_hotfixes_issue_state ON hotfixes (issue, state)",
    "CREATE TABLE journal (\n"
    "\tid INTEGER NOT NULL, \n"
    "\thotfix_id VARCHAR(160) NOT NULL, \n"
    "\tseq BIGINT NOT NULL, \n"
    "\tat FLOAT NOT NULL, \n"
    "\tkind VARCHAR(32) NOT NULL, \n"
    "\tphase VARCHAR(64), \n"
    "\tattempt INTEGER NOT NULL, \n"
    '\t"key" TEXT, \n'
    "\tpayload TEXT NOT NULL, \n"
    "\tPRIMARY KEY (id), \n"
    "\tCONSTRAINT uq_journal_hotfix_seq UNIQUE (hotfix_id, seq), \n"
    "\tFOREIGN KEY(hotfix_id) REFERENCES hotfixes (id) ON DELETE CASCADE\n"
    ")\n\n",
    "CREATE INDEX ix_journal_hotfix_phase_seq ON journal (hotfix_id, phase, seq)",
    "INSERT INTO alembic_version (version_num) VALUES ('0001_initial') RETURNING version_num",
    "CREATE INDEX ix_hotfixes_unfinished_updated ON hotfixes (updated_at) WHERE "
    "state NOT IN ('done', 'cancelled', 'rolled_back')",
    "UPDATE alembic_version SET version_num='0002_active_hotfixes' WHERE "
    "alembic_version.version_num = '0001_initial'",
    "DROP INDEX ix_hotfixes_state_updated",
    "DROP INDEX ix_hotfixes_issue_state",
    "CREATE INDEX ix_hotfixes_issue ON hotfixes (issue)",
    "UPDATE alembic_version SET version_num='0003_lean_checkpoint' WHERE "
    "alembic_version.version_num = '0002_active_hotfixes'",
    "ALTER TABLE hotfixes ADD COLUMN finished_at FLOAT",
    "UPDATE hotfixes SET finished_at = updated_at WHERE state IN ('done', "
    "'cancelled', 'rolled_back')",
    "DROP INDEX ix_hotfixes_unfinished_updated",
    "DROP INDEX ix_hotfixes_updated",
    "CREATE INDEX ix_hotfixes_unfinished ON hotfixes (created_at) WHERE finished_at IS NULL",
    "CREATE INDEX ix_hotfixes_finished_updated ON hotfixes (updated_at) WHERE "
    "finished_at IS NOT NULL",
    "CREATE TABLE journal_keyed (\n"
    "\thotfix_id VARCHAR(160) NOT NULL, \n"
    "\tseq BIGINT NOT NULL, \n"
    "\tat FLOAT NOT NULL, \n"
    "\tkind VARCHAR(32) NOT NULL, \n"
    "\tphase VARCHAR(64), \n"
    "\tattempt INTEGER NOT NULL, \n"
    '\t"key" TEXT, \n'
    "\tpayload TEXT NOT NULL, \n"
    "\tCONSTRAINT pk_journal PRIMARY KEY (hotfix_id, seq), \n"
    "\tCONSTRAINT fk_journal_hotfix FOREIGN KEY(hotfix_id) REFERENCES hotfixes (id) "
    "ON DELETE CASCADE\n"
    ")\n"
    " WITHOUT ROWID\n\n",
    'INSERT INTO journal_keyed (hotfix_id, seq, at, kind, phase, attempt, "key", '
    'payload) SELECT hotfix_id, seq, at, kind, phase, attempt, "key", payload FROM journal',
    "DROP TABLE journal",
    "ALTER TABLE journal_keyed RENAME TO journal",
    "UPDATE alembic_version SET version_num='0004_two_page_checkpoint' WHERE "
    "alembic_version.version_num = '0003_lean_checkpoint'",
)


def create_if_empty(conn: Connection) -> bool:
    """Bring the SQLite database behind ``conn`` (in a write transaction) to ``REVISION``
    when it holds no table at all; False, touching nothing, otherwise."""
    if conn.dialect.name != "sqlite" or inspect(conn).get_table_names():
        return False
    for statement in STATEMENTS:
        conn.exec_driver_sql(statement).close()
    return True


def offline_statements(migrations: Path) -> tuple[str, ...]:
    """What Alembic's offline mode writes now, from the scripts in ``migrations``, for an
    empty SQLite database (this imports Alembic)."""
    import io

    from alembic import command
    from alembic.config import Config

    script = io.StringIO()
    config = Config(output_buffer=script)
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", "sqlite://")
    command.upgrade(config, "head", sql=True)
    statements = []
    for block in script.getvalue().split(";\n"):
        # The offline script shows SQLAlchemy's tab indents as four spaces; online, Alembic
        # runs them with tabs, which SQLite keeps in its schema text.
        lines = [
            "\t" + line[4:] if line.startswith("    ") else line
            for line in block.strip().splitlines()
            if not line.startswith("--")
        ]
        text = "\n".join(lines).strip()
        if text.startswith("CREATE TABLE"):
            # Online, SQLAlchemy ends a CREATE TABLE with two newlines. SQLite keeps them in
            # its schema text after a table option (WITHOUT ROWID), not after ")".
            text += "\n\n"
        if text:
            statements.append(text)
    return tuple(statements)
