"""``hotfix sandbox init|serve|effects`` and ``hotfix demo``: the rehearsal world on the CLI.

The sandbox modules (git repositories, HTTP servers) are imported inside the commands, so the
rest of the command never pays for them.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from hotfix_fsm.cli import startup

sandbox_app = typer.Typer(
    name="sandbox",
    help="A local rehearsal world: a git origin, a GitHub API and a production app.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SCENARIOS = ("happy", "failing-tests", "unhealthy-deploy", "crash-and-resume", "protected-branch")
MODES = ("healthy", "failing", "flapping", "slow", "garbage", "degraded")


@sandbox_app.command("init")
def sandbox_init(
    directory: Annotated[Path, typer.Argument(help="Where to build it (empty or new).")],
    force: Annotated[
        bool, typer.Option("--force", help="Build into a non-empty directory.")
    ] = False,
) -> None:
    """Build a sandbox: bare origin, a work tree with a tiny real app, and its hotfix.toml."""
    from hotfix_fsm.sandbox.world import build_sandbox

    info = build_sandbox(directory, force=force)
    sys.stdout.write(
        f"sandbox ready in {info.root}\n"
        f"  origin:     {info.origin}  (main, production, tag {info.release_tag})\n"
        f"  work tree:  {info.work}  (config: {info.config})\n"
        f'  the fix:    {info.fix_sha[:12]}  "Fix token expiry check" on main\n'
        f"  a bad fix:  {info.broken_fix_sha[:12]}  (its tests fail)\n"
        f"next:\n"
        f"  hotfix sandbox serve {info.root}        # in another terminal\n"
        f'  cd {info.work} && hotfix start DRILL-1 "Fix token expiry check" '
        f"--cherry-pick {info.fix_sha[:12]}\n"
    )


@sandbox_app.command("serve")
def sandbox_serve(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    mode: Annotated[
        str,
        typer.Option(
            "--mode", metavar="MODE", help="Production health mode: " + ", ".join(MODES) + "."
        ),
    ] = "healthy",
    ci: Annotated[
        str,
        typer.Option(
            "--ci", metavar="CONCLUSION", help="CI conclusion for new commits: success or failure."
        ),
    ] = "success",
    deploy: Annotated[
        str,
        typer.Option(
            "--deploy", metavar="CONCLUSION", help="Deploy workflow conclusion: success or failure."
        ),
    ] = "success",
    error_rate: Annotated[
        float,
        typer.Option(
            "--github-error-rate",
            metavar="RATE",
            help="Share of GitHub API requests answered 502 (0-1).",
        ),
    ] = 0.0,
) -> None:
    """Serve the rehearsal GitHub API and production app until interrupted."""
    from hotfix_fsm.errors import UsageError
    from hotfix_fsm.sandbox.serve import serve_sandbox

    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}", hint=f"use one of {', '.join(MODES)}")
    for what, value in (("--ci", ci), ("--deploy", deploy)):
        if value not in ("success", "failure"):
            raise UsageError(f"{what} must be success or failure, not {value!r}")
    if not 0.0 <= error_rate <= 1.0:
        raise UsageError("--github-error-rate must be between 0 and 1")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with serve_sandbox(directory) as running:
            startup.end()  # a server from here on: the usual collector
            running.production.set_mode(mode)
            running.github.set_ci(conclusion=ci)
            running.github.set_workflow_conclusion("deploy-production.yml", deploy)
            if error_rate:
                running.github.set_fault("*", error_rate=error_rate, status=502)
            else:
                running.github.clear_faults()
            urls = running.urls
            root = Path(running.info.root)
            notes = "".join(f"  {note}\n" for note in running.config_notes)
            sys.stdout.write(
                f"serving the sandbox {running.info.root}\n"
                f"  GitHub API:  {urls['github']}\n"
                f"  production:  {urls['production']}  (health {urls['health']})\n"
                f"  written to {root / 'sandbox.json'}; this server holds {root / 'serve.lock'}\n"
                f"{notes}"
                f"  switches:    POST {urls['production']}/_control "
                '{"mode": "failing"}  ·  POST '
                f'{urls["github"]}/_sandbox/faults {{"route": "*", "error_rate": 0.3}}\n'
                "press Ctrl-C to stop\n"
            )
            sys.stdout.flush()
            try:
                while not stop.wait(0.5):
                    pass
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    sys.stdout.write("stopped\n")


@sandbox_app.command("effects")
def sandbox_effects(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Full JSON lists of objects.")] = False,
) -> None:
    """Every effect the sandbox recorded: PRs, labels, dispatches, merges, refs, deploys."""
    from hotfix_fsm.core.redact import redact
    from hotfix_fsm.sandbox.serve import effects_of

    effects: dict[str, Any] = effects_of(directory)
    if as_json:
        sys.stdout.write(redact(json.dumps(effects, indent=2, sort_keys=True)) + "\n")
        return
    for key in sorted(effects):
        sys.stdout.write(f"{key:<24} {len(effects[key])}\n")


@sandbox_app.command("approve-pr")
def sandbox_approve_pr(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    number: Annotated[int, typer.Argument(help="The pull request to review.")],
    reviewer: Annotated[
        str, typer.Option("--reviewer", help="Who reviews (a login with write access).")
    ] = "reviewer",
    changes: Annotated[
        bool, typer.Option("--request-changes", help="Request changes instead of approving.")
    ] = False,
) -> None:
    """Review a PR in the served sandbox as a reviewer would on github.com (drills)."""
    from hotfix_fsm.sandbox.serve import control

    state = "CHANGES_REQUESTED" if changes else "APPROVED"
    review = control(directory, "reviews", {"pr": number, "reviewer": reviewer, "state": state})
    sys.stdout.write(f"{reviewer} reviewed PR #{number}: {review['state']}\n")


@sandbox_app.command("protect")
def sandbox_protect(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    branch: Annotated[str, typer.Option("--branch", help="The branch to protect.")] = (
        "production"
    ),
    reviews: Annotated[
        int, typer.Option("--reviews", help="Required approving reviews (0 for none).")
    ] = 1,
    check: Annotated[
        list[str] | None, typer.Option("--check", help="A required status check (repeatable).")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option("--method", help="An allowed merge method (repeatable; default all)."),
    ] = None,
    off: Annotated[bool, typer.Option("--off", help="Remove the protection.")] = False,
    ruleset: Annotated[
        bool,
        typer.Option("--ruleset", help="As a repository ruleset instead of branch protection."),
    ] = False,
) -> None:
    """Protect a branch of the served sandbox: required reviews, checks, merge methods."""
    from hotfix_fsm.sandbox.serve import control

    control(
        directory,
        "rulesets" if ruleset else "protection",
        {
            "branch": branch,
            "required_approving_review_count": reviews,
            "required_status_checks": list(check or []),
            "allowed_merge_methods": list(method) if method else None,
            "enabled": not off,
        },
    )
    how = " (ruleset)" if ruleset else ""
    sys.stdout.write(f"{branch}: {'unprotected' if off else 'protected'}{how}\n")


@sandbox_app.command("environment")
def sandbox_environment(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    reviewer: Annotated[
        list[str], typer.Option("--reviewer", help="A required reviewer (repeatable).")
    ],
    name: Annotated[str, typer.Option("--name", help="The environment.")] = "production",
) -> None:
    """Deploy runs wait in the environment until one of its reviewers approves."""
    from hotfix_fsm.sandbox.serve import control

    control(directory, "environments", {"name": name, "reviewers": list(reviewer)})
    sys.stdout.write(f"environment {name}: reviewers {', '.join(reviewer)}\n")


@sandbox_app.command("approve-deployment")
def sandbox_approve_deployment(
    directory: Annotated[Path, typer.Argument(help="A directory made by `sandbox init`.")],
    run_id: Annotated[int, typer.Argument(help="The waiting workflow run.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="One of its reviewers.")],
) -> None:
    """Approve a deploy run's pending deployment as one of the environment's reviewers."""
    from hotfix_fsm.sandbox.serve import control

    control(directory, "deployment_reviews", {"run_id": run_id, "reviewer": reviewer})
    sys.stdout.write(f"{reviewer} approved the deployment of run {run_id}\n")


def demo(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            metavar="NAME",
            help="happy, failing-tests, unhealthy-deploy, crash-and-resume or protected-branch.",
        ),
    ] = "happy",
) -> None:
    """Rehearse a complete hotfix in a throw-away sandbox and print its post-mortem."""
    from hotfix_fsm.cli.demo import run_demo
    from hotfix_fsm.errors import UsageError

    if scenario not in SCENARIOS:
        raise UsageError(
            f"unknown scenario {scenario!r}", hint=f"use one of {', '.join(SCENARIOS)}"
        )
    raise typer.Exit(run_demo(scenario))


def register(app: typer.Typer) -> None:
    """Attach the sandbox group and the demo command to the main app."""
    app.add_typer(sandbox_app, name="sandbox")
    app.command("demo")(demo)


__all__ = ["SCENARIOS", "register", "sandbox_app"]
