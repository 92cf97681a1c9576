"""The phase registry: one declaration per phase, and the only place phases are wired.

A ``PhaseSpec`` says everything the rest of the system needs to know about a phase: its place
in the graph, its implementation (probe + effect, see ``phases.base``), the facts it records,
its line in ``hotfix start --dry-run``, and the checklist line its evidence ticks. A
``Registry`` is an ordered, immutable set of specs over a ``core.machine.Graph``.

Adding a phase is its own module plus one entry::

    registry = Registry.default().add(
        PhaseSpec(
            "smoke_test",
            make=SmokeTest,                 # a BasePhase subclass: key, probe, run
            after="verify",                 # runs right after verify …
            reaches="smoke_tested",         # … and leads to this new state
            plan=lambda p: f"run the smoke suite against {p.config.verify.url}",
            checklist="Smoke tests passing",
            evidence=lambda f: f"{f['passed']} checks passed" if f.get("passed") else None,
        )
    )
    engine = HotfixEngine(registry=registry)

Nothing else changes: the runner drives the new state, the journal writer validates its
edges, the graph hash names the extended graph (hotfixes started before an *optional* phase
was added stay resumable), plans and checklists show its lines.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from hotfix_fsm.core.machine import DEFAULT, Graph

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.phases.base import Phase


@dataclass(frozen=True)
class PlanInputs:
    """What a plan line may say: the configuration and what ``start`` was asked to do."""

    config: Config
    branch: str
    fix: str
    approval: str
    gates: Mapping[str, Any] = field(default_factory=dict)


PlanLine = Callable[[PlanInputs], str]
# (the evidence ``hotfix adopt`` gathered — ``recovery.adopt_evidence.Evidence`` —, config)
AdoptEvidence = Callable[[Any, "Config"], "bool | None"]
Evidence = Callable[[Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class PhaseSpec:
    """One phase, declared once.

    Args:
        name: the trigger, unique in the graph (gates are ``gate:<name>``).
        make: builds the implementation; None for bookkeeping phases (no effect).
        after: for a phase added to the standard graph, the phase it runs after.
        reaches: for an added phase, the state it leads to.
        optional: an added phase that hotfixes started without it may skip (their graph
            stays resumable); a mandatory one strands them (they are refused on resume).
        plan: the phase's line in ``hotfix start --dry-run``.
        checklist: the post-mortem checklist line the phase's done row ticks …
        evidence: … when this returns what in the phase's facts proves it (None: unproven,
            never ticked). Its text is journaled with the done row, so any reader of the
            store shows the line, with or without this registry loaded.
        facts: the ``TypedDict`` of the facts the phase records (documentation and types).
        adopt: what ``hotfix adopt`` reads from the world to prove the phase happened, given
            the gathered evidence and the configuration: True (it did), False (it did not),
            None (it leaves no trace, or is switched off).
        adopt_hard: when the world shows the phase did *not* happen, no later phase can have
            (adopt stops there).
    """

    name: str
    make: Callable[[], Phase] | None = None
    after: str | None = None
    reaches: str | None = None
    optional: bool = True
    plan: PlanLine | None = None
    checklist: str | None = None
    evidence: Evidence | None = None
    facts: type | None = None
    adopt: AdoptEvidence | None = None
    adopt_hard: bool = False


class Registry:
    """The phases of one graph, in order."""

    def __init__(self, specs: Iterable[PhaseSpec], graph: Graph) -> None:
        self.specs: tuple[PhaseSpec, ...] = tuple(specs)
        self.graph = graph
        self._by_name = {s.name: s for s in self.specs}
        missing = sorted(graph.effect_phases - self._by_name.keys())
        if missing:
            raise ValueError(f"phases of the graph with no declaration: {', '.join(missing)}")

    @classmethod
    def default(cls) -> Registry:
        """The standard phases over the standard graph."""
        return _default()

    def add(self, spec: PhaseSpec) -> Registry:
        """A registry with ``spec`` added to the graph (``after`` and ``reaches`` required)."""
        if spec.after is None or spec.reaches is None:
            raise ValueError(f"phase {spec.name!r} needs `after` and `reaches` to be placed")
        if spec.make is None:
            raise ValueError(f"phase {spec.name!r} needs an implementation (`make`)")
        graph = self.graph.with_phase(
            spec.name, after=spec.after, reaches=spec.reaches, optional=spec.optional
        )
        return Registry((*self.specs, spec), graph)

    def spec(self, name: str) -> PhaseSpec | None:
        return self._by_name.get(name)

    def implementations(self) -> dict[str, Phase]:
        """A fresh implementation of every effectful phase, keyed by phase name."""
        return {s.name: s.make() for s in self.specs if s.make is not None}

    def table(self, given: Mapping[str, Phase] | None = None) -> PhaseTable:
        """The phases a runner drives: ``given`` ones as they are, the others made from
        their specs when first asked for."""
        return PhaseTable(self, given or {})

    def plan(self, inputs: PlanInputs) -> list[tuple[str, str]]:
        """(phase, what it will do) in the order the graph runs them."""
        order = [p for p, _, _ in self.graph.forward]
        lines: list[tuple[str, str]] = []
        for phase in order:
            # The gates share one line, shown where they start.
            name, spec = (
                ("gates", self.spec("gate:tests"))
                if phase == "start_gates"
                else (
                    phase,
                    self.spec(phase),
                )
            )
            if spec is not None and spec.plan is not None:
                lines.append((name, spec.plan(inputs)))
        return lines

    def checklist_row(self, name: str, facts: Mapping[str, Any]) -> dict[str, Any] | None:
        """What a done row of ``name`` journals for the checklist: the line and its proof."""
        spec = self.spec(name)
        if spec is None or spec.checklist is None:
            return None
        proof = spec.evidence(facts) if spec.evidence is not None else None
        return {"line": spec.checklist, "evidence": proof}


class PhaseTable(dict[str, "Phase"]):
    """Phase implementations by name, each made from its spec the first time it is asked
    for, so a drive loads the modules of the phases it runs (a resume at ``wait_ci`` does
    not import the git and release phases). A name with no spec, or no ``make``, is a
    ``KeyError`` as in a plain dict."""

    def __init__(self, registry: Registry, given: Mapping[str, Phase]) -> None:
        super().__init__(given)
        self._registry = registry
        self._lock = threading.Lock()  # parallel gates may ask for theirs at once

    def __missing__(self, name: str) -> Phase:
        spec = self._registry.spec(name)
        if spec is None or spec.make is None:
            raise KeyError(name)
        with self._lock:
            if not dict.__contains__(self, name):
                self[name] = spec.make()
            return dict.__getitem__(self, name)


# -- the standard phases -------------------------------------------------------------------


def _gates_line(p: PlanInputs) -> str:
    def text(value: Any) -> str:
        return " ".join(value) if isinstance(value, list) else str(value)

    return "run in parallel: " + "; ".join(f"{k}: {text(v)}" for k, v in p.gates.items())


def _backport_line(p: PlanInputs) -> str:
    from hotfix_fsm.phases.after_merge import skip_reason

    skipped = skip_reason(p.config)
    if skipped is not None:
        return f"skipped ({skipped})"
    return f"open a back-merge PR into {p.config.backport.base or p.config.main_branch}"


def _pr_opened(ev: Any, _c: Config) -> bool:
    pr = ev.pr
    return bool(pr and (pr.get("state") == "open" or pr.get("merged_at")) and ev.pushed)


def _deployed(ev: Any, _c: Config) -> bool:
    runs = ev.deploy_runs
    return (
        bool(runs)
        and runs[-1].get("status") == "completed"
        and (runs[-1].get("conclusion") == "success")
    )


def _made(module: str, name: str, *args: str) -> Callable[[], Phase]:
    """A ``make`` that imports ``hotfix_fsm.phases.<module>`` when first called."""

    def make() -> Phase:
        implementation = getattr(importlib.import_module(f"hotfix_fsm.phases.{module}"), name)
        return cast("Phase", implementation(*args))

    return make


def _standard_specs() -> list[PhaseSpec]:
    from hotfix_fsm.phases import facts

    Branch, CommitFix, Push = (_made("git_phases", n) for n in ("Branch", "CommitFix", "Push"))
    ApproveDeploy = _made("approval", "ApproveDeploy")
    Backport, Cleanup, Deploy, Merge, OpenPullRequest, Tag, WaitForCI = (
        _made("github_phases", n)
        for n in ("Backport", "Cleanup", "Deploy", "Merge", "OpenPullRequest", "Tag", "WaitForCI")
    )
    Monitor, RollbackRedeploy, RollbackRevert, RollbackVerify, Verify = (
        _made("release", n)
        for n in ("Monitor", "RollbackRedeploy", "RollbackRevert", "RollbackVerify", "Verify")
    )

    def gate(name: str) -> PhaseSpec:
        return PhaseSpec(
            f"gate:{name}",
            make=_made("git_phases", "Gate", name),
            plan=_gates_line,
            facts=facts.GateResult,
        )

    return [
        PhaseSpec(
            "branch",
            adopt=lambda ev, _c: bool(ev.local_sha or ev.remote_sha or ev.pr or ev.fix_sha),
            adopt_hard=True,
            facts=facts.BranchFacts,
            make=Branch,
            plan=lambda p: f"create {p.branch} from {p.config.remote}/{p.config.production_branch}",
        ),
        PhaseSpec(
            "commit_fix",
            adopt=lambda ev, _c: bool(ev.fix_sha),
            adopt_hard=True,
            facts=facts.FixFacts,
            make=CommitFix,
            plan=lambda p: p.fix,
        ),
        gate("tests"),
        gate("build"),
        gate("audit"),
        PhaseSpec(
            "push",
            adopt=lambda ev, _c: bool(ev.pushed),
            adopt_hard=True,
            facts=facts.PushFacts,
            make=Push,
            plan=lambda p: f"push {p.branch} to {p.config.remote} (never forced)",
        ),
        PhaseSpec(
            "open_pr",
            adopt=_pr_opened,
            adopt_hard=True,
            facts=facts.PullRequestFacts,
            make=OpenPullRequest,
            plan=lambda p: (
                f"open a PR into {p.config.production_branch} labelled "
                f"{', '.join(p.config.github.labels)}"
            ),
        ),
        PhaseSpec(
            "wait_ci",
            adopt=lambda ev, c: bool(ev.ci and ev.ci["verdict"] == "passed") or not c.ci.enabled,
            facts=facts.CIFacts,
            make=WaitForCI,
            plan=lambda p: (
                "wait for CI checks" if p.config.ci.enabled else "skipped (ci.enabled = false)"
            ),
        ),
        PhaseSpec(
            "approve_deploy",
            adopt=lambda ev, _c: bool(ev.deploy_runs),
            facts=facts.DeployApprovalFacts,
            make=ApproveDeploy,
            plan=lambda p: p.approval,
        ),
        PhaseSpec(
            "deploy",
            adopt=_deployed,
            facts=facts.DeployFacts,
            make=Deploy,
            plan=lambda p: f"dispatch {p.config.deploy.workflow} with a correlation id",
        ),
        PhaseSpec(
            "verify",
            facts=facts.VerifyFacts,
            make=Verify,
            plan=lambda p: (
                f"poll {p.config.verify.url or '(verify.url not set!)'} for "
                f"{p.config.verify.expected_status}"
            ),
        ),
        PhaseSpec(
            "monitor",
            facts=facts.MonitorFacts,
            make=Monitor,
            plan=lambda p: (
                f"measure for {p.config.monitor.duration:g}s every {p.config.monitor.interval:g}s"
                if p.config.monitor.enabled
                else "skipped"
            ),
        ),
        PhaseSpec(
            "merge",
            adopt=lambda ev, _c: bool(ev.merge_sha),
            adopt_hard=True,
            facts=facts.MergeFacts,
            make=Merge,
            plan=lambda p: f"{p.config.merge.method}-merge the PR",
        ),
        PhaseSpec(
            "tag",
            adopt=lambda ev, c: bool(ev.tag) if c.tag.enabled else None,
            adopt_hard=True,
            facts=facts.TagFacts,
            make=Tag,
            plan=lambda p: (
                f"tag the release ({p.config.tag.scheme})" if p.config.tag.enabled else "skipped"
            ),
        ),
        PhaseSpec(
            "backport",
            adopt=lambda ev, c: bool(ev.backport_pr) if c.backport.enabled else None,
            facts=facts.BackportFacts,
            make=Backport,
            plan=_backport_line,
        ),
        PhaseSpec(
            "cleanup",
            adopt=lambda ev, _c: bool(ev.merge_sha) and ev.remote_sha is None,
            adopt_hard=True,
            facts=facts.CleanupFacts,
            make=Cleanup,
            plan=lambda _p: "delete the hotfix branch",
        ),
        PhaseSpec("rollback_revert", facts=facts.RollbackFacts, make=RollbackRevert),
        PhaseSpec("rollback_redeploy", facts=facts.RollbackFacts, make=RollbackRedeploy),
        PhaseSpec("rollback_verify", facts=facts.RollbackFacts, make=RollbackVerify),
    ]


_cached: list[Registry] = []


def _default() -> Registry:
    if not _cached:
        _cached.append(Registry(_standard_specs(), DEFAULT))
    return _cached[0]


__all__ = ["PhaseSpec", "PhaseTable", "PlanInputs", "Registry"]
