"""What the world shows about a hotfix whose database is lost: the evidence ``adopt`` reads.

Everything here is read-only towards the remote and GitHub (the only local change is a
``git fetch``): the hotfix branch (local and remote) and its fix commit with the trailers
``Hotfix-Id`` / ``Hotfix-Issue``, the production PR by head, CI on the fix sha, the deploy runs
whose title carries a correlation id ``<hotfix id>-deploy-…``, the rollback runs and branch,
the merge, the release tag on the merge commit, the back-merge PR ``backport/<branch>`` and
whether the branch is gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hotfix_fsm.core.validate import validate_ref
from hotfix_fsm.errors import InvalidInput, NotFound, UsageError
from hotfix_fsm.phases.ci_phase import collect, evaluate
from hotfix_fsm.phases.fix_commit import TRAILER_ID, TRAILER_ISSUE

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.adapters.github import GitHubClient
    from hotfix_fsm.config import Config

__all__ = ["Evidence", "find_branch", "gather", "parse_branch"]

_TIMESTAMP = r"\d{8}-\d{6}"
_SEP = "\x1f"
_REC = "\x1e"


@dataclass
class Evidence:
    """What was found; ``seen`` lists each finding in words (journaled with the adoption)."""

    branch: str
    hotfix_id: str
    issue: str
    description: str
    base_sha: str
    timestamp: str | None = None
    local_sha: str | None = None
    remote_sha: str | None = None
    fix_sha: str | None = None
    fix_where: str = ""
    fix_own: bool = False  # the fix is the engineer's own commits (no Hotfix-Id trailer)
    pushed: bool = False
    pr: dict[str, Any] | None = None
    ci: dict[str, Any] | None = None
    deploy_runs: list[dict[str, Any]] = field(default_factory=list)
    deploy_weak: bool = False  # runs found by branch and sha, not by correlation id
    merge_sha: str | None = None
    merge_parent: str | None = None
    tag: str | None = None
    tag_names_hotfix: bool = False
    backport_pr: dict[str, Any] | None = None
    seen: list[str] = field(default_factory=list)


# -- the branch ------------------------------------------------------------------------------


def _pattern_regex(pattern: str, issue: str | None = None) -> re.Pattern[str]:
    out = ""
    for part in re.split(r"(\{issue\}|\{timestamp\}|\{id\})", pattern):
        if part == "{issue}":
            out += re.escape(issue) if issue else r"(?P<issue>.+?)"
        elif part == "{timestamp}":
            out += rf"(?P<timestamp>{_TIMESTAMP})"
        elif part == "{id}":
            out += r"(?P<id>.+)"
        else:
            out += re.escape(part)
    return re.compile(out)


def parse_branch(pattern: str, branch: str, issue: str | None = None) -> dict[str, str]:
    """``issue``, ``timestamp`` and ``id`` read back from a branch made by ``pattern``."""
    match = _pattern_regex(pattern, issue).fullmatch(branch)
    if match is None:
        return {}
    found = {k: v for k, v in match.groupdict().items() if v}
    if issue:
        found["issue"] = issue
    if "id" not in found and "issue" in found and "timestamp" in found:
        found["id"] = f"{found['issue']}-{found['timestamp']}"
    return found


def _remote_heads(git: GitRepo) -> dict[str, str]:
    out = git.run("ls-remote", "--heads", "--", git.remote, network=True).stdout
    heads: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            heads[ref.removeprefix("refs/heads/")] = sha
    return heads


def _local_heads(git: GitRepo) -> dict[str, str]:
    out = git.run("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads").stdout
    heads: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition(" ")
        heads[ref.removeprefix("refs/heads/")] = sha
    return heads


def find_branch(git: GitRepo, config: Config, issue: str) -> str:
    """The most recent hotfix branch of ``issue`` (remote, back-merge or local)."""
    regex = _pattern_regex(config.branch_pattern, issue)
    names: set[str] = set()
    for name in [*_remote_heads(git), *_local_heads(git)]:
        candidate = name.removeprefix("backport/")
        if regex.fullmatch(candidate):
            names.add(candidate)
    if not names:
        shown = config.branch_pattern.replace("{issue}", issue)
        raise NotFound(
            f"no hotfix branch of issue {issue} on remote {git.remote!r} or in {git.work_tree} "
            f"(looked for {shown})",
            hint=f"give the branch with --branch, or check `git ls-remote --heads {git.remote}`",
        )

    def recency(name: str) -> tuple[str, str]:
        match = regex.fullmatch(name)
        stamp = (match.groupdict().get("timestamp") or "") if match else ""
        return stamp, name

    return max(names, key=recency)


# -- the fix commit --------------------------------------------------------------------------


def _trailer_commits(git: GitRepo, tip: str, exclude: str | None) -> list[tuple[str, str, str]]:
    """``(sha, hotfix id, issue)`` of commits carrying the hotfix trailers, newest first."""
    fmt = (
        f"%H%x1f%(trailers:key={TRAILER_ID},valueonly,separator=%x1d)"
        f"%x1f%(trailers:key={TRAILER_ISSUE},valueonly,separator=%x1d)%x1e"
    )
    args = ["log", "--max-count=50", f"--format={fmt}", tip]
    if exclude:
        args += ["--not", exclude]
    out = git.run(*args, "--").stdout
    found = []
    for record in out.split(_REC):
        parts = record.strip().split(_SEP)
        if len(parts) == 3 and parts[1].strip():
            found.append((parts[0], parts[1].split("\x1d")[0].strip(), parts[2].strip()))
    return found


def _fetch_sha(git: GitRepo, sha: str) -> bool:
    if git.has_commit(sha):
        return True
    git.run("fetch", "--quiet", "--no-tags", "--", git.remote, sha, check=False, network=True)
    return git.has_commit(sha)


def _description(git: GitRepo, sha: str, issue: str) -> str:
    """The description the fix commit was made with (``fix_message`` in reverse)."""
    message = str(git.commit_info(sha)["message"])
    lines = message.strip("\n").splitlines()
    subject = lines[0] if lines else ""
    body = [ln for ln in lines[1:] if not ln.startswith((f"{TRAILER_ID}:", f"{TRAILER_ISSUE}:"))]
    text = "\n".join(body).strip()
    return text or subject.removeprefix(f"HOTFIX({issue}): ").strip() or subject


def _base_of(git: GitRepo, fix: str, since: str) -> str:
    """The commit the fix's commits (``since..fix``, the engineer's and the tool's) start on."""
    listed = git.run("rev-list", "--topo-order", "--reverse", f"{since}..{fix}", "--").stdout
    first = (listed.split() or [fix])[0]
    parents = git.commit_info(first)["parents"]
    return str(parents[0]) if parents else first


# -- gathering -------------------------------------------------------------------------------


def gather(git: GitRepo, gh: GitHubClient, config: Config, branch: str) -> Evidence:
    """Everything the world shows about the hotfix on ``branch``."""
    validate_ref(branch, "hotfix branch name")
    production = config.production_branch
    git.fetch()
    production_ref = f"refs/remotes/{git.remote}/{production}"
    if git.fetch_branch(production) is None:
        raise UsageError(
            f"remote {git.remote!r} has no branch {production!r}",
            hint="set production_branch in hotfix.toml to the branch production deploys from",
        )
    remote_sha = git.fetch_branch(branch)
    local_sha = git.local_branch_sha(branch)
    pr = gh.find_pull(branch, base=production)
    backport_head = f"backport/{branch}"
    backport_sha = git.fetch_branch(backport_head)
    seen: list[str] = []
    if remote_sha:
        seen.append(f"remote branch {branch} at {remote_sha[:12]}")
    if local_sha:
        seen.append(f"local branch {branch} at {local_sha[:12]}")
    if pr:
        seen.append(f"PR #{pr['number']} from {branch} ({_pr_state(pr)})")

    # The fix commit: the PR's head first (it survives the branch), then the branches.
    pr_base = str((pr or {}).get("base", {}).get("sha") or "") or None
    tips: list[tuple[str, str | None, str]] = []
    if pr and (pr.get("head") or {}).get("sha"):
        tips.append((str(pr["head"]["sha"]), pr_base, f"the head of PR #{pr['number']}"))
    for sha, where in (
        (remote_sha, f"remote branch {branch}"),
        (local_sha, f"local branch {branch}"),
        (backport_sha, f"remote branch {backport_head}"),
    ):
        if sha:
            tips.append((sha, production_ref, where))
    fix: tuple[str, str, str] | None = None
    fix_where = ""
    own: str | None = None  # the engineer's own commits, pushed without the tool's commit
    since = production_ref  # what the fix's commits are counted from
    for tip, exclude, where in tips:
        if not _fetch_sha(git, tip):
            continue
        usable = exclude if exclude and git.has_commit(exclude) else production_ref
        found = _trailer_commits(git, tip, usable)
        if found:
            fix, fix_where, since = found[0], where, usable
            break
        if own is None and where != f"local branch {branch}" and git.commits_between(usable, tip):
            own, fix_where, since = tip, where, usable  # only the tool pushes, after the fix
    if not tips:
        raise NotFound(
            f"branch {branch} exists neither on remote {git.remote!r} nor in {git.work_tree}, "
            "and no pull request comes from it",
            hint="check the branch name (`git ls-remote --heads "
            f"{git.remote}`), or adopt by issue with --issue",
        )
    parsed = parse_branch(config.branch_pattern, branch)
    if fix is not None:
        fix_sha: str | None = fix[0]
        hotfix_id, issue = fix[1], fix[2] or parsed.get("issue", "")
        base = _base_of(git, fix[0], since)
        description = _description(git, fix[0], issue)
        seen.append(f"fix commit {fix[0][:12]} with {TRAILER_ID}: {hotfix_id} on {fix_where}")
    else:
        if "id" not in parsed:
            raise InvalidInput(
                f"no commit on {branch} carries a {TRAILER_ID} trailer, and the branch name "
                f"does not follow branch_pattern {config.branch_pattern!r}",
                hint="adopt only branches hotfix_fsm made; otherwise start a new hotfix",
            )
        fix_sha, hotfix_id, issue = own, parsed["id"], parsed.get("issue", "")
        if own:
            seen.append(
                f"the engineer's own commits up to {own[:12]} on {fix_where} (no {TRAILER_ID} "
                "trailer: nothing was left uncommitted for the tool)"
            )
        else:
            fix_where = ""
        head = local_sha or remote_sha
        if own:
            base = _base_of(git, own, since)
        else:
            merged = git.run("merge-base", head, production_ref, check=False).stdout if head else ""
            base = merged.strip() or git.rev_parse(production_ref)
        description = f"(adopted from branch {branch}; the description was not recorded)"
    ev = Evidence(
        branch=branch,
        hotfix_id=hotfix_id,
        issue=issue,
        description=description,
        base_sha=base,
        timestamp=parsed.get("timestamp"),
        local_sha=local_sha,
        remote_sha=remote_sha,
        fix_sha=fix_sha,
        fix_where=fix_where,
        fix_own=fix is None and own is not None,
        pr=pr,
        seen=seen,
    )
    if fix_sha:
        _after_fix(git, gh, config, ev, fix_sha, backport_head)
    return ev


def _pr_state(pr: dict[str, Any]) -> str:
    return "merged" if pr.get("merged_at") else str(pr.get("state"))


def _contains(git: GitRepo, tip: str | None, sha: str) -> bool:
    return bool(tip) and (tip == sha or git.is_ancestor(sha, str(tip)))


def _after_fix(
    git: GitRepo, gh: GitHubClient, config: Config, ev: Evidence, fix: str, backport_head: str
) -> None:
    pr = ev.pr
    pr_head = str((pr or {}).get("head", {}).get("sha") or "")
    ev.pushed = _contains(git, ev.remote_sha, fix) or pr_head == fix
    if ev.pushed:
        ev.seen.append(f"the fix {fix[:12]} is on the remote")
    if config.ci.enabled and ev.pushed:
        checks = collect(gh, fix)
        verdict, _deciding, text = evaluate(checks, config.ci.required_checks)
        ev.ci = {
            "verdict": verdict,
            "text": text,
            "checks": [{"name": c.name, "state": c.state, "url": c.url} for c in checks],
        }
        ev.seen.append(f"CI on {fix[:12]}: {text}")
    _deploy_runs(gh, config, ev, fix)
    if pr and (pr.get("merged") or pr.get("merged_at")):
        ev.merge_sha = str(pr.get("merge_commit_sha") or "") or None
        if ev.merge_sha and _fetch_sha(git, ev.merge_sha):
            parents = git.commit_info(ev.merge_sha)["parents"]
            ev.merge_parent = str(parents[0]) if parents else None
        ev.seen.append(f"PR #{pr['number']} merged as {str(ev.merge_sha)[:12]}")
    if ev.merge_sha and config.tag.enabled:
        _tag(git, config, ev, ev.merge_sha)
    if config.backport.enabled and ev.merge_sha:
        base = config.backport.base or config.main_branch
        ev.backport_pr = gh.find_pull(backport_head, base=base)
        if ev.backport_pr:
            ev.seen.append(f"back-merge PR #{ev.backport_pr['number']} from {backport_head}")
    if ev.merge_sha and ev.remote_sha is None:
        ev.seen.append(f"branch {ev.branch} is deleted on the remote")


def _runs(gh: GitHubClient, workflow: str, branch: str | None) -> list[dict[str, Any]]:
    from hotfix_fsm.adapters.github import GitHubAPIError

    runs: list[dict[str, Any]] = []
    for page in (1, 2, 3):
        try:
            batch = gh.workflow_runs(
                workflow, branch=branch, event="workflow_dispatch", per_page=50, page=page
            )
        except GitHubAPIError as exc:
            if exc.status == 404:
                return runs
            raise
        runs += batch
        if len(batch) < 50:
            break
    return runs


def _label(run: dict[str, Any]) -> str:
    return f"{run.get('display_title') or ''} {run.get('name') or ''}"


def _deploy_runs(gh: GitHubClient, config: Config, ev: Evidence, fix: str) -> None:
    workflow = config.deploy.workflow
    runs = _runs(gh, workflow, ev.branch)
    marker = f"{ev.hotfix_id}-deploy-"
    ours = [r for r in runs if marker in _label(r)]
    if not ours:
        ours = [r for r in runs if r.get("head_sha") == fix]
        ev.deploy_weak = bool(ours)
    ev.deploy_runs = sorted(ours, key=lambda r: int(r.get("id") or 0))
    for run in ev.deploy_runs:
        how = "its branch and sha" if ev.deploy_weak else "its correlation id"
        ev.seen.append(
            f"deploy run {run.get('id')} ({run.get('status')}, {run.get('conclusion')}) "
            f"found by {how}"
        )


def correlation_id(run: dict[str, Any], hotfix_id: str) -> str | None:
    """The correlation id in a run's title (``<hotfix id>-deploy-<attempt>-<hex>``)."""
    match = re.search(re.escape(hotfix_id) + r"-deploy-\d+-[0-9a-f]+", _label(run))
    return match.group(0) if match else None


def rollback_evidence(git: GitRepo, gh: GitHubClient, config: Config, hotfix_id: str) -> str:
    """Words describing a rollback of this hotfix that was started, or ''."""
    branch = f"rollback/{hotfix_id}"
    sha = git.ls_remote(f"refs/heads/{branch}")
    if sha:
        return f"the rollback branch {branch} exists on remote {git.remote!r}"
    workflow = config.rollback.workflow
    if workflow:
        marker = f"{hotfix_id}-rollback-"
        for run in _runs(gh, workflow, None):
            if marker in _label(run):
                return f"rollback run {run.get('id')} of {workflow} ({run.get('html_url')})"
    return ""


def _tag(git: GitRepo, config: Config, ev: Evidence, merge_sha: str) -> None:
    prefix = config.tag.prefix
    out = git.run("ls-remote", "--tags", "--", git.remote, network=True).stdout
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        if name.endswith("^{}"):
            peeled[name[:-3]] = sha
        else:
            peeled.setdefault(name, sha)
    ours = sorted(n for n, sha in peeled.items() if sha == merge_sha)
    if not ours:
        return
    preferred = [n for n in ours if config.tag.scheme != "patch" or n.startswith(prefix)]
    name = (preferred or ours)[0]
    ev.tag = name
    git.run(
        "fetch",
        "--quiet",
        "--no-tags",
        "--",
        git.remote,
        f"refs/tags/{name}:refs/tags/{name}",
        check=False,
        network=True,
    )
    message = git.run(
        "for-each-ref", "--format=%(contents)", f"refs/tags/{name}", check=False
    ).stdout
    ev.tag_names_hotfix = ev.hotfix_id in message
    named = " (its message names the hotfix)" if ev.tag_names_hotfix else ""
    ev.seen.append(f"tag {name} on the merge commit {merge_sha[:12]}{named}")


def run_time(run: dict[str, Any]) -> float | None:
    """A run's ``created_at`` as a timestamp."""
    text = str(run.get("created_at") or "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
