"""The facts a hotfix records, typed: one ``TypedDict`` per phase group, and ``Facts``.

A hotfix's facts are one JSON object (``Hotfix.context``): each phase merges the dict its
``run()`` returns (or its probe adopts) into it, and ``ctx.save(...)`` persists some before
an effect (the rollback target, a dispatch ledger entry, a planned tag). ``Facts`` declares
every key any of them records, with its value type, so ``mypy --strict`` checks each read
(``ctx.facts["fix_sha"]``, ``facts_of(hotfix).get("branch")``) and each write
(``ctx.save(rollback_target=...)``) by name and type. ``tests/engine/test_facts.py`` drives
real hotfixes and fails when a recorded key is not declared here, or its value does not have
the declared type.

Every value is JSON-serialisable (str, int, float, bool, None, lists and string-keyed dicts
of those). Every ``TypedDict`` here is ``total=False``: facts accumulate phase by phase, so a
reader must expect any key to be absent (``.get``, or ``in`` before ``[]``); a nested record
marks the keys every writer sets as ``Required``.

Plug-in phases may record their own facts: ``ctx.data`` and ``Hotfix.context`` stay plain
dicts, and ``ctx.save(**{"my_fact": value})`` persists an undeclared key.
"""

# No ``from __future__ import annotations``: the annotations are evaluated, so ``Required``
# shows in ``__required_keys__`` and ``typing.get_type_hints`` needs no namespace.
from typing import TYPE_CHECKING, Any, Literal, Required, TypedDict, cast

if TYPE_CHECKING:
    from hotfix_fsm.store import Hotfix

__all__ = [
    "LEDGERS",
    "ApprovalRecord",
    "BackportFacts",
    "BookkeepingFacts",
    "BranchFacts",
    "CIFacts",
    "CIResult",
    "CheckResult",
    "CleanupFacts",
    "CleanupResult",
    "CommitRef",
    "DeployApprovalFacts",
    "DeployFacts",
    "DispatchEntry",
    "DispatchRefusal",
    "FactKey",
    "Facts",
    "FixFacts",
    "GateArtifact",
    "GateRecord",
    "GateResult",
    "GroupFacts",
    "HealthSummary",
    "LedgerName",
    "MergeFacts",
    "MonitorFacts",
    "MonitorSummary",
    "MonitorWindow",
    "MonitorWindowSummary",
    "PlannedTag",
    "PullRequestFacts",
    "PushFacts",
    "ReportedName",
    "RevertResult",
    "ReviewRecord",
    "RollbackFacts",
    "RollbackTarget",
    "TagFacts",
    "TextFact",
    "VerifyFacts",
    "as_facts",
    "commit_refs",
    "facts_of",
    "reported_key",
]


# -- nested records --------------------------------------------------------------------------


class CommitRef(TypedDict, total=False):
    """One commit of the fix (``git.commits_between``)."""

    sha: Required[str]  # full commit sha
    subject: str  # first line of its message
    author: str  # ``Name <email>`` from git, when known
    by_tool: bool  # the commit hotfix_fsm made (with the Hotfix-Id trailer)


class ApprovalRecord(TypedDict, total=False):
    """Who let a gate pass: a person's ``hotfix approve`` row, policy, or adopt's inference."""

    gate: str  # fix | deploy | rollback
    by: str | None  # the approver, "policy" or "inferred by adopt"
    at: float | None  # epoch seconds of the approval
    sha: str | None  # the fix commit the approval is bound to
    auto: bool  # given by --yes or deploy.approval = "auto", no person involved
    inferred: bool  # rebuilt by ``hotfix adopt``
    comment: str  # the approver's ``--comment``, when given


class GateArtifact(TypedDict, total=False):
    """The artifact a gate had to leave in the work tree (``check_artifact``)."""

    path: str  # relative to the work tree
    kind: str  # dir | file
    entries: int  # a directory's entry count
    bytes: int  # a file's size


class GateResult(TypedDict, total=False):
    """What one gate step records (its done row's ``facts``)."""

    gate: str  # tests | build | audit
    command: list[str]  # the argv that ran (redacted)
    source: str  # configuration | npm | python
    exit_code: int  # 0 passed; the only proof that ticks the gate's box
    duration_s: float  # wall time of the command
    sha: str  # the fix commit it ran on
    log: str  # path of the full output
    output_bytes: int  # size of the output
    artifact: GateArtifact  # the checked artifact, when the gate must leave one
    skipped: bool  # the gate is disabled in configuration
    reason: str  # why it was skipped
    status: str  # "inferred" in rows ``hotfix adopt`` wrote


class GateRecord(TypedDict, total=False):
    """A gate's latest done row payload, as the runner copies it into ``gates``."""

    facts: GateResult  # what the gate recorded
    inferred: bool  # adopted after a probe, or written by ``hotfix adopt``
    evidence: str  # what the inference rests on
    inferred_from: str  # adopt: the proven phase it was inferred from


class CheckResult(TypedDict, total=False):
    """One CI check or commit status on the fix commit."""

    name: str  # the check run's name or the status context
    state: str  # passed | pending | failed
    conclusion: str | None  # GitHub's conclusion or status state
    url: str  # link to the check


class CIResult(TypedDict, total=False):
    """The CI verdict on the fix commit (``wait_ci``)."""

    status: str  # passed | no_checks | skipped | inferred
    sha: str  # the fix commit CI ran on
    checks: list[CheckResult]  # the checks that decided it
    note: str  # why there was no CI, when there was none
    verdict: str  # adopt: the verdict read from GitHub
    text: str  # adopt: that verdict in words
    # Not recorded by the built-in phase, accepted by the checklist from a CI phase plug-in:
    conclusion: str | None  # one overall conclusion ("success") instead of ``checks``
    skipped: bool  # the wait was skipped (the built-in phase records status "skipped")


class RollbackTarget(TypedDict, total=False):
    """What production ran before the deploy: the rollback redeploys it."""

    sha: Required[str]  # production's head on the remote before the deploy
    tag: str | None  # the last release tag reachable from it (on the remote)
    branch: str  # the production branch
    recorded_at: float  # epoch seconds
    note: str  # a caveat (a local-only tag, production moved since the branch was cut)
    inferred: bool  # computed afterwards by ``hotfix adopt``, not before the deploy


class DispatchRefusal(TypedDict, total=False):
    """GitHub's definite refusal of a dispatch (nothing was dispatched)."""

    status: int | None  # the HTTP status
    reason: str  # GitHub's message


class DispatchEntry(TypedDict, total=False):
    """One workflow dispatch, saved to its ledger before the request is sent."""

    correlation_id: str  # the idempotency key (workflow input, in the run's name)
    workflow: str  # the workflow file dispatched
    ref: str  # the branch or tag it was dispatched on
    sha: str  # what it deploys (the ledger key)
    at: float  # epoch seconds, when the dispatch was sent
    run_id: int | None  # the run, once known
    run_url: str | None  # the run's page
    refused: DispatchRefusal  # set when GitHub refused the dispatch
    inferred: bool  # rebuilt by ``hotfix adopt`` from a run it found


class HealthSummary(TypedDict, total=False):
    """Polling production's health after the deploy or the rollback (``HealthPoll``)."""

    url: str  # the health endpoint (redacted)
    healthy: bool  # healthy and reporting the expected version
    checks: int  # how many calls were made
    elapsed_s: float  # how long the polling took
    status: int | None  # the last HTTP status (None: no answer)
    latency_ms: float  # the last call's latency
    last_values: dict[str, float]  # error_rate, response_time, uptime when reported
    version: str | None  # the version production reports
    reason: str  # the last judgement in words


class MonitorWindow(TypedDict, total=False):
    """The open monitoring window, saved when it opens (it survives a crash)."""

    id: Required[str]  # tags the window's measurement rows
    started_at: float  # epoch seconds
    after_seq: int  # journal sequence the window opened after
    rules: dict[str, dict[str, str]]  # metric -> {"success": "< 5", "failure": ">= 10"}


class MonitorWindowSummary(TypedDict, total=False):
    """The window a monitor verdict was reached over."""

    id: str  # the window's id
    started_at: float  # epoch seconds
    planned_rounds: int  # rounds the window holds
    missed_rounds: int  # rounds due but never measured (a crash)
    ended_early: bool  # decided before the window ended


class MonitorSummary(TypedDict, total=False):
    """The monitor's verdict and what it rests on (``analysis.summary``)."""

    verdict: str  # successful | failed | error | inconclusive | skipped
    reason: str  # the verdict in words
    rounds: int  # rounds measured
    metrics: dict[str, dict[str, Any]]  # per metric: its phase and tallies
    window: MonitorWindowSummary  # the window judged
    last_values: dict[str, Any]  # the last round's values (scalars)


class PlannedTag(TypedDict, total=False):
    """The release tag chosen before it is pushed (a retry looks for exactly this tag)."""

    tag: str  # the tag name
    sha: str  # the merge commit it must point at


class CleanupResult(TypedDict, total=False):
    """Whether the hotfix branches are gone."""

    remote: bool  # the remote branch is deleted (or was already)
    local: bool  # the local branch is deleted (or was already)
    notes: list[str]  # why a branch was kept, and other remarks


# How the hotfix's merge was undone on production (``rollback_revert``); ``from`` is a
# keyword, hence the functional form.
RevertResult = TypedDict(
    "RevertResult",
    {
        "mode": str,  # revert | reset | none
        "reverted": str,  # the merge commit reverted
        "from": str,  # reset: the merge commit production was reset from
        "branch": str,  # revert: the branch of the revert PR
        "pr_number": int | None,  # revert: the revert PR
        "pr_url": str | None,  # revert: its page
        "production_sha": str | None,  # production's head after the revert or reset
        "note": str,  # why nothing had to be reverted
    },
    total=False,
)


# -- the facts, per phase group --------------------------------------------------------------


class BranchFacts(TypedDict, total=False):
    """``start`` (preflight) and ``branch`` (``git_phases``)."""

    timestamp: str | None  # UTC start time (%Y%m%d-%H%M%S), the branch pattern's {timestamp}
    base_sha: str  # production's head on the remote when the hotfix started
    remote_url: str | None  # the remote's URL, without credentials
    remote: str  # the remote's name
    production_branch: str  # the branch production deploys from
    branch: str  # the hotfix branch
    work_tree: str  # the clone the hotfix works in
    cherry_pick: list[str]  # the full shas to pick, checked against production at start


class FixFacts(TypedDict, total=False):
    """``commit_fix`` (``fix_commit``)."""

    fix_sha: str  # the fix: hotfix_fsm's commit (Hotfix-Id trailer) or the engineer's last
    fix_commits: list[CommitRef]  # base..fix, oldest first, each with its author
    kept_commits: list[CommitRef]  # the engineer's own commits, kept as they were made
    fix_mode: str  # manual | cherry-pick | patch | adopted
    diffstat: str  # ``git diff --stat`` of base..fix
    cherry_picked: list[CommitRef]  # cherry-pick mode: the commits picked
    squashed: list[CommitRef]  # older versions only: the engineer's commits folded into one
    resolved_by_hand: bool  # a conflicting pick or patch was finished by a person
    patch: str  # patch mode: the patch file applied
    fix_approval: ApprovalRecord  # the fix gate's approval, when one was given


class PushFacts(TypedDict, total=False):
    """``push``."""

    pushed_sha: str  # the commit the remote branch received (the fix)
    branch: str  # the hotfix branch pushed
    remote: str  # the remote pushed to


class PullRequestFacts(TypedDict, total=False):
    """``open_pr``."""

    pr_number: int  # the emergency PR into production
    pr_url: str | None  # its page
    pr_head_sha: str | None  # its head commit when opened or adopted
    pr_labels: list[str]  # its labels, sorted
    pr_created: bool  # opened by this hotfix (False: an existing PR was adopted)


class CIFacts(TypedDict, total=False):
    """``wait_ci``."""

    ci: CIResult  # the CI verdict on the fix commit


class DeployApprovalFacts(TypedDict, total=False):
    """``approve_deploy``."""

    deploy_approval: ApprovalRecord  # the approval the deploy went out under


class DeployFacts(TypedDict, total=False):
    """``deploy`` (``deploy_phase``, with the ``workflow_runs`` ledger)."""

    rollback_target: RollbackTarget  # saved before the first dispatch
    deploy_dispatches: list[DispatchEntry]  # the ledger: every dispatch, saved before sending
    deploy_dispatches_failed_reported: list[int]  # failed runs already reported (redeploy)
    deploy_correlation_id: str | None  # the dispatch whose run deployed the fix
    deploy_run_id: int  # that run
    deploy_run_url: str | None  # its page
    deploy_conclusion: str | None  # its conclusion (success)
    deployed_sha: str  # the commit deployed (the fix)


class VerifyFacts(TypedDict, total=False):
    """``verify``."""

    verify: HealthSummary  # production's health after the deploy (saved when unhealthy too)


class MonitorFacts(TypedDict, total=False):
    """``monitor``."""

    monitor_window: MonitorWindow  # the open window (saved before its first round)
    monitor: MonitorSummary  # the verdict (saved before a failure is raised too)


class ReviewRecord(TypedDict):
    """One review of the production PR, as GitHub lists it."""

    user: str  # the reviewer's login
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    commit_id: str  # the PR head the review was given on
    submitted_at: str  # when (GitHub's ISO time)


class AutoMergeRecord(TypedDict, total=False):
    """Auto-merge of the production PR (``merge.auto``), as turned on or found on GitHub."""

    method: str  # squash | merge | rebase
    at: float  # when this tool turned it on, or first saw it on
    enabled_by: str  # GitHub's login that turned it on
    inferred: bool  # found already on (after a crash), not seen being turned on


class MergeFacts(TypedDict, total=False):
    """``merge``."""

    merge_sha: str | None  # the merge commit on production (None: GitHub did not say)
    merge_method: str  # squash | merge | rebase
    merged_head_sha: str | None  # the PR head that was merged (the fix)
    merge_reviews: list[ReviewRecord]  # the PR's reviews read from GitHub before the merge
    merge_required_reviews: int  # approving reviews the branch protection required
    merge_required_checks: list[str]  # status checks protection and rulesets require
    merge_auto: AutoMergeRecord  # GitHub's auto-merge, when merge.auto turned it on


class TagFacts(TypedDict, total=False):
    """``tag``."""

    release_tag_planned: PlannedTag  # the name chosen, saved before the push
    release_tag: str | None  # the pushed release tag (None: tagging disabled)
    release_tag_sha: str  # the commit it points at (the merge commit)
    tag_note: str  # why no tag was made


class BackportFacts(TypedDict, total=False):
    """``backport`` (``after_merge``)."""

    backport_branch: str  # backport/<hotfix branch>, the back-merge PR's head
    backport_pr_number: int  # the back-merge PR into main
    backport_pr_url: str | None  # its page
    backport_status: str  # open | pending | conflict | merged | closed | not_needed | error …
    backport_message: str  # what a person has to finish, when anything
    backport_skipped: str  # why there was nothing to carry back (trunk-based, disabled)


class CleanupFacts(TypedDict, total=False):
    """``cleanup`` (``after_merge``), and abort's clean-up (in its journal note only)."""

    cleaned: CleanupResult  # which hotfix branches are gone
    abort_cleanup: list[str]  # abort: what was closed, and what is left to remove by hand


class RollbackFacts(TypedDict, total=False):
    """``rollback_revert``, ``rollback_redeploy`` and ``rollback_verify``."""

    rollback_revert: RevertResult | str  # how the merge was undone; a str: nothing to undo
    rollback_workflow: str  # the workflow that redeployed the target
    rollback_ref: str  # the ref it was dispatched on (the target's tag, or production)
    rollback_correlation_id: str | None  # the dispatch whose run redeployed the target
    rollback_run_id: int | None  # that run
    rollback_run_url: str | None  # its page
    rollback_run_sha: str | None  # the commit the run built
    rollback_run_conclusion: str | None  # its conclusion
    rollback_dispatches: list[DispatchEntry]  # the rollback's ledger, like the deploy's
    rollback_dispatches_failed_reported: list[int]  # failed rollback runs already reported
    rollback_verify: HealthSummary  # production's health after the rollback


class BookkeepingFacts(TypedDict, total=False):
    """What the runner records besides the phases' facts."""

    _durations: dict[str, float | None]  # seconds from a phase's first intent to its done
    gates: dict[str, GateRecord]  # each gate's latest done row, at ``finish_gates``
    time_to_production: float  # seconds from start to a verified deploy


class Facts(
    BranchFacts,
    FixFacts,
    PushFacts,
    PullRequestFacts,
    CIFacts,
    DeployApprovalFacts,
    DeployFacts,
    VerifyFacts,
    MonitorFacts,
    MergeFacts,
    TagFacts,
    BackportFacts,
    CleanupFacts,
    RollbackFacts,
    BookkeepingFacts,
    total=False,
):
    """Every fact a hotfix records (``Hotfix.context``, ``PhaseContext.facts``)."""


# The name of every key of ``Facts`` (the test checks the two agree), for code that walks a
# list of fact names: ``KEYS: tuple[FactKey, ...]`` lets mypy check each name.
FactKey = Literal[
    "_durations",
    "abort_cleanup",
    "backport_branch",
    "backport_message",
    "backport_skipped",
    "backport_pr_number",
    "backport_pr_url",
    "backport_status",
    "base_sha",
    "branch",
    "cherry_pick",
    "cherry_picked",
    "ci",
    "cleaned",
    "deploy_approval",
    "deploy_conclusion",
    "deploy_correlation_id",
    "deploy_dispatches",
    "deploy_dispatches_failed_reported",
    "deploy_run_id",
    "deploy_run_url",
    "deployed_sha",
    "diffstat",
    "fix_approval",
    "fix_commits",
    "fix_mode",
    "fix_sha",
    "gates",
    "kept_commits",
    "merge_auto",
    "merge_method",
    "merge_required_checks",
    "merge_required_reviews",
    "merge_reviews",
    "merge_sha",
    "merged_head_sha",
    "monitor",
    "monitor_window",
    "patch",
    "pr_created",
    "pr_head_sha",
    "pr_labels",
    "pr_number",
    "pr_url",
    "production_branch",
    "pushed_sha",
    "release_tag",
    "release_tag_planned",
    "release_tag_sha",
    "remote",
    "remote_url",
    "resolved_by_hand",
    "rollback_correlation_id",
    "rollback_dispatches",
    "rollback_dispatches_failed_reported",
    "rollback_ref",
    "rollback_revert",
    "rollback_run_conclusion",
    "rollback_run_id",
    "rollback_run_sha",
    "rollback_run_url",
    "rollback_target",
    "rollback_verify",
    "rollback_workflow",
    "squashed",
    "tag_note",
    "time_to_production",
    "timestamp",
    "verify",
    "work_tree",
]

# Facts whose value is text that a phase may require (``deploy_phase.require``); mypy checks
# that each of them is a ``str`` (or None) in ``Facts``.
TextFact = Literal[
    "base_sha",
    "branch",
    "deployed_sha",
    "fix_sha",
    "merge_sha",
    "production_branch",
    "pushed_sha",
    "remote",
    "work_tree",
]

# The dispatch ledgers (``workflow_runs``), and the list of failed runs reported for each.
LedgerName = Literal["deploy_dispatches", "rollback_dispatches"]
ReportedName = Literal["deploy_dispatches_failed_reported", "rollback_dispatches_failed_reported"]
LEDGERS: tuple[LedgerName, ...] = ("deploy_dispatches", "rollback_dispatches")
_REPORTED: dict[LedgerName, ReportedName] = {
    "deploy_dispatches": "deploy_dispatches_failed_reported",
    "rollback_dispatches": "rollback_dispatches_failed_reported",
}


def reported_key(ledger: LedgerName) -> ReportedName:
    """The fact listing the ledger's failed runs already reported."""
    return _REPORTED[ledger]


# The facts of one phase group (or all of them).
GroupFacts = (
    BranchFacts
    | FixFacts
    | PushFacts
    | PullRequestFacts
    | CIFacts
    | DeployApprovalFacts
    | DeployFacts
    | VerifyFacts
    | MonitorFacts
    | MergeFacts
    | TagFacts
    | BackportFacts
    | CleanupFacts
    | RollbackFacts
    | BookkeepingFacts
    | Facts
)


def as_facts(group: GroupFacts) -> Facts:
    """One phase group's facts as ``Facts``: every group declares its keys with the types
    ``Facts`` has (``Facts`` inherits them), which mypy cannot see through a structural type."""
    return cast("Facts", group)


def facts_of(hotfix: "Hotfix") -> Facts:
    """A stored hotfix's facts, typed (the same dict as ``hotfix.context``, not a copy)."""
    return cast("Facts", hotfix.context)


def commit_refs(commits: list[dict[str, str]]) -> list[CommitRef]:
    """Commits as git's adapter lists them (``{"sha", "subject"}`` dicts), as facts."""
    refs: list[CommitRef] = []
    for commit in commits:
        ref: CommitRef = {"sha": commit["sha"], "subject": commit.get("subject", "")}
        if commit.get("author"):
            ref["author"] = commit["author"]
        refs.append(ref)
    return refs
