"""Alembic migrations of the hotfix store, shipped inside the wheel as ``hotfix_fsm.migrations``."""
