"""``hotfix dashboard``: serve the read-only web page over the store until interrupted.

Registered on the main app with ``register(app)``. Loopback only by default; ``--host`` on
any other address requires a bearer token, read from ``HOTFIX_DASHBOARD_TOKEN`` or generated
and printed once.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from hotfix_fsm.cli.options import engine_of

if TYPE_CHECKING:
    pass

TOKEN_ENV = "HOTFIX_DASHBOARD_TOKEN"  # noqa: S105 - the name of a variable, not a token


def dashboard_command(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on (default 127.0.0.1). Any other address requires a "
            f"bearer token: ${TOKEN_ENV}, or one generated and printed once.",
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8765,
    interval: Annotated[
        float,
        typer.Option("--interval", help="Seconds between looks at the store's change signal."),
    ] = 1.0,
) -> None:
    """A read-only web page of the active and recent hotfixes, updated live."""
    from hotfix_fsm.cli.render import echo
    from hotfix_fsm.core.redact import register_secret
    from hotfix_fsm.dashboard.server import Dashboard, is_loopback
    from hotfix_fsm.errors import ConfigError, UsageError

    token = None
    if not is_loopback(host):
        token = os.environ.get(TOKEN_ENV, "").strip()
        if not token:
            import secrets  # hashlib and hmac: only for the dashboard, not every command

            token = secrets.token_urlsafe(32)
            # Printed once, for the person who started it; never logged (registered below).
            sys.stderr.write(
                f"hotfix dashboard: {TOKEN_ENV} is not set; this run's bearer token is\n"
                f"  {token}\n"
                "  (send it as `Authorization: Bearer <token>`, or open /login?token=<token>)\n"
            )
        register_secret(token)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a port", hint="use 1-65535, or 0 for any free one")
    engine = engine_of(ctx)
    try:
        # Registers the configuration's secrets; a broken configuration is not the concern of
        # a page that only reads the store.
        with contextlib.suppress(ConfigError):
            engine.config_for(repo=os.getcwd())
        try:
            server = Dashboard(engine.store, host=host, port=port, token=token, interval=interval)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="choose another --port (or --port 0 for any free one)",
            ) from None
        url = server.start()
        where = "this machine only" if token is None else "bearer token required"
        echo(f"hotfix dashboard: {url} ({where}; read-only; Ctrl-C stops it)", err=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            echo("hotfix dashboard: stopped", err=True)
    finally:
        engine.close()


def register(app: typer.Typer) -> None:
    """Attach ``dashboard`` to the main app."""
    app.command("dashboard")(dashboard_command)


__all__ = ["TOKEN_ENV", "dashboard_command", "register"]
