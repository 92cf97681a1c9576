"""The first schema: hotfixes with lease columns, and the journal.

Revision ID: 0001_initial
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hotfixes",
        sa.Column("id", sa.String(160), primary_key=True),
        sa.Column("issue", sa.String(128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("state", sa.String(64), nullable=False),
        sa.Column("failed_from", sa.String(64)),
        sa.Column("paused_reason", sa.Text()),
        sa.Column("paused_gate", sa.String(32)),
        sa.Column("error", sa.Text()),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("graph_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_acquired_at", sa.Float()),
        sa.Column("lease_expires_at", sa.Float()),
        sa.Column("fencing_token", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_hotfixes_state_updated", "hotfixes", ["state", "updated_at"])
    op.create_index("ix_hotfixes_updated", "hotfixes", ["updated_at"])
    op.create_index("ix_hotfixes_issue_state", "hotfixes", ["issue", "state"])
    op.create_table(
        "journal",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "hotfix_id",
            sa.String(160),
            sa.ForeignKey("hotfixes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phase", sa.String(64)),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text()),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.UniqueConstraint("hotfix_id", "seq", name="uq_journal_hotfix_seq"),
    )
    op.create_index("ix_journal_hotfix_phase_seq", "journal", ["hotfix_id", "phase", "seq"])


def downgrade() -> None:
    op.drop_table("journal")
    op.drop_table("hotfixes")
