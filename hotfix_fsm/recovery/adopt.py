"""Adopt a hotfix whose database is lost: rebuild its row and journal from what the world shows.

``adopt(engine, repo_path=..., branch=... | issue=...)`` reads the evidence
(``adopt_evidence.gather``), decides the furthest state it proves, and records a hotfix with
the id its fix commit's ``Hotfix-Id`` trailer names (or its branch name, before the fix), the
current graph hash, the facts later phases read, and a journal whose rows say they were
inferred: a ``done`` row per phase (payload ``{"facts", "inferred": true, "evidence",
"inferred_from"}``; ``inferred_from`` names the finding the row rests on, such as "the PR being
merged as …" for a verify adopt could not see), a ``transition`` row per step, and a final
``note`` of kind ``adopted`` listing every finding. The report ticks a checklist line from such
a row only when its facts carry real evidence adopt read (the PR, CI checks, a deploy run);
gates, verify and monitor rows carry none and show as inferred.
``hotfix resume`` then continues from there; its probes settle the rest.

Which phases need proof (a *hard* phase missing stops the adoption before it):

======================  ==========================================================  =======
phase                   evidence                                                    kind
======================  ==========================================================  =======
branch                  the branch, locally or on the remote, or its PR             hard
commit_fix              a commit carrying ``Hotfix-Id``, or the engineer's own      hard
                        commits on the pushed branch (or PR head)
gates                   none: implied by the push                                   —
push                    the remote branch (or the PR head) holds the fix            hard
open_pr                 the PR from the branch into production, open or merged      hard
wait_ci                 CI on the fix sha passed                                    soft
approve_deploy          a deploy run of the fix exists                              soft
deploy                  the latest deploy run succeeded                             soft
verify, monitor         none: implied by the merge                                  —
merge                   the PR is merged                                            hard
tag                     a tag on the merge commit (when tagging is enabled)         hard
backport                the back-merge PR from ``backport/<branch>``                soft
cleanup                 the branch is gone from the remote after the merge          hard
======================  ==========================================================  =======

A soft phase counts when its own evidence holds or a later phase is proven. So a deploy run
still in progress adopts to ``deploying`` with the run in the deploy ledger: the deploy phase
follows that run instead of dispatching again. The ledger is recorded whatever the state, so
no adoption can lead to a second deploy of the same sha; a tag on the merge commit is found
again by the tag phase, a PR by its head. A rollback that was started is not adopted.
"""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core import machine
from hotfix_fsm.core.outcome import next_action_for
from hotfix_fsm.core.validate import validate_issue, validate_ref
from hotfix_fsm.errors import IllegalTransition, UsageError
from hotfix_fsm.phases.facts import Facts, GateResult
from hotfix_fsm.phases.registry import Registry
from hotfix_fsm.recovery.adopt_evidence import Evidence, find_branch, gather, rollback_evidence
from hotfix_fsm.recovery.adopt_facts import context_facts, phase_facts_for
from hotfix_fsm.store import Entry, Hotfix

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.engine import HotfixEngine

__all__ = ["adopt", "decide"]


def adopt(
    engine: HotfixEngine,
    *,
    repo_path: str | os.PathLike[str] = ".",
    branch: str | None = None,
    issue: str | None = None,
    yes: bool = False,
    options: dict[str, Any] | None = None,
) -> Hotfix:
    """Rebuild the hotfix on ``branch`` (or the latest one of ``issue``) from the world.

    Args:
        repo_path: a clone of the repository (the adopted hotfix's work tree).
        branch: the hotfix branch, e.g. ``hotfix/INC-1-20250101-120000``.
        issue: instead of ``branch``: adopt the most recent hotfix branch of this issue.
        yes: approve the human gates automatically from here on (like ``start --yes``).
        options: start options to record (``fix_mode``, ``cherry_pick``, ``patch``), for a
            hotfix adopted before its fix commit; by default the fix is made by hand.

    Raises:
        UsageError / InvalidInput: neither or both of branch and issue, a bad name, a
            branch hotfix_fsm did not make, or a hotfix already in this store.
        NotFound: no such branch.
        IllegalTransition: a rollback of the hotfix was started (adopt rebuilds forward
            progress only).
    """
    if bool(branch) == bool(issue):
        raise UsageError(
            "give either a hotfix branch or an issue id to adopt",
            hint="`hotfix adopt --branch hotfix/INC-1-…` or `hotfix adopt --issue INC-1`",
        )
    path = Path(repo_path).expanduser().resolve()
    config = engine.config_for(repo=str(path))
    if issue:
        validate_issue(issue, config.issue_pattern)
    if branch:
        validate_ref(branch, "hotfix branch name")
    services = engine.services_at(path, config)
    try:
        git = services.git
        gh = services.github
        if branch is None:
            git.fetch()
            branch = find_branch(git, config, str(issue))
        ev = gather(git, gh, config, branch)
        if issue and ev.issue and ev.issue != issue:
            raise UsageError(
                f"branch {branch} belongs to issue {ev.issue}, not {issue}",
                hint=f"adopt it with `hotfix adopt --branch {branch}`",
            )
        unfinished = _existing(engine, ev.hotfix_id)
        rollback = rollback_evidence(git, gh, config, ev.hotfix_id)
        if rollback:
            raise IllegalTransition(
                f"a rollback of hotfix {ev.hotfix_id} was started ({rollback}); adopt rebuilds "
                "only a hotfix's forward progress",
                hotfix_id=ev.hotfix_id,
                hint="check production by hand and finish the rollback there (the rollback "
                "workflow, the revert PR), then start a new hotfix if the fix is still needed",
            )
        state, steps = decide(ev, config, engine.registry)
        context = context_facts(ev, config, git, steps, path)
    finally:
        services.close()
    if unfinished is not None:  # an adoption interrupted before its journal: finish it
        return _journal(engine, unfinished, ev, config, state, steps, context)
    return _record(engine, ev, config, state, steps, context, path, yes, options or {})


# -- deciding --------------------------------------------------------------------------------


def _evidence(
    ev: Evidence, config: Config, phase: str, registry: Registry | None = None
) -> bool | None:
    """True/False for a phase the world can show; None for one that leaves no trace.

    Each phase declares what proves it in the registry (``PhaseSpec.adopt``).
    """
    spec = (registry or Registry.default()).spec(phase)
    if spec is None or spec.adopt is None:
        return None
    return spec.adopt(ev, config)


def decide(
    ev: Evidence, config: Config, registry: Registry | None = None
) -> tuple[str, list[tuple[str, str, str]]]:
    """The adopted state and the forward steps ``(phase, source, dest)`` that lead to it."""
    registry = registry or Registry.default()
    graph = registry.graph
    forward = [f for f in graph.forward if f[0] != "finish"]
    last = -1
    for i, (phase, _src, _dst) in enumerate(forward):
        proof = _evidence(ev, config, phase, registry)
        if phase in graph.bookkeeping:
            continue
        spec = registry.spec(phase)
        if proof is True:
            last = i
        elif proof is False and spec is not None and spec.adopt_hard:
            break
    if last < 0:
        return "created", []
    steps = list(forward[: last + 1])
    return steps[-1][2], steps


# -- recording -------------------------------------------------------------------------------


def _existing(engine: HotfixEngine, hotfix_id: str) -> Hotfix | None:
    """None for a new id; the row of an adoption that stopped before its journal; else
    a UsageError (the store already knows this hotfix)."""
    from hotfix_fsm.errors import NotFound

    try:
        found = engine.store.get(hotfix_id)
    except NotFound:
        return None
    if found.options.get("adopted") and found.last_seq == 1:
        return found
    raise UsageError(
        f"hotfix {hotfix_id} is already in this store (state {found.state})",
        hotfix_id=hotfix_id,
        hint=f"adopt is for a lost database; next: {next_action_for(found)}",
    )


def _why(ev: Evidence, config: Config, phase: str, proof: bool | None) -> str:
    if proof:
        return {
            "branch": "the hotfix branch exists",
            "commit_fix": f"commit {str(ev.fix_sha)[:12]} "
            + (
                "ends the engineer's own commits" if ev.fix_own else "carries the Hotfix-Id trailer"
            ),
            "push": "the remote holds the fix commit",
            "open_pr": f"PR #{(ev.pr or {}).get('number')} comes from the branch",
            "wait_ci": "CI on the fix passed"
            if config.ci.enabled
            else "CI is disabled (ci.enabled = false)",
            "approve_deploy": "a deploy run of the fix exists",
            "deploy": f"deploy run {ev.deploy_runs[-1].get('id') if ev.deploy_runs else ''} "
            "succeeded",
            "merge": f"the PR is merged as {str(ev.merge_sha)[:12]}",
            "tag": f"tag {ev.tag} points at the merge commit",
            "backport": "the back-merge PR exists",
            "cleanup": "the branch is deleted on the remote",
        }.get(phase, "seen")
    return "implied: a later phase is proven"


def _source(ev: Evidence, config: Config, phase: str) -> str:
    """A proven phase's evidence as what rows are inferred from ("the PR being merged …")."""
    run = ev.deploy_runs[-1] if ev.deploy_runs else {}
    return {
        "branch": f"the hotfix branch {ev.branch} existing",
        "commit_fix": f"commit {str(ev.fix_sha)[:12]} "
        + (
            "ending the engineer's own commits on the pushed branch"
            if ev.fix_own
            else "carrying the Hotfix-Id trailer"
        ),
        "push": f"the fix {str(ev.fix_sha)[:12]} being on the remote",
        "open_pr": f"PR #{(ev.pr or {}).get('number')} existing from the branch",
        "wait_ci": "CI on the fix passing"
        if config.ci.enabled
        else "CI being disabled (ci.enabled = false)",
        "approve_deploy": "a deploy run of the fix existing",
        "deploy": f"deploy run {run.get('id')} succeeding",
        "merge": f"the PR being merged as {str(ev.merge_sha)[:12]}",
        "tag": f"tag {ev.tag} existing on the merge commit",
        "backport": "the back-merge PR existing",
        "cleanup": "the branch being deleted on the remote",
    }.get(phase, f"{phase} being seen")


def _sources(ev: Evidence, config: Config, steps: list[tuple[str, str, str]]) -> list[str]:
    """Per step, what its row is inferred from: its own evidence when proven, else that of
    the nearest later proven phase (gates from the push, verify from the merge, …)."""
    out: list[str] = []
    later = "a later phase being proven"
    for phase, _src, _dst in reversed(steps):
        if _evidence(ev, config, phase):
            later = _source(ev, config, phase)
        out.append(later)
    return out[::-1]


def _entries(
    ev: Evidence, config: Config, steps: list[tuple[str, str, str]], context: Facts
) -> list[Entry]:
    entries: list[Entry] = []
    fix = ev.fix_sha or ""
    for (phase, src, dst), source in zip(steps, _sources(ev, config, steps), strict=True):
        inferred: dict[str, Any] = {"from": src, "to": dst, "inferred": True}
        if phase in machine.BOOKKEEPING_PHASES:
            entries.append(Entry("transition", phase, 0, None, inferred))
            continue
        if phase == "finish_gates":
            for gate in machine.GATES:
                gate_facts: GateResult = {"gate": gate, "sha": fix, "status": "inferred"}
                entries.append(
                    Entry(
                        "done",
                        f"gate:{gate}",
                        0,
                        f"{gate}:{fix}",
                        {
                            "facts": gate_facts,
                            "inferred": True,
                            "evidence": "implied by the push",
                            "inferred_from": source,
                        },
                    )
                )
            entries.append(Entry("transition", phase, 0, None, inferred))
            continue
        proof = _evidence(ev, config, phase)
        facts = phase_facts_for(phase, context)
        payload = {
            "facts": facts,
            "inferred": True,
            "evidence": _why(ev, config, phase, proof),
            "inferred_from": source,
        }
        entries.append(Entry("done", phase, 0, None, payload))
        entries.append(Entry("transition", phase, 0, None, inferred))
    return entries


def _record(
    engine: HotfixEngine,
    ev: Evidence,
    config: Config,
    state: str,
    steps: list[tuple[str, str, str]],
    context: Facts,
    path: Path,
    yes: bool,
    options: dict[str, Any],
) -> Hotfix:
    user = _user()
    adopted = {
        "by": user,
        "at": time.time(),
        "branch": ev.branch,
        "repo": str(path),
        "state": state,
    }
    recorded_options: dict[str, Any] = {
        "fix_mode": "manual",
        "cherry_pick": [],
        "patch": None,
        "yes": yes,
        "severity": config.severity,
        "config_path": None,
        "config": engine.config_pin(path, config),
        "started_by": "unknown (adopted)",
        **options,
        "adopted": adopted,
    }
    hotfix = engine.writer.create(
        hotfix_id=ev.hotfix_id,
        issue=ev.issue or "unknown",
        description=ev.description,
        repo=str(path),
        graph_hash=engine.graph.hash,
        options=recorded_options,
        context={**context},
    )
    return _journal(engine, hotfix, ev, config, state, steps, context)


def _journal(
    engine: HotfixEngine,
    hotfix: Hotfix,
    ev: Evidence,
    config: Config,
    state: str,
    steps: list[tuple[str, str, str]],
    context: Facts,
) -> Hotfix:
    """Append the inferred rows and the ``adopted`` note (fenced, under a lease)."""
    adopted = {**(hotfix.options.get("adopted") or {}), "state": state}
    entries = _entries(ev, config, steps, context)
    proven = [p for p, _s, _d in steps if _evidence(ev, config, p)]
    note = {
        "kind": "adopted",
        "inferred": True,
        "adopted": adopted,
        "evidence": list(ev.seen),
        "proven": proven,
        "implied": [
            p
            for p, _s, _d in steps
            if p not in proven and p not in machine.BOOKKEEPING_PHASES and p != "finish_gates"
        ]
        + (["gates"] if any(p == "finish_gates" for p, _s, _d in steps) else []),
        "deploy_runs_found_by": (
            "branch and sha" if ev.deploy_weak else "correlation id" if ev.deploy_runs else None
        ),
    }
    entries.append(Entry("note", None, 0, None, note))
    runner = engine.runner
    guard = runner.acquire(hotfix.id, ttl=60.0)
    try:
        # Each inferred transition row is checked against the graph by the writer.
        engine.writer.write(engine.get(hotfix.id), entries, guard=guard, context=context)
    finally:
        runner.release(guard)
    return engine.get(hotfix.id)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
