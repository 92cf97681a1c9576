"""Alembic environment: runs on the connection the store hands over (no ini file needed)."""

from __future__ import annotations

from alembic import context

from hotfix_fsm.store.models import with_indexes

config = context.config
metadata = with_indexes()
connection = config.attributes.get("connection")
if connection is None:  # invoked from the alembic CLI: build an engine from the URL
    from hotfix_fsm.store.engine import make_engine, resolve_url

    engine = make_engine(resolve_url(config.get_main_option("sqlalchemy.url") or None))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
