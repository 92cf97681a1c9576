"""A checkpoint that writes two pages: the hotfix row and the journal row.

Every checkpoint sets the hotfix row's ``updated_at`` (and mostly ``state``), and SQLite
rewrites an index page for each index holding one of them, or whose ``WHERE`` reads one,
even when the value is unchanged; the journal row cost three pages (the table, the
``(hotfix_id, seq)`` unique index and the phase index). A checkpoint wrote 6 pages.

* ``finished_at`` is set once, when a hotfix reaches done, cancelled or rolled back (the
  graph has no edge out of them). "Unfinished" is ``finished_at IS NULL``, and the indexes
  read only that and columns a checkpoint does not change: unfinished hotfixes by
  ``created_at`` (they are few; their recency order is a sort of those few rows), finished
  ones by ``updated_at`` (a row outside a partial index costs its checkpoints nothing).
* The journal is keyed by ``(hotfix_id, seq)``: one B-tree, WITHOUT ROWID on SQLite, where
  a hotfix's rows sit together in order. It replaces the unique index, and the phase index
  (a phase's rows are found among its hotfix's own). The surrogate ``id`` is gone.

Revision ID: 0004_two_page_checkpoint
Revises: 0003_lean_checkpoint
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_two_page_checkpoint"
down_revision = "0003_lean_checkpoint"
branch_labels = None
depends_on = None

# Must match hotfix_fsm.store.repository's UNFINISHED_SQL / FINISHED_SQL word for word, or
# SQLite's planner will not use the partial indexes.
UNFINISHED_SQL = "finished_at IS NULL"
FINISHED_SQL = "finished_at IS NOT NULL"
JOURNAL_COLUMNS = 'hotfix_id, seq, at, kind, phase, attempt, "key", payload'


def _partial(where: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def _entry_columns() -> list[sa.Column[object]]:
    """A journal row's columns after its hotfix id, as both layouts hold them."""
    return [
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(64)),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text()),
        sa.Column("payload", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("hotfixes", sa.Column("finished_at", sa.Float()))
    op.execute(
        "UPDATE hotfixes SET finished_at = updated_at "
        "WHERE state IN ('done', 'cancelled', 'rolled_back')"
    )
    op.drop_index("ix_hotfixes_unfinished_updated", table_name="hotfixes")
    op.drop_index("ix_hotfixes_updated", table_name="hotfixes")
    op.create_index(
        "ix_hotfixes_unfinished", "hotfixes", ["created_at"], **_partial(UNFINISHED_SQL)
    )
    op.create_index(
        "ix_hotfixes_finished_updated", "hotfixes", ["updated_at"], **_partial(FINISHED_SQL)
    )

    op.create_table(
        "journal_keyed",
        sa.Column("hotfix_id", sa.String(160), nullable=False),
        *_entry_columns(),
        sa.PrimaryKeyConstraint("hotfix_id", "seq", name="pk_journal"),
        sa.ForeignKeyConstraint(
            ["hotfix_id"], ["hotfixes.id"], name="fk_journal_hotfix", ondelete="CASCADE"
        ),
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO journal_keyed ({JOURNAL_COLUMNS}) "  # noqa: S608 - constant text
        f"SELECT {JOURNAL_COLUMNS} FROM journal"
    )
    op.drop_table("journal")
    op.rename_table("journal_keyed", "journal")


def downgrade() -> None:
    op.create_table(
        "journal_numbered",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "hotfix_id",
            sa.String(160),
            sa.ForeignKey("hotfixes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        *_entry_columns(),
        sa.UniqueConstraint("hotfix_id", "seq", name="uq_journal_hotfix_seq"),
    )
    op.execute(
        f"INSERT INTO journal_numbered ({JOURNAL_COLUMNS}) "  # noqa: S608 - constant text
        f"SELECT {JOURNAL_COLUMNS} FROM journal ORDER BY hotfix_id, seq"
    )
    op.drop_table("journal")
    op.rename_table("journal_numbered", "journal")
    op.create_index("ix_journal_hotfix_phase_seq", "journal", ["hotfix_id", "phase", "seq"])

    op.drop_index("ix_hotfixes_finished_updated", table_name="hotfixes")
    op.drop_index("ix_hotfixes_unfinished", table_name="hotfixes")
    op.create_index("ix_hotfixes_updated", "hotfixes", ["updated_at"])
    op.create_index(
        "ix_hotfixes_unfinished_updated",
        "hotfixes",
        ["updated_at"],
        **_partial("state NOT IN ('done', 'cancelled', 'rolled_back')"),
    )
    op.drop_column("hotfixes", "finished_at")
