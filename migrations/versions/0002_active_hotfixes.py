"""A partial index over unfinished hotfixes, newest first.

`hotfix list` and `hotfix resume` (with no id) look for unfinished hotfixes by recency; in a
store where nearly every hotfix is finished, the plain ``updated_at`` index makes them walk
past all the finished ones. The partial index holds only the few that matter.

Revision ID: 0002_active_hotfixes
Revises: 0001_initial
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_active_hotfixes"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# Must match hotfix_fsm.store.repository.UNFINISHED_SQL word for word, or SQLite's planner
# will not use the index.
UNFINISHED_SQL = "state NOT IN ('done', 'cancelled', 'rolled_back')"


def upgrade() -> None:
    op.create_index(
        "ix_hotfixes_unfinished_updated",
        "hotfixes",
        ["updated_at"],
        sqlite_where=sa.text(UNFINISHED_SQL),
        postgresql_where=sa.text(UNFINISHED_SQL),
    )


def downgrade() -> None:
    op.drop_index("ix_hotfixes_unfinished_updated", table_name="hotfixes")
