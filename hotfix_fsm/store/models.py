"""The tables, as SQLAlchemy Core: hotfixes (with lease columns) and the append-only journal.

Core ``Table`` objects rather than ORM classes: nothing maps rows to objects (the repository
reads and writes columns), and ``sqlalchemy.orm`` is a large import every command would pay.

The indexes are the migrations' business (0001 to 0004) and queries do not name them; they are
declared here in ``with_indexes()`` for Alembic's comparison (``migrations/env.py``) only,
because a ``postgresql_where`` option loads the PostgreSQL dialect (and asyncio) into every
command, SQLite users' included.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

# One hotfix: where it stands, what it learned, and who drives it.
hotfixes = Table(
    "hotfixes",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("issue", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("repo", Text, nullable=False),
    Column("state", String(64), nullable=False),
    Column("failed_from", String(64)),
    Column("paused_reason", Text),
    Column("paused_gate", String(32)),
    Column("error", Text),
    Column("context", Text, nullable=False, default="{}"),  # JSON: facts phases recorded
    Column("options", Text, nullable=False, default="{}"),  # JSON: how it was started
    Column("graph_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    # The lease: at most one driver; every checkpoint is conditional on fencing_token.
    Column("lease_owner", String(255)),
    Column("lease_acquired_at", Float),
    Column("lease_expires_at", Float),
    Column("fencing_token", BigInteger, nullable=False, default=0),
    # Set once, when the state becomes done, cancelled or rolled back: the partial indexes
    # read it (not ``state``), so a checkpoint of an unfinished hotfix touches none of them.
    Column("finished_at", Float),
)

# An append-only event; ``seq`` is gapless per hotfix. Keyed by (hotfix_id, seq): a hotfix's
# rows sit together in order, in one B-tree (WITHOUT ROWID on SQLite, migration 0004).
journal = Table(
    "journal",
    metadata,
    Column(
        "hotfix_id",
        String(160),
        ForeignKey("hotfixes.id", ondelete="CASCADE", name="fk_journal_hotfix"),
        nullable=False,
    ),
    Column("seq", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("phase", String(64)),
    Column("attempt", Integer, nullable=False, default=0),
    Column("key", Text),  # idempotency key of the effect
    Column("payload", Text, nullable=False, default="{}"),
    PrimaryKeyConstraint("hotfix_id", "seq", name="pk_journal"),
)

_indexed: list[bool] = []


def with_indexes() -> MetaData:
    """The metadata with the indexes the migrations create (for Alembic's comparison)."""
    if not _indexed:
        unfinished = "finished_at IS NULL"
        finished = "finished_at IS NOT NULL"
        # An index holding a column a checkpoint sets (``state``, ``updated_at``), or whose
        # WHERE reads one, costs every checkpoint another WAL page, even for an unchanged
        # value; a row its WHERE leaves out costs nothing (migration 0004).
        # `list`/`resume`: the few unfinished hotfixes (sorted by recency after the lookup);
        # `list --all`: finished ones newest first; preflight and `status ISSUE`: by issue.
        Index("ix_hotfixes_issue", hotfixes.c.issue)
        Index(
            "ix_hotfixes_unfinished",
            hotfixes.c.created_at,
            sqlite_where=text(unfinished),
            postgresql_where=text(unfinished),
        )
        Index(
            "ix_hotfixes_finished_updated",
            hotfixes.c.updated_at,
            sqlite_where=text(finished),
            postgresql_where=text(finished),
        )
        _indexed.append(True)
    return metadata
