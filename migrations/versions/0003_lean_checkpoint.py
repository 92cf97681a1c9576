"""Fewer hotfix indexes for a checkpoint to keep up to date.

Every checkpoint changes the hotfix row's ``state`` and ``updated_at``, so SQLite rewrites a
page of every index holding either column, one more page in each commit's WAL write.
``ix_hotfixes_state_updated`` served no query since 0002 (unfinished hotfixes are found
through ``ix_hotfixes_unfinished_updated``), and the issue lookups (``find`` by issue,
``active_for_issue``) need only the issue: a hotfix's few rows are filtered by state after
the lookup. A checkpoint now writes 6 WAL pages, down from 8.

Revision ID: 0003_lean_checkpoint
Revises: 0002_active_hotfixes
"""

from __future__ import annotations

from alembic import op

revision = "0003_lean_checkpoint"
down_revision = "0002_active_hotfixes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_hotfixes_state_updated", table_name="hotfixes")
    op.drop_index("ix_hotfixes_issue_state", table_name="hotfixes")
    op.create_index("ix_hotfixes_issue", "hotfixes", ["issue"])


def downgrade() -> None:
    op.drop_index("ix_hotfixes_issue", table_name="hotfixes")
    op.create_index("ix_hotfixes_issue_state", "hotfixes", ["issue", "state"])
    op.create_index("ix_hotfixes_state_updated", "hotfixes", ["state", "updated_at"])
