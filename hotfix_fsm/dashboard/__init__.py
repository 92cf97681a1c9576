"""``hotfix dashboard``: a read-only, live web page over the store (``server``, ``page``,
``watch``).

Only the command (``hotfix_fsm.cli.dashboard``) imports this package; it imports no command,
runner, recovery or adapter code (import-linter contracts in pyproject.toml).
"""
