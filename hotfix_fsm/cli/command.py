"""The ``hotfix`` command: a thin layer over ``HotfixEngine``.

Built with typer (a maintained CLI framework on click: typed options, help, usage errors with
exit code 2, sub-commands) and rich (tables and a live progress line) rather than hand-written
argparse and ANSI codes. Start-up stays fast: heavy modules (the engine's adapters, GitHub,
git, HTTP, the sandbox, rich itself) are imported inside the commands that need them.

Exit codes are ``hotfix_fsm.errors.ExitCode``; each command's code answers that command's
question (``rollback``: does production run the rollback target? ``start``/``resume``: is
the hotfix done?). The README's table lists them per command.

Every ``HotfixError`` is printed as what happened, where (hotfix, phase) and what to do; an
unexpected exception prints one line and the path of a crash log with the traceback.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import typer.core
import typer.main

from hotfix_fsm import __version__
from hotfix_fsm.cli import startup
from hotfix_fsm.cli.options import LEASE_TTL_RANGE, Globals, globals_of
from hotfix_fsm.errors import ExitCode, HotfixError, UsageError

if TYPE_CHECKING:
    from hotfix_fsm.config import ConfigDrift
    from hotfix_fsm.core.outcome import Outcome
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.store import Hotfix

app = typer.Typer(
    name="hotfix",
    help="Drive an emergency production hotfix as a persisted, resumable state machine.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"hotfix {__version__}\n")
        raise typer.Exit(int(ExitCode.OK))


@app.callback()
def _global(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="URL",
            envvar="HOTFIX_FSM_DB",
            show_envvar=True,
            help="Store URL or SQLite path (default: the XDG state dir).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="Configuration file (default: the repository's hotfix.toml or pyproject.toml).",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug)."),
    ] = 0,
    lease_ttl: Annotated[
        float,
        typer.Option(
            "--lease-ttl",
            metavar="SECONDS",
            envvar="HOTFIX_FSM_LEASE_TTL",
            show_envvar=True,
            min=LEASE_TTL_RANGE[0],
            max=LEASE_TTL_RANGE[1],
            help="How long a driver's lease lives without a heartbeat (renewed every third "
            "of it): another machine may take over a frozen driver after it.",
        ),
    ] = 30.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    from hotfix_fsm.log import configure_logging, set_console_writer

    if db and "://" in db:
        _register_url_password(db)
    # Nothing in the command logs through structlog.get_logger: leave its global setup alone.
    # Lines reach the terminal through the sanitising echo: structlog must not colour them
    # (its escapes would be shown escaped, as text).
    configure_logging(verbose, colors=False, structlog_global=False)
    # Log lines on the terminal may quote outside text (a GitHub message): sanitised too.
    set_console_writer(_log_line)
    # Absolute, because the path is stored with the hotfix and resume may run elsewhere.
    config = config.expanduser().resolve() if config is not None else None
    ctx.obj = Globals(db=db, config=config, verbose=verbose, lease_ttl=lease_ttl)


def _log_line(line: str) -> None:
    from hotfix_fsm.cli.render import echo

    echo(line, err=True)


def _register_url_password(url: str) -> None:
    """A store URL's password is a secret like any token."""
    from urllib.parse import urlsplit

    from hotfix_fsm.core.redact import register_secret

    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        register_secret(password)


def _repo_option() -> Any:
    """``-C DIR`` as git has it (``--repo`` kept as an alias)."""
    return typer.Option("-C", "--repo", metavar="DIR", help="The repository.")


def _hotfix_argument() -> Any:
    return typer.Argument(metavar="HOTFIX", help="Hotfix id, id prefix or issue.")


def _finish(
    outcome: Outcome, *, engine: HotfixEngine | None = None, code: int | None = None
) -> NoReturn:
    """Print where the drive ended — with the run's summary (links, time to production)
    when it reached an end — and exit with the code that answers the command's question."""
    from hotfix_fsm.cli.render import echo, outcome_text

    status = None
    if engine is not None and outcome.state in ("done", "rolled_back", "rollback_failed"):
        status = engine.status(outcome.hotfix_id)
    echo(outcome_text(outcome, status))
    raise typer.Exit(int(outcome.exit_code) if code is None else code)


def _drive(
    engine: HotfixEngine,
    hotfix_id: str,
    *,
    take_over: bool = False,
    action: Callable[[], Outcome] | None = None,
) -> Outcome:
    """Drive (or run ``action``) with live progress; Ctrl-C leaves a resumable hotfix."""
    from hotfix_fsm.cli.render import drive_with_progress

    _ = engine.runner  # build it now so the subscription below reaches it
    if action is None:

        def action() -> Outcome:
            return engine.drive(hotfix_id, take_over=take_over)

    try:
        return drive_with_progress(engine, hotfix_id, action)
    except KeyboardInterrupt:
        _interrupted(hotfix_id)


def _config_notice(engine: HotfixEngine, hotfix: Hotfix) -> None:
    """Say, key by key, where the configuration file now differs from the pinned values
    (which are the ones used)."""
    from hotfix_fsm.cli.render import echo

    drift = engine.config_drift(hotfix)
    if drift is None:
        return
    if drift.error:
        echo(
            f"hotfix: {drift.file} cannot be read ({drift.error}); {hotfix.id} keeps the "
            "configuration pinned when it started",
            err=True,
        )
    elif drift.changes:
        echo(
            f"hotfix: {drift.file} differs from the configuration pinned when {hotfix.id} "
            "started; the pinned values are used:",
            err=True,
        )
        for line in drift.changes:
            echo(f"  {line}", err=True)
        echo(f"  to take the file's values: `hotfix resume {hotfix.id} --reload-config`", err=True)


def _reloaded(hotfix_id: str, drift: ConfigDrift) -> None:
    from hotfix_fsm.cli.render import echo

    if not drift.changes:
        echo(f"hotfix: {drift.file} holds the values {hotfix_id} has pinned; nothing reloaded")
        return
    echo(f"hotfix: {hotfix_id} now uses the configuration of {drift.file} (journaled):", err=True)
    for line in drift.changes:
        echo(f"  {line}", err=True)


def _interrupted(hotfix_id: str) -> NoReturn:
    from hotfix_fsm.cli.render import echo

    echo(
        f"\nhotfix: interrupted; every finished step of {hotfix_id} is checkpointed — "
        f"`hotfix resume {hotfix_id}` continues from there",
        err=True,
    )
    raise typer.Exit(int(ExitCode.INTERRUPTED))


# -- driving --------------------------------------------------------------------------------


@app.command()
def start(
    ctx: typer.Context,
    issue: Annotated[
        str, typer.Argument(metavar="ISSUE", help="The incident or issue id, e.g. INC-1234.")
    ],
    description: Annotated[str, typer.Argument(metavar="DESCRIPTION", help="What the fix does.")],
    repo: Annotated[Path, _repo_option()] = Path("."),
    cherry_pick: Annotated[
        list[str] | None,
        typer.Option(
            "--cherry-pick",
            metavar="SHA",
            help="A commit to cherry-pick as the fix (repeatable).",
        ),
    ] = None,
    patch: Annotated[
        Path | None,
        typer.Option("--patch", metavar="FILE", help="A patch file to apply as the fix."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --dry-run: the plan as a JSON document.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Approve the human gates automatically.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Start even if another hotfix for this issue is unfinished."),
    ] = False,
) -> None:
    """Start a hotfix and drive it until it is done, paused at a gate, failed or rolled back."""
    g = globals_of(ctx)
    if as_json and not dry_run:
        raise UsageError(
            "--json goes with --dry-run (the plan)",
            hint="`hotfix status --json` describes a hotfix once started",
        )
    if dry_run:
        from hotfix_fsm.cli.plan import print_plan

        print_plan(
            issue,
            description,
            repo=repo,
            config_path=g.config,
            cherry_pick=cherry_pick or [],
            patch=patch,
            yes=yes,
            as_json=as_json,
        )
        return
    from hotfix_fsm.cli.render import echo

    with g.engine() as engine:
        hotfix = engine.start(
            issue,
            description,
            repo=repo,
            cherry_pick=cherry_pick or [],
            patch=patch,
            yes=yes,
            force=force,
        )
        echo(f"started hotfix {hotfix.id}", err=True)
        _finish(_drive(engine, hotfix.id), engine=engine)


@app.command()
def resume(
    ctx: typer.Context,
    hotfix: Annotated[
        str | None,
        typer.Argument(
            metavar="HOTFIX",
            help="Hotfix id, id prefix or issue (default: the most recent unfinished one).",
        ),
    ] = None,
    take_over: Annotated[
        bool,
        typer.Option(
            "--take-over", help="Take the hotfix from a driver that is gone (fences it out)."
        ),
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before taking over.")
    ] = False,
    repo: Annotated[
        Path | None,
        typer.Option(
            "-C",
            "--repo",
            metavar="DIR",
            help="Continue in this work tree on this machine (a clone of the hotfix's "
            "remote, or an empty directory to clone into): the hand-off between machines.",
        ),
    ] = None,
    reload_config: Annotated[
        bool,
        typer.Option(
            "--reload-config",
            help="Take the configuration file's values now instead of those pinned when the "
            "hotfix started (journaled with the changed keys).",
        ),
    ] = False,
) -> None:
    """Continue a hotfix from its last checkpoint (probing anything left in doubt).

    It uses the configuration pinned when the hotfix started, from any directory or machine;
    a configuration file that says otherwise now is reported key by key.
    """
    with globals_of(ctx).engine() as engine:
        if hotfix is None and engine.store.latest_unfinished() is None:
            _nothing_to_resume(engine)
        found = engine.resolve(hotfix)
        if take_over and not yes:
            _confirm_take_over(found.id, found.lease_owner if found.lease_live() else None)
        if repo is not None:
            from hotfix_fsm.recovery.handoff import prepare_work_tree

            found = prepare_work_tree(engine, found, repo, take_over=take_over)
        if reload_config:
            _reloaded(found.id, engine.reload_config(found.id, take_over=take_over))
        else:
            _config_notice(engine, found)
        _finish(_drive(engine, found.id, take_over=take_over), engine=engine)


_ENDINGS = {
    "done": ("is done", "read its post-mortem: `hotfix report {id}`"),
    "rolled_back": (
        "was rolled back",
        "read what happened: `hotfix report {id}`; start a new hotfix when the fix is ready",
    ),
    "cancelled": ("was cancelled", "see why: `hotfix log {id}`"),
}


def _nothing_to_resume(engine: HotfixEngine) -> NoReturn:
    """`hotfix resume` without an id and nothing unfinished: say how the last hotfix ended
    (exit 0), or that the store holds none (exit 2)."""
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.errors import NotFound
    from hotfix_fsm.reporting.report import human_time

    last = engine.list(include_finished=True, limit=1)
    if not last:
        raise NotFound(
            "there is no hotfix in this store to resume",
            hint='start one with `hotfix start ISSUE "DESCRIPTION"` (or pass --db to use '
            "another store)",
        )
    hotfix = last[0]
    ended = hotfix.updated_at
    for entry in engine.store.journal(hotfix.id, kinds=("transition",), limit=1, newest_first=True):
        if entry.payload.get("to") == hotfix.state:
            ended = entry.at
    how, step = _ENDINGS.get(hotfix.state, (f"ended {hotfix.state}", "`hotfix status {id}`"))
    when = human_time(ended)
    echo(f"nothing to resume: the last hotfix, {hotfix.id} ({hotfix.issue}), {how} (since {when})")
    echo(f"  next: {step.format(id=hotfix.id)}")
    raise typer.Exit(int(ExitCode.OK))


def _confirm_take_over(hotfix_id: str, holder: str | None) -> None:
    who = f"from {holder}" if holder else "(no live driver holds it)"
    if not sys.stdin.isatty():
        raise UsageError(
            f"taking over {hotfix_id} {who} needs a confirmation",
            hint="make sure that driver is gone, then add --yes",
        )
    if not typer.confirm(
        f"Take over {hotfix_id} {who}? Its writes will be refused from now on.", default=False
    ):
        raise UsageError("not taken over; nothing changed")


@app.command()
def approve(
    ctx: typer.Context,
    hotfix: Annotated[str, _hotfix_argument()],
    gate: Annotated[str, typer.Argument(metavar="GATE", help="fix, deploy or rollback.")],
    comment: Annotated[
        str | None,
        typer.Option("--comment", "-m", metavar="TEXT", help="Why (journaled with the approval)."),
    ] = None,
) -> None:
    """Record an approval (who, when, for which commit); `hotfix resume` then continues.

    On a deploy run waiting for a protected environment's reviewers, `deploy` approves it
    on GitHub as the token's user (or says who can)."""
    from hotfix_fsm.cli.environment import approve_environment
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.core.outcome import next_action_for

    with globals_of(ctx).engine() as engine:
        found = engine.resolve(hotfix)
        _config_notice(engine, found)
        if gate == "deploy" and engine.approves_environment(found):
            approve_environment(engine, found.id, comment)
            return
        entry = engine.approve(hotfix, gate, comment=comment)
        p = entry.payload
        sha = str(p.get("sha") or "")[:12] or "-"
        echo(
            f"{entry.hotfix_id}: {gate} approved by {p.get('by')} for {sha} (journal #{entry.seq})"
        )
        if p.get("comment"):
            echo(f"  comment: {p['comment']}")
        echo(f"  next: {next_action_for(engine.get(entry.hotfix_id))}")


@app.command()
def abort(
    ctx: typer.Context,
    hotfix: Annotated[str, _hotfix_argument()],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (journaled).")
    ] = "aborted by a person",
) -> None:
    """Cancel a hotfix that has not reached production."""
    from hotfix_fsm.cli.render import echo

    with globals_of(ctx).engine() as engine:
        _config_notice(engine, engine.resolve(hotfix))
        done = engine.abort(hotfix, reason=reason)
        echo(f"{done.id}: {done.state}")
        for entry in engine.store.journal(done.id, kinds=("note",), limit=1, newest_first=True):
            for note in entry.payload.get("abort_cleanup", []):
                echo(f"  {note}")


@app.command()
def rollback(
    ctx: typer.Context,
    hotfix: Annotated[str, _hotfix_argument()],
    reason: Annotated[
        str, typer.Option("--reason", metavar="TEXT", help="Why (journaled).")
    ] = "manual rollback",
    take_over: Annotated[
        bool, typer.Option("--take-over", help="Take the hotfix from a driver that is gone.")
    ] = False,
) -> None:
    """Roll production back to the recorded rollback target and verify it.

    Works from any terminal: when another process drives the hotfix, it is asked to roll back
    (journaled with --reason and who asked) and this command follows it to the end. Exits 0
    when production runs the rollback target, verified.
    """
    with globals_of(ctx).engine() as engine:
        found = engine.resolve(hotfix)
        _config_notice(engine, found)
        outcome = _drive(
            engine,
            found.id,
            action=lambda: engine.rollback(found.id, reason=reason, take_over=take_over),
        )
        # The question this command answers — does production run the target? — is yes.
        _finish(
            outcome,
            engine=engine,
            code=ExitCode.OK if outcome.state == "rolled_back" else None,
        )


# -- inspection -----------------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    hotfix: Annotated[
        str | None,
        typer.Argument(
            metavar="HOTFIX",
            help="Hotfix id, id prefix or issue (default: the most recent unfinished one).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A stable JSON document.")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Follow the hotfix (driven by another process) until it ends or pauses; "
            "exit with its outcome's code.",
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", metavar="SECONDS", min=0.05, help="With --watch: how often to look."
        ),
    ] = 1.0,
) -> None:
    """State, a phase table with durations, and the next action."""
    from hotfix_fsm.cli.render import echo, print_json, render_status
    from hotfix_fsm.reporting.report import STATUS_SCHEMA

    if watch:
        if as_json:
            raise UsageError("--watch prints as it goes; use `hotfix status --json` after it")
        from hotfix_fsm.cli.follow import watch as follow

        with globals_of(ctx).engine() as engine:
            code = follow(engine, hotfix, interval=interval)
        raise typer.Exit(code)
    with globals_of(ctx).engine() as engine:
        if hotfix is None and engine.store.latest_unfinished() is None:
            if as_json:
                print_json({"schema": STATUS_SCHEMA, "id": None})
            else:
                echo("no unfinished hotfix (`hotfix list --all` shows finished ones)")
            return
        doc = engine.status(hotfix).as_json()
    if as_json:
        print_json(doc)
    else:
        render_status(doc)


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", "-a", help="Include finished ones.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-L", metavar="N", min=1, help="At most N hotfixes.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="A stable JSON document.")] = False,
) -> None:
    """Hotfixes in progress (or all of them), most recently changed first.

    On a terminal, a table; in a pipe, one tab-separated line per hotfix with every value
    whole: id, state, updated (ISO 8601 UTC), next action.
    """
    from hotfix_fsm.cli.render import print_json, render_list
    from hotfix_fsm.reporting.report import list_document

    with globals_of(ctx).engine() as engine:
        doc = list_document(engine.list(include_finished=all_, limit=limit), include_finished=all_)
    if as_json:
        print_json(doc)
    else:
        render_list(doc)


@app.command()
def log(
    ctx: typer.Context,
    hotfix: Annotated[str, _hotfix_argument()],
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-L", metavar="N", min=1, help="Only the last N rows."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A stable JSON document.")] = False,
) -> None:
    """The journal as a timeline.

    On a terminal, a table; in a pipe, one tab-separated line per row with every value
    whole: seq, time (ISO 8601 UTC), kind, event.
    """
    from hotfix_fsm.cli.render import print_json, render_log
    from hotfix_fsm.reporting.report import log_document

    with globals_of(ctx).engine() as engine:
        found = engine.get(hotfix)
        if limit is None:
            journal = engine.store.journal(found.id)
        else:
            journal = engine.store.journal(found.id, limit=limit, newest_first=True)[::-1]
    if as_json:
        print_json(log_document(found, journal))
    else:
        render_log(found, journal)


@app.command()
def report(
    ctx: typer.Context,
    hotfix: Annotated[str, _hotfix_argument()],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the markdown to this file."),
    ] = None,
    as_html: Annotated[
        bool,
        typer.Option("--html", help="One self-contained HTML file (pictures as SVG, no script)."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="The post-mortem as a stable JSON document.")
    ] = False,
) -> None:
    """The post-mortem (markdown), its checklist ticked only from journaled evidence."""
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.reporting.html_report import render_html
    from hotfix_fsm.reporting.postmortem import postmortem_markdown, report_document

    with globals_of(ctx).engine() as engine:
        found = engine.get(hotfix)
        journal = engine.store.journal(found.id)
        if as_json:
            import json

            text = json.dumps(report_document(found, journal), indent=2, sort_keys=True) + "\n"
        elif as_html:
            text = render_html(found, journal)
        else:
            text = postmortem_markdown(found, journal)
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
        echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)


@app.command()
def graph() -> None:
    """The state graph as Mermaid (paste it into a markdown file)."""
    from hotfix_fsm.core.machine import to_mermaid

    sys.stdout.write(to_mermaid())


@app.command()
def init(
    ctx: typer.Context,
    repo: Annotated[Path, _repo_option()] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing hotfix.toml.")
    ] = False,
) -> None:
    """Write a commented hotfix.toml for this repository (npm or Python gates detected)."""
    from hotfix_fsm.cli.init import write_init

    write_init(repo, force=force)


@app.command()
def check(
    ctx: typer.Context,
    repo: Annotated[Path, _repo_option()] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="A JSON document.")] = False,
) -> None:
    """Readiness before an incident: config, remote, token scopes, workflows, health URL."""
    from hotfix_fsm.cli.check import print_check

    raise typer.Exit(print_check(repo, config_path=globals_of(ctx).config, as_json=as_json))


def _register_groups() -> None:
    """The sandbox/demo commands and ``adopt`` live in their own (light) modules."""
    from hotfix_fsm.cli import dashboard as cli_dashboard
    from hotfix_fsm.cli import follow as cli_follow
    from hotfix_fsm.cli import sandbox as cli_sandbox
    from hotfix_fsm.cli import team as cli_team

    cli_follow.register(app)
    cli_sandbox.register(app)
    cli_team.register(app)
    cli_dashboard.register(app)


_register_groups()


# -- entry point ----------------------------------------------------------------------------


def _crash_log(exc: BaseException) -> Path | None:
    """Write the traceback of an unexpected error to a file; return its path."""
    from hotfix_fsm.core.redact import redact
    from hotfix_fsm.paths import state_root

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        folder = state_root() / "crash"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        path.write_text(
            f"hotfix {__version__}\nargv: {redact(repr(sys.argv))}\n\n{redact(text)}",
            encoding="utf-8",
        )
        return path
    except OSError:
        return None


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script: run the command and exit with its documented code."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--version"]:
        sys.stdout.write(f"hotfix {__version__}\n")
        sys.exit(int(ExitCode.OK))
    startup.begin()  # until the command has opened its store (Globals.engine)
    try:
        from hotfix_fsm.cli.parsing import command_for, conventional, plain_values_skip_pydantic

        command = command_for(app, args)
        plain_values_skip_pydantic(command)
        conventional(command).main(args=args, prog_name="hotfix")
    except HotfixError as exc:
        from hotfix_fsm.cli.render import error_text

        sys.stderr.write(error_text(exc) + "\n")
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        sys.stderr.write(
            "\nhotfix: interrupted; every finished step is checkpointed — "
            "`hotfix resume` continues from there\n"
        )
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last line of defence: no traceback on the terminal
        path = _crash_log(exc)
        where = f"the traceback is in {path}" if path else "the crash log could not be written"
        from hotfix_fsm.core.redact import redact

        sys.stderr.write(
            redact(
                f"hotfix: unexpected error: {type(exc).__name__}: {exc}\n"
                f"  This is a bug; {where} — please report it.\n"
            )
        )
        sys.exit(int(ExitCode.FAILED))
    finally:
        startup.abandon()  # a command that opened no store; and callers of main() in-process
    sys.exit(int(ExitCode.OK))
