"""``hotfix demo``: a complete rehearsal hotfix in a throw-away sandbox, in seconds.

Scenarios:

* ``happy`` — cherry-pick the fix from main; gates, PR, CI, deploy, verify, monitor, merge,
  tag, back-merge and cleanup all pass (approvals given with ``--yes``).
* ``failing-tests`` — cherry-pick a "fix" whose tests fail: the gates stop the hotfix before
  anything reaches GitHub.
* ``unhealthy-deploy`` — production turns unhealthy on the fix's version: verification fails
  and the automatic rollback redeploys the recorded target.
* ``crash-and-resume`` — the real ``hotfix`` command is SIGKILLed right after the deploy was
  dispatched (a failpoint); ``hotfix resume --take-over`` probes GitHub, adopts the deploy
  instead of dispatching a second one, and finishes.
* ``protected-branch`` — production is a protected branch needing one approving review:
  the merge waits durably ("awaiting an approving review of PR #1"), a reviewer approves
  in the sandbox (as ``hotfix sandbox approve-pr`` does), and the resumed hotfix merges and
  ends done.

Everything runs against a sandbox built in a temporary directory and served from threads of
this process, with its own SQLite store; nothing outside the temporary directory changes.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from hotfix_fsm.cli import startup
from hotfix_fsm.sandbox.serve import RunningSandbox, serve_sandbox
from hotfix_fsm.sandbox.world import SandboxInfo, build_sandbox

if TYPE_CHECKING:
    from hotfix_fsm.core.outcome import Event

ISSUE = "DEMO-1"
DESCRIPTION = "Fix token expiry check"
EXPECTED = {
    "happy": "done",
    "failing-tests": "failed",
    "unhealthy-deploy": "rolled_back",
    "crash-and-resume": "done",
    "protected-branch": "done",
}
REVIEWER = "alice"


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    scenario: str = "happy", *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run one scenario; print progress (stderr) and the post-mortem (stdout).

    Returns 0 when the scenario ended as it should (for ``failing-tests`` that is a failed
    hotfix, for ``unhealthy-deploy`` a rolled-back one), else 1.
    """
    if scenario not in EXPECTED:
        from hotfix_fsm.errors import UsageError

        raise UsageError(f"unknown scenario {scenario!r}", hint=f"use one of {', '.join(EXPECTED)}")
    out = out or sys.stdout
    err = err or sys.stderr
    startup.end()  # a rehearsal of minutes: the usual collector from here on
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hotfix-demo-") as tmp:
        root = Path(tmp)
        state = root / "state"
        with _env(HOTFIX_FSM_STATE_DIR=str(state)):
            from hotfix_fsm.log import configure_logging, logging_configured

            if not logging_configured():
                configure_logging(0)
            err.write(f"demo ({scenario}): building a sandbox in {root}\n")
            info = build_sandbox(root / "sandbox")
            with serve_sandbox(info.root) as running:
                err.write(
                    f"  GitHub API {running.urls['github']} · production "
                    f"{running.urls['production']}\n"
                )
                db = root / "hotfix.db"
                if scenario == "crash-and-resume":
                    state_reached = _crash_and_resume(info, db, state, err)
                elif scenario == "protected-branch":
                    state_reached = _protected_branch(info, running, db, err)
                else:
                    state_reached = _in_process(scenario, info, running, db, err)
                code = _summarize(
                    scenario=scenario,
                    state=state_reached,
                    info=info,
                    running=running,
                    db=db,
                    out=out,
                    err=err,
                )
    err.write(f"demo finished in {time.monotonic() - started:.1f}s\n")
    return code


def _in_process(
    scenario: str, info: SandboxInfo, running: RunningSandbox, db: Path, err: TextIO
) -> str:
    from hotfix_fsm.cli.render import ProgressView
    from hotfix_fsm.engine import HotfixEngine

    pick = info.broken_fix_sha if scenario == "failing-tests" else info.fix_sha
    with HotfixEngine(db, config_path=info.config) as engine:
        hotfix = engine.start(ISSUE, DESCRIPTION, repo=info.work, cherry_pick=[pick], yes=True)
        err.write(f"started hotfix {hotfix.id} (cherry-pick {pick[:12]})\n")
        view = ProgressView(hotfix.id, stream=err)

        def on_event(event: Event) -> None:
            if scenario == "unhealthy-deploy" and event.kind == "done":
                facts = event.payload.get("facts", {})
                for key in ("fix_sha", "pushed_sha"):
                    sha = facts.get(key) if isinstance(facts, dict) else None
                    if sha:  # the fix's version will answer 503 once deployed
                        running.production.set_mode("failing", for_version=str(sha))
            view.on_event(event)

        _ = engine.runner
        unsubscribe = engine.subscribe(on_event)
        try:
            with view.active():
                outcome = engine.drive(hotfix.id)
        finally:
            unsubscribe()
        return outcome.state


def _protected_branch(info: SandboxInfo, running: RunningSandbox, db: Path, err: TextIO) -> str:
    from hotfix_fsm.cli.render import ProgressView
    from hotfix_fsm.engine import HotfixEngine

    running.github.protect_branch(
        "production", required_approving_review_count=1, allowed_merge_methods=["squash"]
    )
    err.write("production is protected: 1 approving review required, squash merges only\n")
    with HotfixEngine(db, config_path=info.config) as engine:
        hotfix = engine.start(
            ISSUE, DESCRIPTION, repo=info.work, cherry_pick=[info.fix_sha], yes=True
        )
        err.write(f"step 1: hotfix {hotfix.id} runs until the merge\n")
        view = ProgressView(hotfix.id, stream=err)
        unsubscribe = engine.subscribe(view.on_event)
        try:
            with view.active():
                outcome = engine.drive(hotfix.id)
            if outcome.paused_reason is None:
                return outcome.state  # no review gate: the summary says it was unexpected
            err.write(f"  the review gate: {outcome.paused_reason.split(' — ')[0]}\n")
            number = engine.get(hotfix.id).context.get("pr_number")
            err.write(
                f"step 2: {REVIEWER} approves PR #{number} in the sandbox "
                f"(`hotfix sandbox approve-pr DIR {number} --reviewer {REVIEWER}`)\n"
            )
            running.github.review_pull(int(number or 0), REVIEWER)
            err.write("step 3: `hotfix resume` merges it and finishes\n")
            with view.active():
                outcome = engine.drive(hotfix.id)
        finally:
            unsubscribe()
        return outcome.state


def _cli(*args: str, env: dict[str, str], err: TextIO) -> int:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        **env,
        "PYTHONPATH": os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "hotfix_fsm.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=180,
        check=False,
    )
    for line in proc.stdout.splitlines():
        err.write(f"    | {line}\n")
    return proc.returncode


def _crash_and_resume(info: SandboxInfo, db: Path, state: Path, err: TextIO) -> str:
    from hotfix_fsm.engine import HotfixEngine

    env = {**os.environ, "HOTFIX_FSM_DB": str(db), "HOTFIX_FSM_STATE_DIR": str(state)}
    env.pop("HOTFIX_FSM_FAILPOINTS", None)
    err.write(
        "step 1: `hotfix start ... --yes` with failpoint deploy:after_effect "
        "(SIGKILL right after the deploy is dispatched)\n"
    )
    code = _cli(
        "start",
        ISSUE,
        DESCRIPTION,
        "--repo",
        info.work,
        "--cherry-pick",
        info.fix_sha,
        "--yes",
        env={**env, "HOTFIX_FSM_FAILPOINTS": "deploy:after_effect"},
        err=err,
    )
    err.write(f"  the process died with {_describe(code)}\n")
    err.write(
        "step 2: `hotfix resume --take-over --yes` (the dead driver's lease is still "
        "live; taking over fences it out)\n"
    )
    code = _cli("resume", ISSUE, "--take-over", "--yes", env=env, err=err)
    err.write(f"  resume exited {code}\n")
    with HotfixEngine(db) as engine:
        return engine.get(ISSUE).state


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            import signal

            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _summarize(
    *,
    scenario: str,
    state: str,
    info: SandboxInfo,
    running: RunningSandbox,
    db: Path,
    out: TextIO,
    err: TextIO,
) -> int:
    from hotfix_fsm.engine import HotfixEngine
    from hotfix_fsm.reporting.postmortem import postmortem_markdown

    with HotfixEngine(db) as engine:
        hotfix = engine.get(ISSUE)
        out.write(postmortem_markdown(hotfix, engine.journal(hotfix.id)))
    effects = running.effects()
    dispatches = effects.get("dispatches", [])
    deploys = [d for d in dispatches if d.get("workflow") == "deploy-production.yml"]
    out.write("\n## What the sandbox saw\n\n")
    for key in (
        "pull_requests",
        "labels_added",
        "dispatches",
        "deploys",
        "reviews",
        "merges",
        "refs",
        "force_updates",
    ):
        out.write(f"- {key}: {len(effects.get(key, []))}\n")
    out.write(
        f"- production now runs {running.production.version[:12]} "
        f"(release {info.production_sha[:12]}, fix {info.fix_sha[:12]} before "
        "cherry-pick)\n"
    )
    ok = state == EXPECTED[scenario]
    if scenario == "protected-branch" and len(effects.get("merges", [])) != 1:
        ok = False
        err.write(f"demo: expected exactly one merge, saw {len(effects.get('merges', []))}\n")
    if scenario == "crash-and-resume" and len(deploys) != 1:
        ok = False
        err.write(f"demo: expected exactly one deploy dispatch, saw {len(deploys)}\n")
    verdict = "as expected" if ok else f"UNEXPECTED (wanted {EXPECTED[scenario]})"
    err.write(f"demo ({scenario}): the hotfix ended {state} — {verdict}\n")
    return 0 if ok else 1


__all__ = ["EXPECTED", "run_demo"]
