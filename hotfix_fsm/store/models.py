"""The tables, as SQLAlchemy Core: hotfixes (with lease columns) and the append-only journal.

Core ``Table`` objects rather than ORM classes: nothing maps rows to objects (the repository
reads and writes columns), and ``sqlalchemy.orm`` is a large import every command would pay.

The indexes are the migrations' business (0001 to 0003) and queries do not name them; they are
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
    String,
    Table,
    Text,
    UniqueConstraint,
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
)

# An append-only event; ``seq`` is gapless per hotfix.
journal = Table(
    "journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "hotfix_id",
        String(160),
        ForeignKey("hotfixes.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("seq", BigInteger, nullable=False),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("phase", String(64)),
    Column("attempt", Integer, nullable=False, default=0),
    Column("key", Text),  # idempotency key of the effect
    Column("payload", Text, nullable=False, default="{}"),
    UniqueConstraint("hotfix_id", "seq", name="uq_journal_hotfix_seq"),
)

_indexed: list[bool] = []


def with_indexes() -> MetaData:
    """The metadata with the indexes the migrations create (for Alembic's comparison)."""
    if not _indexed:
        unfinished = "state NOT IN ('done', 'cancelled', 'rolled_back')"
        # `list`/`resume`: unfinished hotfixes newest first; preflight: active one per issue.
        # Each index on ``state`` or ``updated_at`` costs every checkpoint one more WAL page:
        # hence only ``updated_at`` and the partial one below (migration 0003).
        Index("ix_hotfixes_updated", hotfixes.c.updated_at)
        Index("ix_hotfixes_issue", hotfixes.c.issue)
        Index(
            "ix_hotfixes_unfinished_updated",
            hotfixes.c.updated_at,
            sqlite_where=text(unfinished),
            postgresql_where=text(unfinished),
        )
        # The runner reads a phase's latest rows; monitor resumes from its measurements.
        Index("ix_journal_hotfix_phase_seq", journal.c.hotfix_id, journal.c.phase, journal.c.seq)
        _indexed.append(True)
    return metadata
