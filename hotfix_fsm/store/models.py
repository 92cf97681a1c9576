"""SQLAlchemy 2 models: hotfixes (with lease columns) and the append-only journal."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class HotfixRow(Base):
    """One hotfix: where it stands, what it learned, and who drives it."""

    __tablename__ = "hotfixes"

    id: Mapped[str] = mapped_column(String(160), primary_key=True)
    issue: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text)
    repo: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(64))
    failed_from: Mapped[str | None] = mapped_column(String(64))
    paused_reason: Mapped[str | None] = mapped_column(Text)
    paused_gate: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    context: Mapped[str] = mapped_column(Text, default="{}")  # JSON: facts phases recorded
    options: Mapped[str] = mapped_column(Text, default="{}")  # JSON: how it was started
    graph_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The lease: at most one driver; every checkpoint is conditional on fencing_token.
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_acquired_at: Mapped[float | None] = mapped_column(Float)
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    fencing_token: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (
        # `list`/`resume`: unfinished hotfixes newest first; preflight: active one per issue.
        Index("ix_hotfixes_state_updated", "state", "updated_at"),
        Index("ix_hotfixes_updated", "updated_at"),
        Index("ix_hotfixes_issue_state", "issue", "state"),
        Index(
            "ix_hotfixes_unfinished_updated",
            "updated_at",
            sqlite_where=text("state NOT IN ('done', 'cancelled', 'rolled_back')"),
            postgresql_where=text("state NOT IN ('done', 'cancelled', 'rolled_back')"),
        ),
    )


class JournalRow(Base):
    """An append-only event; ``seq`` is gapless per hotfix."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    hotfix_id: Mapped[str] = mapped_column(
        String(160), ForeignKey("hotfixes.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str | None] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    key: Mapped[str | None] = mapped_column(Text)  # idempotency key of the effect
    payload: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (
        UniqueConstraint("hotfix_id", "seq", name="uq_journal_hotfix_seq"),
        # The runner reads a phase's latest rows; monitor resumes from its measurements.
        Index("ix_journal_hotfix_phase_seq", "hotfix_id", "phase", "seq"),
    )
