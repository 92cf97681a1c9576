"""``hotfix approve ID deploy`` on a deploy run waiting for an environment's reviewers.

**Where the effect runs.** Approving a pending deployment is a person's act on GitHub:
GitHub checks the *token's user* against the environment's required reviewers (and, with
"prevent self-review", against who triggered the run) and records that user as the
approver. So the approve command takes the effect itself, from whatever terminal the
reviewer types it in, with *their* token — like pressing "Approve and deploy" on
github.com — rather than journaling a request for the driver to carry out with the
driver's token (which would approve under the wrong name, or be refused). The driver
meanwhile keeps following the run and sees it leave ``waiting`` within one poll.

**Once, across crashes.** The act goes through the one step protocol (``run_step``) with a
``BesideGuard``: intent row → the POST → done row, each journaled; the failpoints
``environment_approval:before_effect|after_effect|after_done`` mark its boundaries. It
takes no lease (it does not move the hotfix, and a live driver holds the lease); it is
once-only by GitHub's own rule — a pending deployment is approved once, a second POST is
refused — and by the probe, which looks first: the run's pending deployments for those
environments gone and an approval in the run's review history → done (adopted, with the
approver GitHub names); still pending → approve. A second ``approve`` finds nothing
pending and says it is already approved, and by whom.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hotfix_fsm.durable.lease import BesideGuard
from hotfix_fsm.durable.step import in_doubt, run_step
from hotfix_fsm.errors import ApprovalRefused, HotfixError, IllegalTransition, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.workflow_runs import github, waiting_for
from hotfix_fsm.store import Entry, Hotfix, JournalEntry

if TYPE_CHECKING:
    from hotfix_fsm.durable.runner import Runner
    from hotfix_fsm.store import Store

PHASE = "environment_approval"


@dataclass(frozen=True)
class EnvironmentApproved:
    """The journal row that records the approval, and whether it was given before."""

    entry: JournalEntry
    already: bool = False


def deploy_run_id(hotfix: Hotfix) -> int | None:
    """The deploy run of the hotfix's fix commit, once the deploy phase found it."""
    sha = hotfix.context.get("fix_sha")
    for entry in reversed(hotfix.context.get("deploy_dispatches") or []):
        if isinstance(entry, dict) and entry.get("run_id") and entry.get("sha") in (None, sha):
            return int(entry["run_id"])
    return None


def waits_for_environment(hotfix: Hotfix) -> bool:
    """True while the hotfix is deploying (or stopped there): its run may wait for one."""
    return "deploying" in (hotfix.state, hotfix.failed_from)


def approves_environment(store: Store, hotfix: Hotfix) -> bool:
    """Whether ``approve deploy`` is about the deploy run's environment: while deploying,
    or whenever an earlier environment approval was left in doubt (a killed ``approve``),
    which the next one settles by probing, whatever the hotfix went on to do."""
    return waits_for_environment(hotfix) or in_doubt(store, hotfix.id, PHASE) is not None


class ApproveEnvironment(BasePhase):
    """POST the approval of the run's pending deployments to ``environments``."""

    name = PHASE

    def __init__(self, run_id: int, environments: dict[int, str], by: str, comment: str) -> None:
        self.run_id = run_id
        self.environments = environments
        self.by = by
        self.comment = comment

    def key(self, ctx: PhaseContext) -> str:
        return self.key_of(ctx.hotfix.id)

    def key_of(self, hotfix_id: str) -> str:
        """``<hotfix>:environment_approval:<run id>:<environment ids>``."""
        ids = ",".join(str(i) for i in sorted(self.environments))
        return f"{hotfix_id}:{PHASE}:{self.run_id}:{ids}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        # In the intent, so a later approve that finds it in doubt probes exactly this.
        return {
            "run_id": self.run_id,
            "environments": {str(i): n for i, n in self.environments.items()},
            "by": self.by,
            "comment": self.comment,
        }

    @classmethod
    def from_intent(cls, payload: dict[str, Any]) -> ApproveEnvironment:
        environments = {int(i): str(n) for i, n in (payload.get("environments") or {}).items()}
        return cls(
            int(payload["run_id"]),
            environments,
            str(payload.get("by") or "unknown"),
            str(payload.get("comment") or ""),
        )

    def _facts(self, ctx: PhaseContext, approved_by: str, at: float) -> dict[str, Any]:
        run_url = None
        for entry in ctx.facts.get("deploy_dispatches") or []:
            if isinstance(entry, dict) and entry.get("run_id") == self.run_id:
                run_url = entry.get("run_url")
        return {
            "environment_approval": {
                "run_id": self.run_id,
                "run_url": run_url,
                "environments": sorted(self.environments.values()),
                "environment_ids": sorted(self.environments),
                "approved_by": approved_by,
                "by": self.by,
                "at": at,
                "comment": self.comment,
            }
        }

    def probe(self, ctx: PhaseContext) -> Probe:
        with github(ctx) as gh:
            pending = gh.pending_deployments(self.run_id)
            ids = {int((p.get("environment") or {}).get("id") or 0) for p in pending}
            if ids & set(self.environments):
                return Probe.not_done("the deployment is still waiting for a reviewer")
            for approval in reversed(gh.run_approvals(self.run_id)):
                envs = {int(e.get("id") or 0) for e in approval.get("environments") or []}
                if approval.get("state") == "approved" and envs & set(self.environments):
                    login = str((approval.get("user") or {}).get("login") or "unknown")
                    return Probe.done(self._facts(ctx, login, time.time()))
        return Probe.unknown(
            f"workflow run {self.run_id} no longer waits, but GitHub lists no approval of it"
        )

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        from hotfix_fsm.adapters.github import GitHubAPIError

        with github(ctx) as gh:
            login = gh.current_login() or "unknown"
            try:
                gh.approve_pending_deployments(self.run_id, sorted(self.environments), self.comment)
            except GitHubAPIError as exc:
                # Approved meanwhile (on github.com, or an unanswered earlier request)?
                seen = self.probe(ctx) if exc.status == 422 else None
                if seen is not None and seen.status == "done":
                    return seen.facts
                raise
        return self._facts(ctx, login, time.time())


def _previous(runner: Runner, hotfix_id: str, run_id: int) -> JournalEntry | None:
    for entry in runner.store.journal(
        hotfix_id, phase=PHASE, kinds=("done",), newest_first=True, limit=20
    ):
        approval = (entry.payload.get("facts") or {}).get("environment_approval") or {}
        if approval.get("run_id") == run_id:
            return entry
    return None


def approve_environment(
    runner: Runner, hotfix: Hotfix, *, by: str | None = None, comment: str | None = None
) -> EnvironmentApproved:
    """Approve the deploy run's pending deployment as the token's user, journaled.

    Raises:
        ApprovalRefused: the token's user is not one of the environment's reviewers (the
            message names who can).
        IllegalTransition: there is no deploy run waiting for an environment.
    """
    run_id = deploy_run_id(hotfix)
    if run_id is None:
        raise IllegalTransition(
            "the deploy run is not known yet, so there is nothing to approve on GitHub",
            hotfix_id=hotfix.id,
            phase="deploy",
            hint=f"wait until `hotfix status {hotfix.id}` shows the run waiting for a reviewer",
        )
    services = runner.services_for(hotfix)
    try:
        person = by or _user()
        doubt = in_doubt(runner.store, hotfix.id, PHASE)
        if doubt is not None and doubt.payload.get("run_id") == run_id:
            step = ApproveEnvironment.from_intent(doubt.payload)  # probed before anything
        else:
            pending = services.github.pending_deployments(run_id)
            if not pending:
                earlier = _previous(runner, hotfix.id, run_id)
                if earlier is not None:
                    return EnvironmentApproved(earlier, already=True)
                approved = [
                    str((a.get("user") or {}).get("login") or "someone")
                    for a in services.github.run_approvals(run_id)
                    if a.get("state") == "approved"
                ]
                if approved:
                    raise IllegalTransition(
                        f"deploy run {run_id} was already approved on GitHub by "
                        f"{', '.join(approved)}; nothing was sent",
                        hotfix_id=hotfix.id,
                        phase="deploy",
                        hint=f"`hotfix status {hotfix.id}` shows the deploy going on",
                    )
            mine = {
                int(p["environment"]["id"]): str(p["environment"].get("name") or "?")
                for p in pending
                if p.get("current_user_can_approve") and (p.get("environment") or {}).get("id")
            }
            if not pending or not mine:
                raise _cannot(hotfix, run_id, pending)
            text = (comment or "").strip() or f"approved with hotfix_fsm for hotfix {hotfix.id}"
            step = ApproveEnvironment(run_id, mine, person, text)
        owner = f"{person}@{socket.gethostname()}:{os.getpid()}"
        driver = runner.driver(
            BesideGuard(runner.store, hotfix.id, owner), runner.config_for(hotfix), services
        )
        rows: list[JournalEntry] = []

        def complete(latest: Hotfix, done: list[Entry], _data: dict[str, Any]) -> None:
            seq = driver.write(latest, done)
            rows.extend(runner.store.journal(hotfix.id, after_seq=seq - 1, limit=1))

        result = run_step(
            driver,
            step,
            PHASE,
            complete=complete,
            key=step.key_of(hotfix.id),  # an older run's approval in doubt is not this one
            writes_context=False,
        )
        if result.status != "done" or not rows:
            error = result.error
            raise PermanentError(
                f"the approval of deploy run {run_id} did not complete: "
                f"{error.message if error else result.status}",
                hotfix_id=hotfix.id,
                phase=PHASE,
                hint=(error.hint if error and error.hint else None)
                or f"`hotfix approve {hotfix.id} deploy` again looks at GitHub first",
            )
        return EnvironmentApproved(rows[0])
    finally:
        services.close()


def _cannot(hotfix: Hotfix, run_id: int, pending: list[dict[str, Any]]) -> HotfixError:
    if not pending:
        return IllegalTransition(
            f"deploy run {run_id} is not waiting for an environment's reviewers",
            hotfix_id=hotfix.id,
            phase="deploy",
            hint=f"`hotfix status {hotfix.id}` shows what the hotfix waits for",
        )
    return ApprovalRefused(
        f"the GitHub token's user may not approve deploy run {run_id}: it waits for a "
        f"reviewer of {waiting_for(pending)}; nothing was sent",
        hotfix_id=hotfix.id,
        phase="deploy",
        hint="one of them runs `hotfix approve "
        f"{hotfix.id} deploy` with their own token, or approves it on GitHub",
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


__all__ = [
    "PHASE",
    "ApproveEnvironment",
    "EnvironmentApproved",
    "approve_environment",
    "approves_environment",
    "deploy_run_id",
    "waits_for_environment",
]
