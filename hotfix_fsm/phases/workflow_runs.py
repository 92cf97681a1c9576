"""Dispatch a GitHub Actions workflow at most once per attempt, and follow its run.

Shared by the deploy and the rollback phases. The idempotency key of a dispatch is a
**correlation id** passed as the workflow input ``correlation_id``; the workflow must put it
in its run name (``run-name: Deploy ${{ inputs.correlation_id }}``) so the run can be found
when GitHub does not return run details (GitHub Enterprise before ``return_run_details``)
or when the answer to the dispatch was lost.

Every dispatch is written to a *ledger* in the hotfix's facts (``ctx.save``) **before** the
request is sent: ``[{correlation_id, workflow, ref, sha, at, run_id}]``. A later attempt of
the same phase (after a timeout, a crash or an ambiguous network failure) first looks for
the run of the latest ledger entry for the same sha and adopts it instead of dispatching
again; only a run that failed and was already reported as a failure is replaced by a new
dispatch (``hotfix resume`` after a failed deploy means "deploy again").

When GitHub answers the dispatch with a definite refusal (a 4xx such as 404 "workflow not
found" or 422: nothing was dispatched), the entry gets ``refused: {status, reason}``. A
refused entry is never adopted nor probed for a run: after the configuration is fixed, the
next attempt dispatches the workflow it now names. An ambiguous failure leaves the entry
as it is, so its run is still looked for by correlation id.

Usage from a phase whose ``prepare`` returns
``{"correlation_id": new_correlation_id(ctx, "rollback")}``::

    with github(ctx):
        found = adopt_dispatch(ctx, "rollback_dispatches", sha=target, branch=None)
        if found is not None:
            run_id = found[1]["id"]
        else:
            run_id = dispatch_workflow(
                ctx, "rollback.yml", ref, inputs, ctx.intent["correlation_id"],
                ledger_name="rollback_dispatches", sha=target)["run_id"]
        run = wait_for_run(ctx, run_id, timeout=600, interval=10, what="rollback run")
        if run["conclusion"] != "success":
            raise run_failed(ctx, "rollback_dispatches", run, "the rollback", hint="...")

and ``probe`` returns ``probe_dispatch(ctx, "rollback_dispatches", branch=None, timeout=600,
interval=10, grace=20, facts=lambda entry, run: {...})``. ``sha`` is what the dispatch
deploys (the ledger key); ``branch`` filters the run search (None for a tag or sha ref).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from hotfix_fsm.errors import NeedsHuman, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import DispatchEntry, Facts, LedgerName, reported_key

if TYPE_CHECKING:
    from hotfix_fsm.adapters.github import GitHubClient

T = TypeVar("T")
# What a phase records about a completed run: (its ledger entry, the run) -> facts.
RunFacts = Callable[[DispatchEntry, dict[str, Any]], Mapping[str, Any]]
CLOCK_SKEW = 300.0  # seconds subtracted from "created after" filters
IN_FLIGHT_MARGIN = 5.0  # seconds past the request timeout a dispatch may still land
SUCCESS = "success"


@contextlib.contextmanager
def github(ctx: PhaseContext) -> Iterator[GitHubClient]:
    """The phase's GitHub client, with its waits routed through the lease-aware ctx.wait."""
    client = ctx.services.github
    with client.use_sleep(ctx.wait):
        yield client


def new_correlation_id(ctx: PhaseContext, purpose: str) -> str:
    """``<hotfix id>-<purpose>-<attempt>-<random>``: unique per attempt, readable in Actions."""
    return f"{ctx.hotfix.id}-{purpose}-{ctx.attempt}-{secrets.token_hex(4)}"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll(
    ctx: PhaseContext, fetch: Callable[[], T | None], *, timeout: float, interval: float, what: str
) -> T | None:
    """Call ``fetch`` until it returns something or ``timeout`` passes (then None)."""
    start = ctx.clock()
    while True:
        value = fetch()
        if value is not None:
            return value
        elapsed = ctx.clock() - start
        if elapsed >= timeout:
            return None
        ctx.progress(f"waiting for {what}", elapsed=round(elapsed, 1))
        ctx.wait(min(interval, timeout - elapsed))


def find_run_by_correlation(
    ctx: PhaseContext,
    workflow: str,
    correlation_id: str,
    *,
    branch: str | None = None,
    since: float | None = None,
    wait: float = 0.0,
    interval: float = 1.0,
) -> dict[str, Any] | None:
    """The run of ``workflow`` whose name or title carries ``correlation_id``, or None.

    Looks at workflow_dispatch runs (on ``branch``, created after ``since`` minus a clock
    skew margin), newest first; keeps looking for ``wait`` seconds, since a new run takes
    a moment to be listed.
    """
    gh = ctx.services.github
    created = f">={iso(since - CLOCK_SKEW)}" if since else None

    def search() -> dict[str, Any] | None:
        for page in (1, 2, 3):
            runs = gh.workflow_runs(
                workflow, branch=branch, event="workflow_dispatch", created=created, page=page
            )
            for run in runs:
                label = f"{run.get('display_title') or ''} {run.get('name') or ''}"
                if correlation_id in label:
                    return run
            if len(runs) < 50:
                return None
        return None

    return poll(
        ctx,
        search,
        timeout=wait,
        interval=interval,
        what=f"the run of {workflow} with correlation id {correlation_id}",
    )


def waiting_for(pending: list[dict[str, Any]]) -> str:
    """Who a run's pending deployments wait for: "environment production (alice, bob)"."""
    parts = []
    for item in pending:
        env = (item.get("environment") or {}).get("name") or "?"
        names = [
            str((r.get("reviewer") or {}).get("login") or (r.get("reviewer") or {}).get("name"))
            for r in item.get("reviewers") or []
            if isinstance(r, dict)
        ]
        parts.append(f"environment {env} ({', '.join(names) or 'no reviewer listed'})")
    return "; ".join(parts) or "an environment's reviewers"


def wait_for_run(
    ctx: PhaseContext, run_id: int, *, timeout: float, interval: float, what: str
) -> dict[str, Any]:
    """Poll the run until it completes; returns it. A deadline raises TransientError, or
    ``NeedsHuman`` naming the reviewers when the run waits on a protected environment."""
    from hotfix_fsm.errors import TransientError
    from hotfix_fsm.phases.run_jobs import RunJobs

    gh = ctx.services.github
    latest: dict[str, Any] = {}
    reviewers: list[str] = []
    jobs = RunJobs(gh, run_id)

    def check() -> tuple[bool, str]:
        run = gh.get_run(run_id)
        latest.clear()
        latest.update(run)
        reviewers.clear()
        if run.get("status") == "waiting":
            # A protected environment holds the run until one of its reviewers approves.
            reviewers.append(waiting_for(gh.pending_deployments(run_id)))
            return False, f"waiting for a reviewer of {reviewers[0]} ({run.get('html_url')})"
        if run.get("status") == "completed":
            return True, f"completed ({run.get('html_url')})"
        running = jobs.text(run)
        return (
            False,
            f"{run.get('status')}{', ' + running if running else ''} ({run.get('html_url')})",
        )

    try:
        ctx.wait_until(check, timeout=timeout, interval=interval, what=what)
    except TransientError:
        if not reviewers:
            raise
        raise NeedsHuman(
            f"{what} {run_id} waits for a reviewer of {reviewers[0]} to approve its "
            f"deployment — {latest.get('html_url')}",
            hint="one of them approves it — `hotfix approve "
            f"{ctx.hotfix.id} deploy` with their own token, or Review deployments on GitHub — "
            f"then `hotfix resume {ctx.hotfix.id}` follows the run",
        ) from None
    return latest


def ledger(ctx: PhaseContext, name: LedgerName) -> list[DispatchEntry]:
    """A copy of the ledger's entries, oldest first."""
    return [e.copy() for e in ctx.facts.get(name) or [] if isinstance(e, dict)]


def _save_ledger(ctx: PhaseContext, name: LedgerName, entries: list[DispatchEntry]) -> None:
    update: Facts = {}
    update[name] = entries
    ctx.save(**update)


def refused(entry: DispatchEntry) -> bool:
    """True when GitHub definitely refused the entry's dispatch (nothing was dispatched)."""
    return bool(entry.get("refused"))


def _update_ledger(
    ctx: PhaseContext, name: LedgerName, correlation_id: str, changes: DispatchEntry
) -> None:
    entries = ledger(ctx, name)
    for entry in entries:
        if entry.get("correlation_id") == correlation_id:
            entry.update(changes)
    _save_ledger(ctx, name, entries)


def dispatch_workflow(
    ctx: PhaseContext,
    workflow: str,
    ref: str,
    inputs: dict[str, str],
    correlation_id: str,
    *,
    ledger_name: LedgerName,
    sha: str,
    branch: str | None = None,
    grace: float = 20.0,
    find_timeout: float = 120.0,
    interval: float = 1.0,
) -> dict[str, Any]:
    """Record, then dispatch ``workflow`` on ``ref`` once; return what identifies its run.

    Returns ``{correlation_id, run_id, run_url, workflow, ref, dispatched_at}``. An
    ambiguous failure is never answered by a blind second dispatch: the run is looked for
    by its correlation id (for ``grace`` seconds); if none appears the error goes up and
    the phase's next attempt adopts or replaces the dispatch through the ledger. A definite
    refusal (``GitHubAPIError``: GitHub answered 4xx, nothing was dispatched) marks the
    ledger entry ``refused`` before the error goes up, so no attempt looks for its run.
    """
    from hotfix_fsm.adapters.github import AmbiguousWrite, GitHubAPIError

    gh = ctx.services.github
    now = time.time()
    entry: DispatchEntry = {
        "correlation_id": correlation_id,
        "workflow": workflow,
        "ref": ref,
        "sha": sha,
        "at": now,
        "run_id": None,
    }
    _save_ledger(ctx, ledger_name, [*ledger(ctx, ledger_name), entry])
    payload = {**inputs, "correlation_id": correlation_id}
    run: dict[str, Any] | None = None
    details: dict[str, Any] | None = None
    try:
        details = gh.dispatch_workflow(workflow, ref, payload, return_run_details=True)
    except GitHubAPIError as exc:
        # The write is sent once (never resent after an ambiguous failure), so this answer
        # is about the only request: GitHub refused it and dispatched nothing.
        _update_ledger(
            ctx,
            ledger_name,
            correlation_id,
            {"refused": {"status": exc.status, "reason": exc.message}},
        )
        raise
    except AmbiguousWrite:
        run = find_run_by_correlation(
            ctx, workflow, correlation_id, branch=branch, since=now, wait=grace, interval=interval
        )
        if run is None:
            raise
    run_id: int | None = None
    run_url = ""
    if run is not None:
        run_id, run_url = int(run["id"]), str(run.get("html_url") or "")
    elif details and details.get("workflow_run_id"):
        run_id = int(details["workflow_run_id"])
        run_url = str(details.get("html_url") or details.get("run_url") or "")
    else:
        # 204 without run details (older GitHub Enterprise): find the run by its id.
        run = find_run_by_correlation(
            ctx,
            workflow,
            correlation_id,
            branch=branch,
            since=now,
            wait=find_timeout,
            interval=interval,
        )
        if run is None:
            raise NeedsHuman(
                f"{workflow} was dispatched on {ref} but no run with correlation id "
                f"{correlation_id} appeared within {find_timeout:.0f}s",
                hint=f"check the Actions tab; make sure {workflow} sets `run-name` to include "
                "`inputs.correlation_id`; then `hotfix resume` (it adopts the run if it exists)",
            )
        run_id, run_url = int(run["id"]), str(run.get("html_url") or "")
    _update_ledger(ctx, ledger_name, correlation_id, {"run_id": run_id, "run_url": run_url})
    return {
        "correlation_id": correlation_id,
        "run_id": run_id,
        "run_url": run_url,
        "workflow": workflow,
        "ref": ref,
        "dispatched_at": now,
    }


def _lookup(
    ctx: PhaseContext, entry: DispatchEntry, branch: str | None, grace: float, interval: float
) -> dict[str, Any] | None:
    from hotfix_fsm.adapters.github import GitHubAPIError

    run_id = entry.get("run_id")
    if run_id:
        try:
            return ctx.services.github.get_run(int(run_id))
        except GitHubAPIError as exc:
            if exc.status == 404:
                return None
            raise
    # A dispatch whose answer was never recorded may still be in flight (another driver's,
    # or ours before a crash): look for its run for longer than a request can live, counted
    # from when it was sent, before calling it not done.
    window = max(grace, ctx.config.github.request_timeout + IN_FLIGHT_MARGIN)
    left = max(0.0, window - (time.time() - float(entry.get("at") or 0.0)))
    return find_run_by_correlation(
        ctx,
        entry.get("workflow", ""),
        entry.get("correlation_id", ""),
        branch=branch,
        since=float(entry.get("at") or 0.0) or None,
        wait=left,
        interval=interval,
    )


def adopt_dispatch(
    ctx: PhaseContext,
    ledger_name: LedgerName,
    *,
    sha: str,
    branch: str | None,
    grace: float = 20.0,
    interval: float = 1.0,
) -> tuple[DispatchEntry, dict[str, Any]] | None:
    """``(ledger entry, run)`` of the latest dispatch for ``sha`` worth following, or None.

    None when there was no dispatch for this sha, its run never appeared, or the run
    failed and that failure was already reported (so a new dispatch is wanted). Entries
    GitHub refused dispatched nothing and are passed over.
    """
    entries = [e for e in ledger(ctx, ledger_name) if e.get("sha") == sha and not refused(e)]
    if not entries:
        return None
    entry = entries[-1]
    run = _lookup(ctx, entry, branch, grace, interval)
    if run is None:
        return None
    failed = run.get("status") == "completed" and run.get("conclusion") != SUCCESS
    if failed and run.get("id") in (ctx.facts.get(reported_key(ledger_name)) or []):
        return None
    if not entry.get("run_id"):
        _update_ledger(
            ctx,
            ledger_name,
            entry.get("correlation_id", ""),
            {"run_id": run["id"], "run_url": run.get("html_url")},
        )
    return entry, run


def run_failed(
    ctx: PhaseContext, ledger_name: LedgerName, run: dict[str, Any], what: str, hint: str
) -> PermanentError:
    """Remember that ``run``'s failure was reported, and the error that reports it."""
    key = reported_key(ledger_name)
    reported = list(ctx.facts.get(key) or [])
    run_id = run.get("id")
    if run_id is not None and run_id not in reported:
        update: Facts = {}
        update[key] = [*reported, int(run_id)]
        ctx.save(**update)
    return PermanentError(
        f"{what} run {run.get('id')} finished with conclusion {run.get('conclusion')}: "
        f"{run.get('html_url')}",
        hint=hint,
    )


def probe_dispatch(
    ctx: PhaseContext,
    ledger_name: LedgerName,
    *,
    branch: str | None,
    timeout: float,
    interval: float,
    grace: float,
    facts: RunFacts,
) -> Probe:
    """After a crash: did this attempt's dispatch (``ctx.intent['correlation_id']``) run?

    Done (with ``facts(entry, run)``) once its run completed successfully; not done when
    nothing was sent, GitHub refused the dispatch, no run appeared, or the run failed (the
    phase then reports it).
    """
    correlation_id = ctx.intent.get("correlation_id")
    entry = next(
        (e for e in ledger(ctx, ledger_name) if e.get("correlation_id") == correlation_id), None
    )
    if not correlation_id or entry is None:
        return Probe.not_done("this attempt never sent its dispatch")
    why = entry.get("refused")
    if why:
        reason = why.get("reason") if isinstance(why, dict) else why
        return Probe.not_done(
            f"GitHub refused the dispatch of {entry.get('workflow')} "
            f"(correlation id {correlation_id}), so nothing was dispatched: {reason}"
        )
    run = _lookup(ctx, entry, branch, grace, interval)
    if run is None:
        return Probe.not_done(f"no run carries correlation id {correlation_id}")
    if run.get("status") != "completed":
        run = wait_for_run(
            ctx,
            int(run["id"]),
            timeout=timeout,
            interval=interval,
            what=f"run {run['id']} ({run.get('html_url')})",
        )
    if run.get("conclusion") != SUCCESS:
        return Probe.not_done(f"run {run.get('id')} concluded {run.get('conclusion')}")
    return Probe.done(facts(entry, run))


class WorkflowPhase(BasePhase):
    """A phase whose one effect is a workflow dispatch, followed until its run completes.

    Subclasses name their ``ledger`` and ``purpose`` (the correlation id's middle word and
    the runs' label in progress messages). ``run_search_grace`` is how long a
    just-dispatched run may take to be listed, and ``find_timeout`` how long to look for it
    when GitHub answers 204 without run details.
    """

    ledger: ClassVar[LedgerName]
    purpose: ClassVar[str]

    def __init__(self, *, run_search_grace: float = 20.0, find_timeout: float = 120.0) -> None:
        self.run_search_grace = run_search_grace
        self.find_timeout = find_timeout

    def interval(self, ctx: PhaseContext) -> float:
        return max(0.01, ctx.config.deploy.poll_interval)

    def probe_run(self, ctx: PhaseContext, *, branch: str | None, facts: RunFacts) -> Probe:
        """``probe_dispatch`` for this phase's ledger, with the deploy timeout."""
        with github(ctx):
            return probe_dispatch(
                ctx,
                self.ledger,
                branch=branch,
                timeout=ctx.config.deploy.timeout,
                interval=self.interval(ctx),
                grace=self.run_search_grace,
                facts=facts,
            )

    def dispatch_and_wait(
        self,
        ctx: PhaseContext,
        *,
        workflow: str,
        ref: str,
        inputs: dict[str, str],
        sha: str,
        branch: str | None,
        what: Callable[[dict[str, Any]], str],
        before_dispatch: Callable[[], None] | None = None,
    ) -> tuple[DispatchEntry, dict[str, Any]]:
        """``(ledger entry, completed run)``: an earlier dispatch's run, or a new one's.

        Adopts the run of an earlier dispatch for ``sha`` when there is one worth following;
        else calls ``before_dispatch`` (a last check that may raise) and dispatches once.
        Then waits for the run to complete (``what(run)`` names it while waiting). Call it
        inside ``with github(ctx)``.
        """
        interval = self.interval(ctx)
        entry: DispatchEntry
        found = adopt_dispatch(
            ctx, self.ledger, sha=sha, branch=branch, grace=self.run_search_grace, interval=interval
        )
        if found is not None:
            entry, run = found
            ctx.progress(
                f"following {self.purpose} run {run['id']} dispatched earlier",
                run_url=run.get("html_url"),
            )
        else:
            if before_dispatch is not None:
                before_dispatch()
            correlation_id = str(
                ctx.intent.get("correlation_id") or new_correlation_id(ctx, self.purpose)
            )
            sent = dispatch_workflow(
                ctx,
                workflow,
                ref,
                inputs,
                correlation_id,
                ledger_name=self.ledger,
                sha=sha,
                branch=branch,
                grace=self.run_search_grace,
                find_timeout=self.find_timeout,
                interval=interval,
            )
            entry = {"correlation_id": correlation_id}
            run = {"id": sent["run_id"], "html_url": sent["run_url"]}
        final = wait_for_run(
            ctx,
            int(run["id"]),
            timeout=ctx.config.deploy.timeout,
            interval=interval,
            what=what(run),
        )
        return entry, final
