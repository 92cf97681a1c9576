"""``hotfix adopt``: rebuild a hotfix from the git remote and GitHub when its database is lost.

Registered on the main app with ``register(app)``. Errors are ``HotfixError``s, which the
console script prints as what happened and what to do, with the documented exit codes (2 for
a bad argument, an unknown branch or a hotfix already in the store).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hotfix_fsm.cli.options import engine_of

if TYPE_CHECKING:
    from hotfix_fsm.store import Hotfix, JournalEntry


def adopt_command(
    ctx: typer.Context,
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            metavar="BRANCH",
            help="The hotfix branch, e.g. hotfix/INC-1-20250101-120000.",
        ),
    ] = None,
    issue: Annotated[
        str | None,
        typer.Option(
            "--issue", metavar="ISSUE", help="Adopt the most recent hotfix branch of this issue."
        ),
    ] = None,
    repo: Annotated[
        Path,
        typer.Option(
            "-C", "--repo", metavar="DIR", help="A clone of the repository (the work tree)."
        ),
    ] = Path("."),
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve the human gates automatically.")
    ] = False,
) -> None:
    """Rebuild a hotfix whose database is lost from its branch, PR, runs, merge and tags."""
    from hotfix_fsm.errors import UsageError
    from hotfix_fsm.recovery.adopt import adopt

    if bool(branch) == bool(issue):
        raise UsageError(
            "give exactly one of --branch and --issue",
            hint="`hotfix adopt --branch hotfix/INC-1-…` or `hotfix adopt --issue INC-1`",
        )
    with engine_of(ctx) as engine:
        hotfix = adopt(engine, repo_path=repo, branch=branch, issue=issue, yes=yes)
        journal = engine.store.journal(hotfix.id)
    _print(hotfix, journal)


def _print(hotfix: Hotfix, journal: list[JournalEntry]) -> None:
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.core.outcome import next_action_for

    note = next((e.payload for e in reversed(journal) if e.payload.get("kind") == "adopted"), {})
    echo(f"adopted hotfix {hotfix.id} ({hotfix.issue}) at state {hotfix.state}")
    echo(f"  branch: {hotfix.context.get('branch')}   work tree: {hotfix.repo}")
    for line in note.get("evidence") or []:
        echo(f"  seen: {line}")
    proven = ", ".join(note.get("proven") or []) or "-"
    implied = ", ".join(note.get("implied") or []) or "-"
    echo(f"  proven by the world: {proven}")
    echo(f"  implied (no trace of their own): {implied}")
    echo("  the journal marks every rebuilt row as inferred; resuming probes the rest")
    echo(f"  next: {next_action_for(hotfix)}")


def register(app: typer.Typer) -> None:
    """Attach ``adopt`` to the main app."""
    app.command("adopt")(adopt_command)


__all__ = ["adopt_command", "register"]
