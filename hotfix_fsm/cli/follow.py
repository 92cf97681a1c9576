"""Following a hotfix from another terminal: ``hotfix status --watch`` and ``hotfix open``.

``watch`` reads the store only (it never takes the lease), so any number of people can
follow a hotfix one process drives: it prints each journal row as it lands and stops when
the hotfix ends, pauses at a gate or stops failed, with that outcome's exit code.
``hotfix open ID pr|run|tag|backport`` prints the URL of what the hotfix made, and opens it
in a browser only when a display exists and stdout is a terminal.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from hotfix_fsm.errors import ExitCode, NotFound, UsageError

if TYPE_CHECKING:
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.reporting.report import HotfixStatus

TARGETS = ("pr", "run", "tag", "backport")


def watch(engine: HotfixEngine, ref: str | None, *, interval: float) -> int:
    """Follow a hotfix until it ends, pauses or stops; the outcome's exit code."""
    from hotfix_fsm.cli.render import echo, print_tsv, render_status, stdout_is_terminal
    from hotfix_fsm.core import machine
    from hotfix_fsm.core.outcome import Outcome
    from hotfix_fsm.reporting.report import human_time, iso, summarize

    # In a pipe, each row as `hotfix log` pipes it: seq, ISO time, kind, event, values whole.
    piped = not stdout_is_terminal()

    hotfix = engine.resolve(ref)
    echo(
        f"watching {hotfix.id} ({hotfix.state}); Ctrl-C stops watching, not the hotfix",
        err=True,
    )
    seen = hotfix.last_seq
    try:
        while True:
            for entry in engine.store.journal(hotfix.id, after_seq=seen):
                seen = entry.seq
                if piped:
                    row = [str(entry.seq), iso(entry.at) or "", entry.kind]
                    print_tsv([[*row, summarize(entry, full=True)]])
                else:
                    echo(f"{human_time(entry.at)}  #{entry.seq} {summarize(entry)}")
            hotfix = engine.store.get(hotfix.id)
            ended = hotfix.state in machine.TERMINAL or hotfix.state in machine.STOPPED
            if (ended or hotfix.paused_reason) and hotfix.last_seq <= seen:
                break
            time.sleep(interval)  # a poll of the store, not a wait for an effect
    except KeyboardInterrupt:
        echo(f"\nstopped watching {hotfix.id}; it goes on", err=True)
        return int(ExitCode.INTERRUPTED)
    render_status(engine.status(hotfix.id).as_json())
    outcome = Outcome(
        hotfix.id,
        hotfix.state,
        hotfix.paused_reason,
        hotfix.paused_gate,
        hotfix.error,
        hotfix.failed_from,
    )
    return int(outcome.exit_code)


def url_of(status: HotfixStatus, target: str) -> str:
    """The page of the hotfix's PR, deploy run, release tag or back-merge PR."""
    if target == "pr":
        url = status.pr_url
    elif target == "run":
        url = status.deploy_run_url
    elif target == "backport":
        url = status.backport_pr_url
    elif target == "tag":
        url = None
        base = status.pr_url.rsplit("/pull/", 1)[0] if status.pr_url else None
        if status.release_tag and base and base != status.pr_url:
            url = f"{base}/releases/tag/{status.release_tag}"
    else:
        raise UsageError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    if not url:
        what = {"pr": "PR", "run": "deploy run", "tag": "release tag", "backport": "back-merge PR"}
        raise NotFound(
            f"no {what[target]} is recorded for this hotfix (it is {status.state})",
            hotfix_id=status.id,
            hint=f"`hotfix status {status.id}` shows what it has made so far",
        )
    return url


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_command(
    ctx: typer.Context,
    hotfix: Annotated[str, typer.Argument(metavar="HOTFIX", help="Hotfix id, id prefix or issue.")],
    target: Annotated[
        str, typer.Argument(metavar="TARGET", help="pr, run, tag or backport.")
    ] = "pr",
) -> None:
    """Print the URL of the hotfix's PR, deploy run, release tag or back-merge PR (and open
    it in a browser when there is a display)."""
    from hotfix_fsm.cli.render import clean

    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    from hotfix_fsm.cli.options import engine_of

    with engine_of(ctx) as engine:
        url = url_of(engine.status(hotfix), target)
    sys.stdout.write(clean(url, keep_newlines=False) + "\n")
    sys.stdout.flush()
    if sys.stdout.isatty() and _has_display() and url.startswith(("https://", "http://")):
        import webbrowser

        webbrowser.open(url)


def register(app: typer.Typer) -> None:
    app.command("open")(open_command)


__all__ = ["TARGETS", "register", "url_of", "watch"]
