"""Hand a hotfix to another machine: prepare its own work tree, then move the hotfix there.

On a second machine sharing the store, the hotfix row still names the first machine's work
tree. ``prepare_work_tree`` gives the hotfix a work tree here — an existing clone of the same
remote, or an empty (or absent) directory it clones the recorded ``remote_url`` into — puts
the hotfix branch there at the recorded commit, and records the move in the journal through a
fenced write (it takes the lease: a live driver elsewhere is refused unless ``take_over``).

What happens, by the state the hotfix is in (a stopped hotfix counts as the state it failed
in):

* ``created``: nothing to check out; the branch phase creates the branch here.
* ``branched``, ``awaiting_fix``: the branch only ever existed on the first machine, at the
  production base. It is recreated here at the recorded ``base_sha``. Edits an engineer made
  there and never committed through the hotfix are gone with that machine; in manual mode the
  fix gate asks for them again, cherry-pick and patch modes re-apply the fix.
* ``fix_committed``, ``gating``, ``gates_passed``: the fix commit was made on the first
  machine and is not pushed yet. If the remote branch holds it anyway (a push in doubt), it is
  checked out here. Otherwise it is lost with that machine: the hotfix is **rewound** to
  ``branched`` by a journaled ``transition`` row of trigger ``handoff`` that lists the lost
  facts (fix sha, gate results); the branch is recreated at the base and the fix is made and
  tested again (a deploy approval, bound to the old sha, lapses).
* ``pushed`` and later (the rollback states included): the fix is on the remote; the branch
  is fetched and checked out at the recorded ``fix_sha`` (which must equal ``pushed_sha``).
  A branch deleted on the remote is recovered from the fix sha when the remote still serves
  it; from ``merged`` on, nothing needs it any more and its absence is only noted. Before the
  merge, a fix commit the remote no longer has stops the hand-off with instructions.
* ``done``, ``cancelled``, ``rolled_back``: the work tree is only recorded.

A local branch of the same name at another commit, a work tree with changes, or a clone of
another remote are refused, never overwritten. Every git command is an argv list.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.adapters.commands import CommandNotFound, run_captured
from hotfix_fsm.adapters.git import GitRepo, git_environment, strip_userinfo
from hotfix_fsm.adapters.git_errors import git_failure
from hotfix_fsm.core import machine
from hotfix_fsm.core.validate import validate_ref
from hotfix_fsm.errors import InvalidInput, LeaseLost, PermanentError, UsageError
from hotfix_fsm.phases.facts import FactKey, Facts, facts_of
from hotfix_fsm.store import Entry, Hotfix

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.engine import HotfixEngine

__all__ = [
    "LOCAL_FIX_STATES",
    "PRE_FIX_STATES",
    "prepare_work_tree",
    "same_remote",
]

PRE_FIX_STATES = frozenset({"branched", "awaiting_fix"})
# The fix commit exists but the hotfix has not pushed it: it may live on the first machine only.
LOCAL_FIX_STATES = frozenset({"fix_committed", "gating", "gates_passed"})
# From here on nothing needs the hotfix branch any more.
AFTER_MERGE_STATES = frozenset({"merged", "tagged", "backported", "cleaned_up"})
# Facts that describe the fix commit; dropped (and journaled) when that commit is lost.
FIX_FACTS: tuple[FactKey, ...] = (
    "fix_sha",
    "fix_commits",
    "diffstat",
    "cherry_picked",
    "squashed",
    "resolved_by_hand",
    "fix_approval",
    "gates",
    "pushed_sha",
)


def prepare_work_tree(
    engine: HotfixEngine,
    hotfix: Hotfix | str,
    repo_path: str | os.PathLike[str],
    *,
    take_over: bool = False,
) -> Hotfix:
    """Give ``hotfix`` a work tree at ``repo_path`` on this machine; return the updated row.

    Args:
        engine: the engine over the shared store (its runner's owner takes the lease).
        hotfix: the hotfix or a reference to it (id, id prefix, issue).
        repo_path: an existing clone of the hotfix's remote, or an empty or absent directory
            to clone into.
        take_over: take the lease from a live driver (that driver's writes are then refused).

    Raises:
        LeaseHeld: another driver holds the hotfix and ``take_over`` is false.
        InvalidInput: the path is neither empty nor a clone of the hotfix's remote.
        UsageError: the work tree has changes or a conflicting local branch.
        PermanentError: the fix commit cannot be recovered before the merge.
    """
    found = engine.resolve(hotfix) if isinstance(hotfix, str) else engine.get(hotfix.id)
    runner = engine.runner
    lease = engine.store.acquire_lease(
        found.id, runner.owner, ttl=max(runner.lease_ttl, 60.0), take_over=take_over
    )
    previous = found.lease_owner if found.lease_live() else None
    try:
        found = engine.get(found.id)  # as of the lease
        target = Path(repo_path).expanduser().resolve()
        cloned = _ensure_clone(found, target)
        config = engine.config_for(found, repo=str(target))
        with GitRepo(target, remote=config.remote, timeout=config.git_timeout) as git:
            _check_remote(found, git, target)
            plan = _Plan(found, git, config)
            plan.run()
        if not engine.store.renew_lease(lease):
            raise LeaseLost(
                "another driver took the hotfix while its work tree was prepared here",
                hotfix_id=found.id,
                hint="run `hotfix status` to see who drives it now",
            )
        record = {
            "from_repo": found.repo,
            "to_repo": str(target),
            "cloned": cloned,
            "state": found.state,
            "by": _user(),
            "host": socket.gethostname(),
            "owner": runner.owner,
            "took_over_from": previous if previous != runner.owner else None,
            **plan.record,
        }
        entries = [Entry("note", None, 0, None, {"handoff": record})]
        changes: dict[str, Any] = {"repo": str(target)}
        if plan.rewind is not None:
            entries.append(plan.rewind_entry())
            changes.update(plan.rewind)
        elif "work_tree" in facts_of(found):
            changes["context"] = {**facts_of(found), "work_tree": str(target)}
        engine.writer.write(found, entries, lease=lease, **changes)
    finally:
        engine.store.release_lease(lease)
    return engine.get(found.id)


# -- the clone -------------------------------------------------------------------------------


def _normalise(url: str) -> str:
    text = strip_userinfo(url.strip()).rstrip("/")
    text = text.removeprefix("file://")
    text = text.removesuffix(".git").rstrip("/")
    if "://" not in text and not re.match(r"^[\w.-]+@[\w.-]+:", text) and os.path.isabs(text):
        text = os.path.realpath(text).removesuffix(".git")
    return text.lower() if "://" in text else text


def same_remote(a: str, b: str) -> bool:
    """Whether two remote URLs name the same repository (credentials, ``.git`` ignored)."""
    return _normalise(a) == _normalise(b)


def _remote_url(hotfix: Hotfix) -> str:
    url = facts_of(hotfix).get("remote_url") or ""
    if not url:
        raise PermanentError(
            "this hotfix has no recorded remote URL to clone from",
            hotfix_id=hotfix.id,
            hint="clone the repository yourself and pass that clone as the work tree",
        )
    return url


def _ensure_clone(hotfix: Hotfix, target: Path) -> bool:
    """Clone into ``target`` when it is absent or empty; True when cloned."""
    if target.exists() and not target.is_dir():
        raise InvalidInput(
            f"{target} is a file, not a directory",
            hint="give an existing clone, or an empty directory to clone into",
        )
    if target.is_dir() and any(target.iterdir()):
        return False
    url = _remote_url(hotfix)
    if url.startswith("-"):
        raise InvalidInput(f"the recorded remote URL {url!r} is not usable", hotfix_id=hotfix.id)
    remote = facts_of(hotfix).get("remote") or "origin"
    validate_ref(f"refs/remotes/{remote}", "remote name")
    target.parent.mkdir(parents=True, exist_ok=True)
    argv = ["git", "clone", "--quiet", "--origin", remote, "--", url, str(target)]
    try:
        result = run_captured(argv, cwd=target.parent, timeout=600, env=git_environment())
    except CommandNotFound as exc:
        raise PermanentError(
            f"cannot run git: {exc.reason}", hint="install git and make sure it is on PATH"
        ) from exc
    if not result.ok:
        raise git_failure(("clone", url), result, remote=remote, network=True)
    return True


def _check_remote(hotfix: Hotfix, git: GitRepo, target: Path) -> None:
    git.work_tree  # noqa: B018 - raises InvalidInput when this is no work tree
    url = git.remote_url()
    recorded = facts_of(hotfix).get("remote_url") or ""
    if url is None:
        raise InvalidInput(
            f"{target} has no remote named {git.remote!r}",
            hotfix_id=hotfix.id,
            hint=f"add it (`git remote add {git.remote} {recorded or '<url>'}`) or use an "
            "empty directory to clone into",
        )
    if recorded and not same_remote(url, recorded):
        raise InvalidInput(
            f"{target} is a clone of {url}, but the hotfix's remote is {recorded}",
            hotfix_id=hotfix.id,
            hint="give a clone of the hotfix's repository, or an empty directory to clone into",
        )


# -- the branch ------------------------------------------------------------------------------


class _Plan:
    """What the hand-off does to the work tree for the hotfix's state."""

    def __init__(self, hotfix: Hotfix, git: GitRepo, config: Config) -> None:
        self.hotfix = hotfix
        self.git = git
        self.config = config
        self.data: Facts = facts_of(hotfix)
        self.state = (
            hotfix.failed_from
            if hotfix.state in machine.STOPPED and hotfix.failed_from
            else hotfix.state
        )
        self.record: dict[str, Any] = {}
        self.rewind: dict[str, Any] | None = None
        self.lost: dict[str, Any] = {}

    def run(self) -> None:
        git = self.git
        git.fetch()
        state = self.state
        branch = self.data.get("branch") or ""
        if state == "created" or state in machine.TERMINAL or not branch:
            self.record["checked_out"] = None
            return
        validate_ref(branch, "hotfix branch name")
        remote_sha = git.fetch_branch(branch)
        self.record.update(branch=branch, remote_sha=remote_sha)
        fix = self.data.get("fix_sha") or ""
        if state in PRE_FIX_STATES:
            self._at_base(branch)
        elif state in LOCAL_FIX_STATES:
            if fix and remote_sha and self._contains(remote_sha, fix):
                self._at(branch, fix)
            else:
                self._rewind_to_branched(branch, fix)
        else:
            self._pushed(branch, fix, remote_sha)

    def _contains(self, tip: str, sha: str) -> bool:
        return tip == sha or (self.git.has_commit(sha) and self.git.is_ancestor(sha, tip))

    def _at_base(self, branch: str) -> None:
        base = self.data.get("base_sha") or ""
        if not base:
            raise PermanentError(
                "no production base commit is recorded, so the branch cannot be recreated",
                hotfix_id=self.hotfix.id,
                hint="abort this hotfix and start again",
            )
        if not self.git.has_commit(base):
            self.git.fetch_branch(self.config.production_branch)
        if not self.git.has_commit(base):
            raise PermanentError(
                f"the production base commit {base[:12]} is no longer on the remote",
                hotfix_id=self.hotfix.id,
                hint="someone rewrote the production branch; abort and start a new hotfix",
            )
        self._at(branch, base)
        self.record["recreated_at_base"] = base

    def _rewind_to_branched(self, branch: str, fix: str) -> None:
        lost: dict[str, Any] = {k: self.data[k] for k in FIX_FACTS if k in self.data}
        self._at_base(branch)
        context: dict[str, Any] = {k: v for k, v in self.data.items() if k not in FIX_FACTS}
        context.pop("_attempts", None)
        context["work_tree"] = str(self.git.work_tree)
        self.rewind = {
            "state": "branched",
            "failed_from": None,
            "error": None,
            "paused_reason": None,
            "paused_gate": None,
            "context": context,
        }
        self.record["rewound"] = {"from": self.hotfix.state, "to": "branched", "lost_fix": fix}
        self.lost = lost

    def rewind_entry(self) -> Entry:
        fix = self.data.get("fix_sha") or ""
        return Entry(
            "transition",
            "handoff",
            0,
            None,
            {
                "from": self.hotfix.state,
                "to": "branched",
                "handoff": True,
                "reason": f"the fix commit {fix[:12] or '(none)'} was never pushed; it stayed "
                "on the first machine, so the fix is made and tested again here",
                "lost": self.lost,
            },
        )

    def _pushed(self, branch: str, fix: str, remote_sha: str | None) -> None:
        pushed = self.data.get("pushed_sha") or ""
        if pushed and fix and pushed != fix:
            raise PermanentError(
                f"the recorded pushed commit {pushed[:12]} is not the fix commit {fix[:12]}",
                hotfix_id=self.hotfix.id,
                hint="the hotfix's facts are inconsistent; check `hotfix log` and the remote",
            )
        if not fix:
            self.record["checked_out"] = None
            return
        if remote_sha and remote_sha != fix:
            self.record["warning"] = (
                f"the remote branch {branch} is at {remote_sha[:12]}, not the fix {fix[:12]}"
            )
        if not self.git.has_commit(fix):
            self._fetch_sha(fix)
        if self.git.has_commit(fix):
            self._at(branch, fix)
            return
        if self.state in AFTER_MERGE_STATES or self.state in machine.ROLLBACK_STATES:
            self.record["checked_out"] = None
            self.record["note"] = f"the fix commit {fix[:12]} is not on the remote any more"
            return
        raise PermanentError(
            f"the fix commit {fix[:12]} is on no branch of remote {self.git.remote!r} "
            f"(branch {branch} is {'at ' + remote_sha[:12] if remote_sha else 'gone'})",
            hotfix_id=self.hotfix.id,
            hint=f"push it again from a clone that has it (`git push {self.git.remote} "
            f"{fix}:refs/heads/{branch}`), then retry; or abort this hotfix",
        )

    def _fetch_sha(self, sha: str) -> None:
        # Servers that allow it (GitHub does) serve a commit by its sha even without a branch.
        self.git.run("fetch", "--quiet", "--no-tags", "--", self.git.remote, sha, check=False)

    def _at(self, branch: str, sha: str) -> None:
        """The local ``branch`` at ``sha``, checked out; refuses to move someone's branch."""
        git = self.git
        local = git.local_branch_sha(branch)
        if local is not None and local != sha:
            raise UsageError(
                f"a local branch {branch} already exists in {git.work_tree} at {local[:12]}, "
                f"not at the hotfix's commit {sha[:12]}",
                hotfix_id=self.hotfix.id,
                hint=f"rename it (`git branch -m {branch} {branch}-old`) or use another "
                "clone, then retry",
            )
        if git.current_branch() != branch:
            dirty = git.status()
            if dirty:
                shown = ", ".join(e[3:] for e in dirty[:5])
                raise UsageError(
                    f"the work tree {git.work_tree} has changes ({shown})",
                    hotfix_id=self.hotfix.id,
                    hint="commit, stash or remove them (the hotfix branch is checked out "
                    "here), or use an empty directory, then retry",
                )
            if local is None:
                git.create_branch(branch, sha)
            else:
                git.checkout(branch)
        head = git.head_sha()
        if head != sha or git.local_branch_sha(branch) != sha:
            raise PermanentError(
                f"{branch} in {git.work_tree} is at {head[:12]} after the checkout, "
                f"expected {sha[:12]}",
                hotfix_id=self.hotfix.id,
                hint="check the work tree by hand (`git status`), then retry",
            )
        self.record["checked_out"] = sha


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
