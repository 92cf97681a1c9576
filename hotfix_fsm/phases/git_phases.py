"""The first half of a hotfix over real git: preflight, branch, fix commit, gates, push.

Facts recorded (merged into the hotfix context; their types are in ``phases.facts``):

* ``preflight`` (at start): ``base_sha`` (the remote production head), ``remote_url`` (no
  credentials), ``remote``, ``production_branch``.
* ``branch``: ``branch``, ``base_sha``, ``work_tree``.
* ``commit_fix`` (``fix_commit.py``): ``fix_sha``, ``fix_commits`` [{sha, subject, author,
  by_tool}], ``fix_mode``, ``diffstat``, and when relevant ``kept_commits`` (the engineer's
  own commits, kept as they are), ``cherry_picked``, ``resolved_by_hand``, ``patch``,
  ``fix_approval``.
* ``gate:<name>`` (``gate_defaults.py``): ``gate``, ``command``, ``source``, ``exit_code``,
  ``duration_s``, ``sha``, ``log``, ``output_bytes`` (and ``artifact``), or ``skipped``
  with a ``reason``.
* ``push``: ``pushed_sha``, ``branch``, ``remote``.

Each probe looks at git, never at the journal: the local branch, a commit carrying the
``Hotfix-Id`` trailer (the tool's own; the engineer's commits are taken by running again), the
remote branch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hotfix_fsm.adapters.git import GitCommandError, GitPushRejected, GitRepo
from hotfix_fsm.core.redact import redact
from hotfix_fsm.core.validate import validate_ref
from hotfix_fsm.errors import (
    HotfixError,
    InvalidInput,
    PermanentError,
    TransientError,
    UsageError,
)
from hotfix_fsm.log import get_logger
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import BranchFacts, PushFacts
from hotfix_fsm.phases.fix_commit import (
    TRAILER_ID,
    TRAILER_ISSUE,
    CommitFix,
    fix_message,
    require_clean,
)
from hotfix_fsm.phases.gate_defaults import Gate

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.phases.services import Services

__all__ = [
    "TRAILER_ID",
    "TRAILER_ISSUE",
    "Branch",
    "CommitFix",
    "Gate",
    "Push",
    "branch_name",
    "check_fix",
    "fix_message",
    "preflight",
]


log = get_logger("hotfix_fsm.phases.git")


# -- preflight -----------------------------------------------------------------------------


def preflight(
    services: Services,
    config: Config,
    issue: str,
    *,
    cherry_pick: Sequence[str] = (),
    patch: Path | None = None,
) -> dict[str, Any]:
    """Check the repository before a hotfix is recorded; facts for the new hotfix.

    Nothing but a fetch happens before every check passed: the work tree is clean (an
    untracked ``hotfix.toml`` does not count), the remote answers, the production branch
    exists, and the fix given (``cherry_pick`` or ``patch``) applies onto its head
    (``check_fix``). The facts then hold ``cherry_pick``: the full shas to pick.

    Raises:
        InvalidInput / UsageError: with a hint, for each condition that is not met.
    """
    git = services.git
    tree = git.work_tree  # raises InvalidInput when this is not a work tree
    remote, production = config.remote, config.production_branch
    url = git.remote_url()
    if url is None:
        raise UsageError(
            f"the repository {tree} has no remote named {remote!r}",
            hint=f"add it (`git remote add {remote} <url>`) or set `remote` in hotfix.toml",
        )
    operation = git.operation_in_progress()
    if operation:
        raise UsageError(
            f"a {operation} is in progress in {tree}",
            hint=f"finish or abort the {operation} first (`git status` says how)",
        )
    dirty = git.status()
    if dirty:
        shown = ", ".join(entry[3:] for entry in dirty[:5])
        more = f" and {len(dirty) - 5} more" if len(dirty) > 5 else ""
        raise UsageError(
            f"the work tree {tree} is not clean ({shown}{more})",
            hint="commit, stash (`git stash --include-untracked`) or ignore these files: the "
            "hotfix branch is checked out here and its fix commit takes every change",
        )
    try:
        git.fetch()
        base = git.fetch_branch(production)
    except (TransientError, GitCommandError) as exc:
        raise UsageError(
            f"cannot fetch from remote {remote!r}: {exc.message}",
            hint=exc.hint or "check the network and credentials, then start again",
        ) from exc
    if base is None:
        raise UsageError(
            f"remote {remote!r} has no branch {production!r}",
            hint="set production_branch in hotfix.toml to the branch production deploys from",
        )
    picks = check_fix(git, base, cherry_pick=cherry_pick, patch=patch)
    _check_local_production(git, production, base)
    facts: BranchFacts = {
        "base_sha": base,
        "remote_url": redact(url),
        "remote": remote,
        "production_branch": production,
    }
    if cherry_pick:
        facts["cherry_pick"] = picks
    return {**facts}


def check_fix(
    git: GitRepo,
    base: str,
    *,
    cherry_pick: Sequence[str] = (),
    patch: Path | None = None,
    where: str = "",
) -> list[str]:
    """Refuse a fix that cannot be applied onto the production head ``base``.

    Each cherry-pick must name a commit (not a merge), not all of them may be in production
    already, and together they must apply cleanly and change something; a patch must apply
    (``git apply --check``). Checked in the object database and a scratch index only: the
    work tree, the index and every ref stay as they are. ``where`` names ``base`` in
    messages (default: "the production head").

    Returns:
        The full shas of the commits to pick, in order (the commit phase skips, with a
        note, those already in production).

    Raises:
        InvalidInput: what is wrong, and how to go on (exit 2; nothing recorded).
    """
    onto = where or f"the production head {base[:12]}"
    manual = (
        "or start without {arg}: the hotfix branch is cut from production and waits for you "
        "to apply the fix by hand ({how}, resolve, leave it uncommitted, `hotfix resume`)"
    )
    if patch is not None:
        refusal = git.patch_refusal(patch, base)
        if refusal:
            raise InvalidInput(
                f"the patch {patch} does not apply to {onto}: {refusal}",
                hint=f"make the patch against production (`git diff {base[:12]} <fixed>`), "
                + manual.format(arg="--patch", how=f"`git apply --3way {patch}`"),
            )
        return []
    picks: list[str] = []
    subjects: dict[str, str] = {}
    for rev in cherry_pick:
        sha = git.resolve_commit(rev)
        if sha is None:
            raise InvalidInput(
                f"--cherry-pick {rev!r} is not a commit in {git.work_tree}",
                hint="check the sha (`git log --oneline --all` lists them); if it was pushed "
                f"from elsewhere, `git fetch {git.remote}` first",
            )
        info = git.commit_info(sha)
        if len(info["parents"]) > 1:
            raise InvalidInput(
                f"--cherry-pick {sha[:12]} ({info['subject']}) is a merge commit; it cannot "
                "be picked alone",
                hint="pick the commits it merged, or give the change as --patch",
            )
        subjects[sha] = str(info["subject"])
        picks.append(sha)
    todo = [sha for sha in picks if not git.is_ancestor(sha, base)]
    if picks and not todo:
        raise InvalidInput(
            f"every commit to cherry-pick is already in {onto} "
            f"({', '.join(sha[:12] for sha in picks)}); there is nothing to fix",
            hint="check which commit holds the fix",
        )
    tree = base
    for sha in todo:
        picked = git.pick_onto(tree, sha)
        if picked is None:
            log.warning(
                "cherry_pick_not_checked",
                reason="this git has no `merge-tree --write-tree` (git 2.38 or newer)",
            )
            return picks
        tree, conflicts = picked
        if conflicts:
            raise InvalidInput(
                f"cherry-picking {sha[:12]} ({subjects[sha]}) onto {onto} conflicts in "
                f"{', '.join(conflicts)}",
                hint="pick commits that apply, give a patch made against production, "
                + manual.format(
                    arg="--cherry-pick", how=f"`git cherry-pick --no-commit {sha[:12]}`"
                ),
            )
    if todo and tree == git.tree_of(base):
        raise InvalidInput(
            f"the cherry-picks change nothing on {onto} (is the fix already there?)",
            hint="check production; there may be nothing to fix",
        )
    return picks


def _check_local_production(git: GitRepo, production: str, base: str) -> None:
    local = git.local_branch_sha(production)
    if local is None or local == base:
        return
    remote = git.remote
    where = f"local {production} is at {local[:12]} but {remote}/{production} is at {base[:12]}"
    if git.is_ancestor(local, base):
        # Merely behind (typically after the last hotfix merged): bring it level, which is
        # what `git pull --ff-only` would do; the work tree is known to be clean here.
        if git.current_branch() == production:
            git.run("merge", "--ff-only", "--quiet", base)
        else:
            git.run("update-ref", f"refs/heads/{production}", base, local)
        return
    raise UsageError(
        f"{where}: the local branch has commits the remote does not",
        hint=f"push them through review or drop them (`git log {remote}/{production}.."
        f"{production}` lists them); a hotfix starts from what production runs",
    )


# -- branch --------------------------------------------------------------------------------


def branch_name(pattern: str, *, issue: str, timestamp: str, hotfix_id: str) -> str:
    """The hotfix branch from ``branch_pattern`` ({issue}, {timestamp}, {id}), validated."""
    name = (
        pattern.replace("{issue}", issue)
        .replace("{timestamp}", timestamp)
        .replace("{id}", hotfix_id)
    )
    if "{" in name or "}" in name:
        raise UsageError(
            f"branch_pattern {pattern!r} has an unknown placeholder",
            hint="fix branch_pattern in hotfix.toml: its placeholders are {issue}, "
            "{timestamp} and {id}",
        )
    try:
        return validate_ref(name, "hotfix branch name")
    except UsageError as exc:
        raise UsageError(
            exc.message, hint=f"fix branch_pattern ({pattern!r}) in hotfix.toml"
        ) from exc


def check_branch_pattern(pattern: str, issue: str) -> str:
    """The branch ``pattern`` gives for ``issue`` (a sample timestamp), or ``UsageError``:
    checked before a hotfix is recorded, so a bad pattern changes nothing."""
    stamp = "20240101-000000"
    return branch_name(pattern, issue=issue, timestamp=stamp, hotfix_id=f"{issue}-{stamp}")


class Branch(BasePhase):
    """Create ``hotfix/<ISSUE>-<timestamp>`` at the recorded base sha and check it out."""

    name = "branch"

    def _target(self, ctx: PhaseContext) -> tuple[str, str]:
        base = ctx.facts.get("base_sha")
        if not base:
            raise PermanentError(
                "no production base commit was recorded at start",
                hint="abort this hotfix and start again",
            )
        hotfix = ctx.hotfix
        stamp = ctx.facts.get("timestamp") or time.strftime(
            "%Y%m%d-%H%M%S", time.gmtime(hotfix.created_at)
        )
        name = branch_name(
            ctx.config.branch_pattern, issue=hotfix.issue, timestamp=stamp, hotfix_id=hotfix.id
        )
        return name, base

    # key() and prepare() run before the effect, outside the runner's error handling: they
    # never raise; a bad pattern or missing base fails in run() with the full message.
    def key(self, ctx: PhaseContext) -> str:
        try:
            return self._target(ctx)[0]
        except HotfixError:
            return super().key(ctx)

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        try:
            branch, base = self._target(ctx)
        except HotfixError:
            return {}
        return {"branch": branch, "base_sha": base}

    def _facts(self, git: GitRepo, branch: str, base: str) -> BranchFacts:
        return {"branch": branch, "base_sha": base, "work_tree": str(git.work_tree)}

    def probe(self, ctx: PhaseContext) -> Probe:
        branch, base = self._target(ctx)
        git = ctx.services.git
        sha = git.local_branch_sha(branch)
        if sha is None:
            return Probe.not_done(f"no local branch {branch}")
        if sha == base or git.is_ancestor(base, sha):
            return Probe.done(self._facts(git, branch, base))
        return Probe.unknown(
            f"local branch {branch} exists at {sha[:12]}, which is not built "
            f"on the production head {base[:12]}"
        )

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        branch, base = self._target(ctx)
        git = ctx.services.git
        existing = git.local_branch_sha(branch)
        if existing is not None:
            if existing != base and not git.is_ancestor(base, existing):
                raise PermanentError(
                    f"a local branch {branch} already exists at {existing[:12]}, which is not "
                    f"built on the production head {base[:12]}",
                    hint=f"rename or delete that branch (`git branch -m {branch} <other>`), "
                    f"then `hotfix resume {ctx.hotfix.id}`",
                )
            if git.current_branch() != branch:
                require_clean(git, ctx, "switching to the hotfix branch")
                git.checkout(branch)
            return {**self._facts(git, branch, base)}
        require_clean(git, ctx, "creating the hotfix branch")
        if not git.has_commit(base):
            git.fetch_branch(ctx.config.production_branch)
            if not git.has_commit(base):
                raise PermanentError(
                    f"the production base commit {base[:12]} is no longer on the remote",
                    hint="someone rewrote the production branch; abort and start again",
                )
        git.create_branch(branch, base)
        return {**self._facts(git, branch, base)}


# -- push ----------------------------------------------------------------------------------


class Push(BasePhase):
    """Push the fix commit to ``refs/heads/<branch>`` on the remote, never forced."""

    name = "push"

    @staticmethod
    def _target(ctx: PhaseContext) -> tuple[str, str]:
        branch, sha = ctx.facts.get("branch"), ctx.facts.get("fix_sha")
        if not branch or not sha:
            raise PermanentError("no hotfix branch or fix commit is recorded to push")
        return branch, sha

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.facts.get('branch')}@{ctx.facts.get('fix_sha')}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        return {"branch": ctx.facts.get("branch"), "sha": ctx.facts.get("fix_sha")}

    def _facts(self, git: GitRepo, branch: str, sha: str) -> PushFacts:
        return {"pushed_sha": sha, "branch": branch, "remote": git.remote}

    def probe(self, ctx: PhaseContext) -> Probe:
        branch, sha = self._target(ctx)
        git = ctx.services.git
        remote_sha = git.ls_remote(f"refs/heads/{branch}")
        if remote_sha == sha:
            return Probe.done(self._facts(git, branch, sha))
        if remote_sha is None:
            return Probe.not_done(f"{git.remote} has no branch {branch}")
        # Not ours: run() refuses it with a clear error rather than pausing in doubt.
        return Probe.not_done(f"{git.remote}/{branch} is at {remote_sha[:12]}, not ours")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        branch, sha = self._target(ctx)
        git = ctx.services.git
        if not git.has_commit(sha):
            raise PermanentError(
                f"the fix commit {sha[:12]} is missing from {git.work_tree}",
                hint="was the branch deleted or the clone replaced? abort and start again",
            )
        remote_sha = git.ls_remote(f"refs/heads/{branch}")
        if remote_sha == sha:
            return {**self._facts(git, branch, sha)}
        if remote_sha is not None:
            self._refuse(ctx, git, branch, sha, remote_sha)
        try:
            git.push_ref(sha, f"refs/heads/{branch}")
        except GitPushRejected as exc:
            now = git.ls_remote(f"refs/heads/{branch}")
            if now == sha:
                return {**self._facts(git, branch, sha)}
            if now is not None:
                self._refuse(ctx, git, branch, sha, now)
            raise PermanentError(
                f"{git.remote} refused the push of {branch}: {exc.message}", hint=exc.hint
            ) from exc
        return {**self._facts(git, branch, sha)}

    @staticmethod
    def _refuse(
        ctx: PhaseContext, git: GitRepo, branch: str, sha: str, remote_sha: str
    ) -> NoReturn:
        raise PermanentError(
            f"someone else pushed to {branch} (remote at {remote_sha[:12]}, ours "
            f"{sha[:12]}); never overwritten",
            hint=f"compare them (`git fetch {git.remote} && git log {sha[:12]}..."
            f"{remote_sha[:12]}`); if the remote branch is stale, delete it "
            f"(`git push {git.remote} --delete {branch}`) and `hotfix resume {ctx.hotfix.id}`",
        )
