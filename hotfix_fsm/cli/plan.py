"""``hotfix start --dry-run``: the plan of a hotfix, without changing anything.

No database row, no fetch, no push: the configuration is read, the remote is asked with
``git ls-remote`` for the production head and the last tag (the rollback target), and the
phases are listed with the commands, workflows and URLs they would use. The fix given is
checked as ``hotfix start`` checks it (the cherry-picks exist and apply, the patch applies),
against the production head when it was fetched, else against the last fetched one; a fix
that would be refused is refused here too (exit 2).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hotfix_fsm.cli.check import last_tag, remote_heads
from hotfix_fsm.config import Config, git_top_level, load_config, locate_config
from hotfix_fsm.core.redact import redact, register_secret
from hotfix_fsm.core.sanitize import sanitize
from hotfix_fsm.errors import InvalidInput, UsageError


def build_plan(
    issue: str,
    description: str,
    *,
    repo: Path,
    config_path: Path | None,
    cherry_pick: list[str],
    patch: Path | None,
    yes: bool,
) -> dict[str, Any]:
    """What ``hotfix start`` would do, without doing any of it."""
    from hotfix_fsm.core import machine
    from hotfix_fsm.core.validate import validate_description, validate_issue
    from hotfix_fsm.phases.git_phases import check_branch_pattern

    repo = repo.expanduser().resolve()
    repo = git_top_level(repo) or repo
    location = locate_config(repo, config_path)
    config = load_config(repo, config_path)
    register_secret(*config.secrets())
    validate_issue(issue, config.issue_pattern)
    validate_description(description)
    if cherry_pick and patch:
        raise UsageError("give either --cherry-pick or --patch, not both")
    if patch is not None and not patch.expanduser().is_file():
        raise InvalidInput(f"patch file {patch} does not exist")
    for sha in cherry_pick:
        if not sha or sha.startswith("-") or len(sha) > 200:
            raise InvalidInput(f"cherry-pick {sha!r} is not a commit reference")
    branch = config.branch_pattern.replace("{issue}", issue).replace(
        "{timestamp}", "YYYYmmdd-HHMMSS"
    )
    check_branch_pattern(config.branch_pattern, issue)
    refs, error = remote_heads(repo, config)
    head = refs.get(f"refs/heads/{config.production_branch}")
    target: dict[str, Any] = {"sha": head, "tag": last_tag(refs, config.tag.prefix, head)}
    if error:
        target["error"] = error
    fix_check = _check_fix(repo, config, head, cherry_pick, patch)
    fix = (
        f"cherry-pick {', '.join(cherry_pick)}"
        if cherry_pick
        else f"apply {patch}"
        if patch
        else "wait for a person to commit the fix"
    )
    gate_cmds = {
        name: getattr(config.gates, name).command or "(detected from the project)"
        for name in machine.GATES
        if getattr(config.gates, name).enabled
    }
    approval = (
        "automatic (--yes)"
        if yes
        else (
            "automatic (deploy.approval = auto)"
            if config.deploy.approval == "auto"
            else "a person runs `hotfix approve <id> deploy`"
        )
    )
    from hotfix_fsm.phases.registry import PlanInputs, Registry

    steps = Registry.default().plan(
        PlanInputs(config=config, branch=branch, fix=fix, approval=approval, gates=gate_cmds)
    )
    return {
        "schema": "hotfix-fsm/plan@1",
        "issue": issue,
        "description": description,
        "repo": str(repo),
        "config": location.describe(),
        "branch": branch,
        "fix_check": fix_check,
        "steps": [{"phase": p, "does": d} for p, d in steps],
        "gates": gate_cmds,
        "workflows": {
            "deploy": config.deploy.workflow,
            "rollback": config.rollback.workflow or f"{config.deploy.workflow} (redeploy)",
        },
        "urls": {"github_api": config.github.api_url, "health": config.verify.url},
        "rollback_target": target,
        "rollback_policy": config.rollback.policy,
    }


def _check_fix(
    repo: Path, config: Config, head: str | None, cherry_pick: list[str], patch: Path | None
) -> str:
    """Refuse the fix as ``hotfix start`` would; what it was checked against."""
    if not cherry_pick and patch is None:
        return ""
    from hotfix_fsm.adapters.git import GitRepo
    from hotfix_fsm.phases.git_phases import check_fix

    remote, production = config.remote, config.production_branch
    with GitRepo(repo, remote=remote, timeout=config.git_timeout) as git:
        fetched = git.resolve_commit(f"refs/remotes/{remote}/{production}")
        base = head if head and git.has_commit(head) else fetched
        if base is None:
            for rev in cherry_pick:
                if git.resolve_commit(rev) is None:
                    raise InvalidInput(
                        f"--cherry-pick {rev!r} is not a commit in {git.work_tree}",
                        hint=f"check the sha; if it was pushed from elsewhere, `git fetch "
                        f"{remote}` first",
                    )
            return (
                f"not checked against production: {remote}/{production} was never fetched "
                "here (`hotfix start` fetches it and checks)"
            )
        if base == head:
            where = f"the production head {base[:12]}"
        else:
            where = (
                f"{remote}/{production} as last fetched ({base[:12]}; the remote is at "
                f"{(head or 'unknown')[:12]}, `hotfix start` fetches it and checks again)"
            )
        check_fix(
            git,
            base,
            cherry_pick=cherry_pick,
            patch=patch.expanduser().resolve() if patch else None,
            where=where,
        )
    return f"applies cleanly onto {where}"


def print_plan(
    issue: str,
    description: str,
    *,
    repo: Path,
    config_path: Path | None,
    cherry_pick: list[str],
    patch: Path | None,
    yes: bool,
    as_json: bool = False,
) -> None:
    plan = build_plan(
        issue,
        description,
        repo=repo,
        config_path=config_path,
        cherry_pick=cherry_pick,
        patch=patch,
        yes=yes,
    )
    if as_json:
        import json

        sys.stdout.write(redact(json.dumps(plan, indent=2, sort_keys=True)) + "\n")
        return
    target = plan["rollback_target"]
    lines = [
        f"Plan for {issue}: {description}  (dry run: nothing is changed)",
        f"  repository: {plan['repo']}",
        f"  configuration: {plan['config']}",
        *([f"  fix: {plan['fix_check']}"] if plan["fix_check"] else []),
        "",
    ]
    lines += [f"  {i:2}. {s['phase']:<15} {s['does']}" for i, s in enumerate(plan["steps"], 1)]
    lines += [
        "",
        f"  workflows: deploy {plan['workflows']['deploy']}, rollback "
        f"{plan['workflows']['rollback']}",
        f"  GitHub API: {plan['urls']['github_api']}",
        f"  health URL: {plan['urls']['health'] or '(not set)'}",
        "  rollback target: "
        + (
            f"{target['sha'][:12]} (current {plan['branch'] and 'production'} head"
            + (f", tag {target['tag']}" if target.get("tag") else ", no tag")
            + ")"
            if target.get("sha")
            else f"unknown ({target.get('error', 'no production branch')})"
        ),
        f"  rollback policy: {plan['rollback_policy']}",
    ]
    sys.stdout.write(sanitize(redact("\n".join(lines)), keep_newlines=True) + "\n")


__all__ = ["build_plan", "print_plan"]
