"""``HotfixEngine``: the Python API internal tooling uses (the CLI is a thin layer on it)."""

from __future__ import annotations

import builtins
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from hotfix_fsm.core import machine
from hotfix_fsm.core.outcome import Event, Outcome, can, next_action_for
from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.core.validate import validate_description, validate_issue
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.errors import (
    ApprovalRefused,
    IllegalTransition,
    InvalidInput,
    LeaseHeld,
    NotFound,
    UsageError,
)
from hotfix_fsm.log import get_logger
from hotfix_fsm.phases.base import Phase
from hotfix_fsm.phases.services import Factory, Services
from hotfix_fsm.store import Entry, Hotfix, JournalEntry, Store, open_store

if TYPE_CHECKING:
    from hotfix_fsm.config import Config, ConfigDrift
    from hotfix_fsm.durable.runner import Runner
    from hotfix_fsm.phases.registry import Registry
    from hotfix_fsm.recovery.environment_approval import EnvironmentApproved
    from hotfix_fsm.reporting.report import HotfixStatus

# A string: the configuration module loads only where a command reads a configuration.
Preflight: TypeAlias = "Callable[[Services, Config, str], dict[str, Any]]"
GATES = ("fix", "deploy", "rollback")
log = get_logger("hotfix_fsm.engine")


class HotfixEngine:
    """Start, drive, approve, abort, roll back and inspect hotfixes in one store.

    Args:
        db: a SQLAlchemy URL or a SQLite path; default ``HOTFIX_FSM_DB`` or the XDG state dir.
        phases: phase implementations replacing the defaults, keyed by phase name.
        services: factories replacing adapters (``git``, ``github``, ``http``, ``alerts``)
            or adding services custom phases fetch with ``ctx.services.get(name)``.
        config: a configuration to use instead of the repository's ``hotfix.toml`` (and
            instead of the configuration a hotfix pinned when it started).
        config_path: the configuration file (``--config``): read at start; later compared
            with the pinned values, and taken only by ``reload_config``.
        lease_ttl: seconds a driver's lease lives without a heartbeat (renewed every third
            of it; a driver that could not renew for this long sends nothing more, and
            another may take the hotfix over once it expired). ``hotfix --lease-ttl``.
        registry: the phases and their graph (``Registry.default().add(PhaseSpec(...))``
            to add a phase); default the standard ones.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | Store | None = None,
        *,
        phases: Mapping[str, Phase] | None = None,
        services: Mapping[str, Factory] | None = None,
        config: Config | None = None,
        config_path: str | os.PathLike[str] | None = None,
        lease_ttl: float = 30.0,
        preflight: Preflight | None = None,
        backoff_base: float = 1.0,
        registry: Registry | None = None,
    ) -> None:
        if not (isinstance(lease_ttl, int | float) and 0 < lease_ttl < math.inf):
            raise InvalidInput(f"lease_ttl must be a positive number of seconds, not {lease_ttl!r}")
        self.store = db if isinstance(db, Store) else open_store(db)
        self._registry = registry
        # The standard registry loads every phase module: only a driver needs it.
        self.graph = registry.graph if registry is not None else machine.DEFAULT
        self.writer = JournalWriter(self.store, self.graph)
        self._phase_overrides = dict(phases or {})
        self._service_factories = dict(services or {})
        self._config = config
        self._config_path = config_path
        self._preflight = preflight
        self._phases: dict[str, Phase] | None = None
        self._runner_args = {"lease_ttl": lease_ttl, "backoff_base": backoff_base}
        self._runner: Runner | None = None
        self._logged: set[tuple[str, str]] = set()

    # -- wiring --------------------------------------------------------------------------

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            # Only a driver needs the runner (and the phase modules it loads): not `status`.
            from hotfix_fsm.durable.runner import Runner

            registry = self.registry
            if self._phases is None:
                # Each standard phase is made (and its module imported) when first run.
                self._phases = registry.table(self._phase_overrides)
            self._runner = Runner(
                self.store,
                self._phases,
                services_for=self.services_for,
                config_for=self.config_for,
                lease_ttl=float(self._runner_args["lease_ttl"]),
                backoff_base=float(self._runner_args["backoff_base"]),
                writer=self.writer,
                registry=registry,
            )
        return self._runner

    @property
    def registry(self) -> Registry:
        """The phases this engine drives (the standard ones unless given)."""
        if self._registry is None:
            from hotfix_fsm.phases.registry import Registry

            self._registry = Registry.default()
        return self._registry

    def config_for(self, hotfix: Hotfix | None = None, repo: str | None = None) -> Config:
        """The configuration of ``hotfix``: the values it pinned when it started, from any
        directory or machine (secrets still from the environment, or from the file, at use
        time); or, without a hotfix, the file of ``repo`` (found at its git top level)."""
        from hotfix_fsm.config import load_config

        if self._config is not None:
            config = self._config
        elif hotfix is not None:
            config = self._pinned_config(hotfix)
        else:
            config = load_config(repo, self._config_path)
        register_secret(*config.secrets())
        return config

    def _pinned_config(self, hotfix: Hotfix) -> Config:
        from hotfix_fsm.config import compare_with_file, config_from_pin, load_config, pinned

        pin = pinned(hotfix.options)
        if pin is None:
            path = self._config_path or hotfix.options.get("config_path")
            config = load_config(hotfix.repo, path)
            self._log_once(
                hotfix.id,
                "unpinned",
                lambda: log.warning(
                    "config_not_pinned",
                    hotfix=hotfix.id,
                    message=f"hotfix {hotfix.id} was started before configurations were "
                    f"pinned; its configuration is read from {config.source} as before",
                ),
            )
            return config
        drift, now = compare_with_file(hotfix.id, hotfix.repo, pin, self._config_path)
        if drift.changes:
            self._log_once(
                hotfix.id,
                "drift:" + "\n".join(drift.changes),
                lambda: log.info(
                    "config_differs_from_pinned",
                    hotfix=hotfix.id,
                    file=drift.file,
                    changed=list(drift.changes),
                ),
            )
        return config_from_pin(pin, secrets_from=now)

    def _log_once(self, hotfix_id: str, what: str, emit: Callable[[], None]) -> None:
        if (hotfix_id, what) not in self._logged:
            self._logged.add((hotfix_id, what))
            emit()

    def config_pin(
        self, repo: str | os.PathLike[str], config: Config | None = None
    ) -> dict[str, Any]:
        """What a hotfix of ``repo`` pins of its configuration when it is recorded: the
        effective values, their hash and where they came from (never a secret)."""
        from hotfix_fsm.config import locate_config, pin_config

        location = None if self._config is not None else locate_config(repo, self._config_path)
        return pin_config(config or self.config_for(repo=str(repo)), location)

    def config_drift(self, hotfix: Hotfix) -> ConfigDrift | None:
        """How the configuration file differs now from what ``hotfix`` pinned (None when it
        pinned nothing, or this engine was given a Config)."""
        from hotfix_fsm.config import compare_with_file, pinned

        pin = pinned(hotfix.options)
        if self._config is not None or pin is None:
            return None
        return compare_with_file(hotfix.id, hotfix.repo, pin, self._config_path)[0]

    def reload_config(self, ref: str, *, take_over: bool = False) -> ConfigDrift:
        """Pin the configuration file's values now, in place of those pinned at start.

        The file is ``--config`` when given, else the pinned file's place in the hotfix's
        work tree. The change is journaled as a note listing the changed keys, written
        under the hotfix's lease. Returns what changed (nothing is written when nothing did).

        Raises:
            UsageError: there is no file to reload from. ConfigError: the file is invalid.
            LeaseHeld: another driver holds the hotfix and ``take_over`` is false.
        """
        from hotfix_fsm.config import pinned, repin_from_file

        hotfix = self.resolve(ref)
        pin = pinned(hotfix.options)
        new, drift = repin_from_file(hotfix.id, hotfix.repo, pin, self._config_path)
        if pin is not None and new["hash"] == pin.get("hash"):
            return drift
        note = {
            "config_reload": {
                "file": drift.file,
                "hash": new["hash"],
                "previous_hash": pin.get("hash") if pin else None,
                "changed": list(drift.changes) if pin else ["(nothing was pinned before)"],
            }
        }
        runner = self.runner
        guard = runner.acquire(hotfix.id, take_over=take_over)
        try:
            latest = self.store.get(hotfix.id)
            self.writer.write(
                latest,
                [Entry("note", None, 0, None, note)],
                guard=guard,
                options={**latest.options, "config": new},
            )
        finally:
            runner.release(guard)
        return drift

    def services_for(self, hotfix: Hotfix) -> Services:
        return Services(self.config_for(hotfix), hotfix.repo, factories=self._service_factories)

    def services_at(self, repo: str | os.PathLike[str], config: Config | None = None) -> Services:
        """Adapters for a repository with this engine's factories (close them when done)."""
        return Services(
            config or self.config_for(repo=str(repo)), repo, factories=self._service_factories
        )

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Receive every journal row this engine commits (driving, approvals, aborts,
        adoptions, hand-offs) as it commits, and progress of long waits."""
        return self.writer.subscribe(callback)

    # -- commands ------------------------------------------------------------------------

    def start(
        self,
        issue: str,
        description: str,
        *,
        repo: str | os.PathLike[str] = ".",
        cherry_pick: Sequence[str] = (),
        patch: str | os.PathLike[str] | None = None,
        yes: bool = False,
        force: bool = False,
        severity: str | None = None,
    ) -> Hotfix:
        """Validate every argument, run the preflight checks and record a new hotfix (it
        does not drive it). Nothing is recorded and nothing changes in the repository (a
        fetch aside) unless every check passes, the fix given included.

        The repository is the git top level of ``repo`` (any directory inside the work
        tree); the configuration found there (or given) is pinned with the hotfix.
        """
        from hotfix_fsm.config import git_top_level

        given = Path(repo).expanduser().resolve()
        repo_path = git_top_level(given) or given
        config = self.config_for(repo=str(repo_path))
        validate_issue(issue, config.issue_pattern)
        validate_description(description)
        from hotfix_fsm.phases.git_phases import check_branch_pattern

        check_branch_pattern(config.branch_pattern, issue)
        if cherry_pick and patch:
            raise InvalidInput("give either --cherry-pick or --patch, not both")
        patch_path = None
        if patch is not None:
            patch_path = Path(patch).expanduser().resolve()
            if not patch_path.is_file():
                raise InvalidInput(f"patch file {patch} does not exist")
        for sha in cherry_pick:
            if not sha or sha.startswith("-") or len(sha) > 200:
                raise InvalidInput(f"cherry-pick {sha!r} is not a commit reference")
        active = self.store.active_for_issue(issue)
        if active and not force:
            raise UsageError(
                f"hotfix {active[0].id} for issue {issue} is still {active[0].state}",
                hint=f"{next_action_for(active[0])}; or start another with --force",
            )
        services = Services(config, repo_path, factories=self._service_factories)
        try:
            facts = self._run_preflight(services, config, issue, cherry_pick, patch_path)
        finally:
            services.close()
        picks = facts.pop("cherry_pick", None) or list(cherry_pick)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        hotfix_id = f"{issue}-{stamp}"
        mode = "cherry-pick" if cherry_pick else "patch" if patch_path else "manual"
        options = {
            "fix_mode": mode,
            "cherry_pick": picks,
            "patch": str(patch_path) if patch_path else None,
            "yes": yes,
            "severity": severity or config.severity,
            "config_path": str(self._config_path) if self._config_path else None,
            "config": self.config_pin(repo_path, config),
            "started_by": _user(),
        }
        return self.writer.create(
            hotfix_id=hotfix_id,
            issue=issue,
            description=description,
            repo=str(repo_path),
            graph_hash=self.graph.hash,
            options=options,
            context={"timestamp": stamp, **facts},
        )

    def _run_preflight(
        self,
        services: Services,
        config: Config,
        issue: str,
        cherry_pick: Sequence[str],
        patch: Path | None,
    ) -> dict[str, Any]:
        if self._preflight is not None:
            return self._preflight(services, config, issue)
        from hotfix_fsm.phases.git_phases import preflight

        return preflight(services, config, issue, cherry_pick=cherry_pick, patch=patch)

    def drive(
        self, ref: str | None = None, *, take_over: bool = False, reload_config: bool = False
    ) -> Outcome:
        """Advance a hotfix (the most recent unfinished one when ``ref`` is None).

        It runs with the configuration pinned at start; ``reload_config`` first pins the
        file's values instead (``reload_config()``).
        """
        hotfix = self.resolve(ref)
        if reload_config:
            self.reload_config(hotfix.id, take_over=take_over)
        return self.runner.drive(hotfix.id, take_over=take_over)

    resume = drive

    def approve(
        self, ref: str, gate: str, *, by: str | None = None, comment: str | None = None
    ) -> JournalEntry:
        """Record an approval for ``gate`` (fix, deploy, rollback), bound to the fix sha,
        with the approver's ``comment`` when given.

        Raises:
            ApprovalRefused: four eyes are configured (``deploy.distinct_approver``,
                ``deploy.approvers``) and this person may not approve the deploy.
        """
        if gate not in GATES:
            raise InvalidInput(f"unknown gate {gate!r}; use one of {', '.join(GATES)}")
        hotfix = self.resolve(ref)
        if gate == "deploy" and self.approves_environment(hotfix):
            return self.approve_environment(ref, by=by, comment=comment).entry
        if self.graph.next_state(hotfix.state, "approve") is None or (
            hotfix.state in machine.TERMINAL and gate != "rollback"
        ):
            raise IllegalTransition(
                f"the hotfix is {hotfix.state}; nothing to approve", hotfix_id=hotfix.id
            )
        if gate == "deploy" and self._deployed_already(hotfix):
            raise IllegalTransition(
                f"the hotfix is {hotfix.state}: its deploy was dispatched already, so a deploy "
                "approval now would change nothing; nothing was recorded",
                hotfix_id=hotfix.id,
                hint=f"`hotfix status {hotfix.id}` shows what it waits for; "
                f"`hotfix rollback {hotfix.id}` undoes the deploy",
            )
        sha = hotfix.context.get("fix_sha")
        if gate == "deploy" and not sha:
            raise IllegalTransition(
                "there is no fix commit to approve for deploy yet",
                hotfix_id=hotfix.id,
                hint=f"resume until it waits at the deploy gate: `hotfix resume {hotfix.id}`",
            )
        approver = by or _user()
        if gate == "deploy":
            self._check_approver(hotfix, approver)
        payload: dict[str, Any] = {"gate": gate, "by": approver, "sha": sha, "at": time.time()}
        if comment is not None and comment.strip():
            payload["comment"] = _approval_comment(comment)
        clear: dict[str, Any] = {}
        if hotfix.paused_gate == gate:
            clear = {"paused_reason": None, "paused_gate": None}
        seq = self.writer.write(hotfix, [Entry("approval", gate, 0, None, payload)], **clear)
        return self.store.journal(hotfix.id, after_seq=seq - 1, limit=1)[0]

    def _deployed_already(self, hotfix: Hotfix) -> bool:
        """Whether the deploy was dispatched (deploying or later, a rollback, or a failure
        after it): the deploy gate is behind the hotfix."""
        graph = self.graph
        state = hotfix.state
        if state == "failed":
            return hotfix.failed_from in graph.deployed_states
        return (
            state in graph.deployed_states
            or state in graph.rollback_states
            or state in ("rolled_back", "rollback_failed")
        )

    def approves_environment(self, hotfix: Hotfix) -> bool:
        """Whether ``approve deploy`` means the deploy run's protected environment (the
        hotfix is deploying, or an earlier environment approval was left in doubt)."""
        from hotfix_fsm.recovery.environment_approval import approves_environment

        return approves_environment(self.store, hotfix)

    def approve_environment(
        self, ref: str, *, by: str | None = None, comment: str | None = None
    ) -> EnvironmentApproved:
        """Approve the deploy run's pending deployment to a protected environment on GitHub,
        as the token's user, and journal it (who, when, which environment, which run).

        Idempotent: when it is approved already, the earlier record comes back with
        ``already`` set. See ``recovery.environment_approval`` for why this is the
        person's own act rather than the driver's.

        Raises:
            ApprovalRefused: the token's user is not one of the environment's reviewers.
        """
        from hotfix_fsm.recovery.environment_approval import approve_environment

        hotfix = self.resolve(ref)
        if comment is not None and comment.strip():
            comment = _approval_comment(comment)
        return approve_environment(self.runner, hotfix, by=by, comment=comment)

    def _check_approver(self, hotfix: Hotfix, approver: str) -> None:
        from hotfix_fsm.phases.approval import deploy_approver_problem, who_may_approve

        deploy = self.config_for(hotfix).deploy
        started_by = hotfix.options.get("started_by")
        starter = str(started_by) if started_by else None
        problem = deploy_approver_problem(deploy, starter, approver)
        if problem is not None:
            raise ApprovalRefused(
                f"deploy approval refused: {problem}; nothing was recorded",
                hotfix_id=hotfix.id,
                hint=f"ask {who_may_approve(deploy, starter)} to run "
                f"`hotfix approve {hotfix.id} deploy`",
            )

    def abort(
        self, ref: str, *, reason: str = "aborted by a person", clean_up: bool = True
    ) -> Hotfix:
        """Cancel a hotfix that has not reached production (use ``rollback`` after).

        With ``clean_up`` the emergency PR is closed and the work tree is switched back to
        the production branch; branches are kept (they may hold the only copy of the work)
        and the journal's ``abort_cleanup`` note lists what is left and how to remove it.
        """
        from hotfix_fsm.recovery.abort import abort_hotfix

        hotfix = self.resolve(ref)
        abort_hotfix(self.runner, hotfix, reason=reason, clean_up=clean_up)
        return self.store.get(hotfix.id)

    def rollback(
        self,
        ref: str,
        *,
        reason: str = "manual rollback",
        take_over: bool = False,
        poll: float = 0.5,
    ) -> Outcome:
        """Roll back a deployed hotfix to its recorded rollback target, then drive it.

        From any terminal: when another process drives the hotfix, the request is journaled
        (``rollback_request``, with who and why) and that driver rolls back within one poll;
        this call follows the hotfix until the rollback ends (or drives it itself if that
        driver goes away first). ``take_over`` takes the hotfix from a driver that is gone.
        """
        hotfix = self.resolve(ref)
        self._check_rollback(hotfix)
        runner = self.runner
        try:
            guard = runner.acquire(hotfix.id, take_over=take_over)
        except LeaseHeld:
            payload = {"reason": reason, "by": _user(), "at": time.time()}
            self.writer.write(hotfix, [Entry("rollback_request", None, 0, None, payload)])
            return self._follow_rollback(hotfix.id, poll)
        services = self.services_for(hotfix)
        try:
            driver = runner.driver(guard, self.config_for(hotfix), services)
            runner.start_rollback(driver, reason=reason, by=_user())
        finally:
            services.close()
            runner.release(guard)
        return runner.drive(hotfix.id)

    def _check_rollback(self, hotfix: Hotfix) -> None:
        if (
            self.graph.next_state(hotfix.state, "start_rollback", failed_from=hotfix.failed_from)
            is None
        ):
            abortable = self.graph.next_state(
                hotfix.state, "cancel", failed_from=hotfix.failed_from
            )
            raise IllegalTransition(
                f"a hotfix in state {hotfix.state} cannot be rolled back"
                + (": production does not run the fix" if abortable else ""),
                hotfix_id=hotfix.id,
                hint=next_action_for(hotfix),
            )
        if "rollback_target" not in hotfix.context:
            raise IllegalTransition(
                "no rollback target was recorded (the hotfix never reached the deploy)",
                hotfix_id=hotfix.id,
                hint=f"abort it instead: `hotfix abort {hotfix.id}`"
                if can(hotfix.state, "cancel", failed_from=hotfix.failed_from)
                else next_action_for(hotfix),
            )

    def _follow_rollback(self, hotfix_id: str, poll: float) -> Outcome:
        """Wait for the driving process to answer a rollback request and finish it."""
        ended = ("rolled_back", "rollback_failed")
        while True:
            hotfix = self.store.get(hotfix_id)
            if hotfix.state in ended:
                return Outcome(
                    hotfix.id, hotfix.state, hotfix.paused_reason, hotfix.paused_gate, hotfix.error
                )
            if not hotfix.lease_live():
                # The driver went away (or stopped) before the rollback ended: drive it here;
                # the pending request is answered first.
                try:
                    return self.runner.drive(hotfix_id)
                except LeaseHeld:
                    pass  # another process took it meanwhile: keep following
            self.writer.progress(
                hotfix_id,
                None,
                f"rollback requested; {hotfix.lease_owner or 'the driver'} acts on it",
                state=hotfix.state,
            )
            time.sleep(poll)  # a poll of the store, not a wait for an effect

    # -- inspection ----------------------------------------------------------------------

    def resolve(self, ref: str | None) -> Hotfix:
        if ref:
            return self.store.find(ref)
        latest = self.store.latest_unfinished()
        if latest is None:
            raise NotFound(
                "there is no unfinished hotfix in this store",
                hint='start one with `hotfix start ISSUE "DESCRIPTION"`',
            )
        return latest

    def get(self, ref: str) -> Hotfix:
        return self.store.find(ref)

    def status(self, ref: str | None = None) -> HotfixStatus:
        """Where a hotfix stands (the most recent unfinished one when ``ref`` is None): its
        state, the phase it is in, why it is paused, the next action (in words and as an
        argv), its PR, deploy run, release tag and back-merge PR, the time to production,
        the driver holding it and when. ``.as_json()`` is the ``hotfix status --json``
        document. Reads the store only; nothing is asked of the world."""
        from hotfix_fsm.reporting.report import build_status

        hotfix = self.resolve(ref)
        return build_status(hotfix, self.store.journal(hotfix.id))

    def list(self, *, include_finished: bool = False, limit: int = 50) -> builtins.list[Hotfix]:
        return self.store.list_hotfixes(include_finished=include_finished, limit=limit)

    def journal(self, ref: str) -> builtins.list[JournalEntry]:
        return self.store.journal(self.store.find(ref).id)

    def close(self) -> None:
        self.store.engine.dispose()

    def __enter__(self) -> HotfixEngine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


MAX_COMMENT = 2000


def _approval_comment(comment: str) -> str:
    """An approver's comment as journaled: checked, secrets masked."""
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(
            f"the comment is too long ({len(comment)} characters, at most {MAX_COMMENT})"
        )
    if "\x00" in comment:
        raise InvalidInput("the comment contains a NUL character")
    return redact(comment.strip())


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
