"""``python -m hotfix_fsm.cli``: the same entry point as the ``hotfix`` console script."""

from hotfix_fsm.cli.command import main

if __name__ == "__main__":
    main()
