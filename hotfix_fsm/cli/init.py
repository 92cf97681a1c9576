"""The commented ``hotfix.toml`` that ``hotfix init`` writes, with gates detected per project."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from hotfix_fsm.cli.check import git
from hotfix_fsm.config import CONFIG_FILE, git_top_level, load_config, locate_config
from hotfix_fsm.errors import HotfixError, UsageError


def detect_gates(repo: Path) -> tuple[str, dict[str, list[str]], str]:
    """(kind, gate argv per gate, build artifact) for an npm or Python project."""
    package = repo / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(package.read_text(encoding="utf-8")).get("scripts", {})
        except (ValueError, OSError, AttributeError):
            scripts = {}
        scripts = scripts if isinstance(scripts, dict) else {}
        test = ["npm", "run", "test:critical"] if "test:critical" in scripts else ["npm", "test"]
        build = ["npm", "run", "build"] if "build" in scripts else []
        return (
            "npm",
            {"tests": test, "build": build, "audit": ["npm", "audit", "--audit-level=high"]},
            "dist",
        )
    if any(
        (repo / f).is_file()
        for f in ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt")
    ):
        audit = (
            ["pip-audit", "-r", "requirements.txt"]
            if (repo / "requirements.txt").is_file()
            else ["pip-audit"]
        )
        return (
            "python",
            {
                "tests": ["python", "-m", "pytest", "-q"],
                "build": ["python", "-m", "build"],
                "audit": audit,
            },
            "dist",
        )
    return "unknown", {"tests": [], "build": [], "audit": []}, ""


def _argv(cmd: list[str]) -> str:
    return json.dumps(cmd)


def init_text(repo: Path) -> str:
    """A commented configuration for ``repo`` (defaults spelled out where people look)."""
    from hotfix_fsm.cli.check import _GITHUB_REMOTE

    kind, gates, artifact = detect_gates(repo)
    code, out, _ = git(repo, "remote", "get-url", "origin", timeout=10)
    match = _GITHUB_REMOTE.search(out.strip()) if code == 0 else None
    repository = match.group("repo") if match else ""
    detected = {
        "npm": "an npm project (package.json)",
        "python": "a Python project",
        "unknown": "no known project type: fill in the gate commands",
    }[kind]
    return f'''# hotfix.toml — configuration of `hotfix` for this repository.
# Written by `hotfix init` for {detected}. Every key is optional; the values shown
# are the defaults unless noted. Check readiness with `hotfix check`.

remote = "origin"                 # the git remote that holds production
production_branch = "production"  # hotfix branches are cut from here; the PR targets it
main_branch = "main"              # where the fix is back-merged afterwards
branch_pattern = "hotfix/{{issue}}-{{timestamp}}"
severity = "critical"
time_target_minutes = 30          # alert when production is not verified within this
retry_limit = 5                   # transient failures of one phase before it fails

# Gates run in parallel on the fix commit; each command is an argv list (never a shell line).
[gates]
parallel = true

[gates.tests]
command = {_argv(gates["tests"])}
timeout = 900

[gates.build]
command = {_argv(gates["build"])}
artifact = "{artifact}"           # must exist and be non-empty after the build ("" = no check)
timeout = 900

[gates.audit]
command = {_argv(gates["audit"])}
timeout = 900

[github]
api_url = "https://api.github.com"
repository = "{repository}"       # owner/name; derived from the remote URL when empty
token_env = "GITHUB_TOKEN"        # the variable holding a token with repo + workflow scopes
labels = ["hotfix", "urgent"]

[ci]
enabled = true
required_checks = []              # empty = every check reported on the commit
timeout = 1800
poll_interval = 10

[deploy]
workflow = "deploy-production.yml"  # dispatched with inputs correlation_id, hotfix_id, sha
approval = "manual"               # manual: `hotfix approve <id> deploy`; auto: no human gate
timeout = 1800
poll_interval = 10

[verify]
url = ""                          # the production health endpoint, e.g. https://api.example.com/health
expected_status = 200
json_field = "status"
json_value = "healthy"
timeout = 300
interval = 5

[monitor]
enabled = true
duration = 300                    # seconds of post-deploy monitoring
interval = 10

[rollback]
policy = "automatic"              # automatic | ask | never
workflow = "rollback.yml"         # dispatched with inputs correlation_id, hotfix_id, target_sha

[alerts]
slack_webhook_env = ""            # name of the variable holding a Slack webhook URL
webhook_url_env = ""              # name of the variable holding a generic webhook URL
pagerduty_routing_key_env = ""    # name of the variable holding a PagerDuty routing key

[merge]
method = "squash"                 # squash | merge | rebase
auto = false                      # true: GitHub's auto-merge merges the PR once its rules are met

[tag]
enabled = true
scheme = "patch"                  # patch: the next vX.Y.Z; or a template like "hotfix-{{issue}}"
prefix = "v"

[backport]
enabled = true

[cleanup]
delete_remote_branch = true
delete_local_branch = true
'''


__all__ = ["detect_gates", "init_text"]


def write_init(repo: Path, *, force: bool) -> Path:
    """Write ``hotfix.toml`` at the git top level of ``repo`` (where every command looks
    for it, from any directory of the work tree) and say where and why."""
    repo = repo.expanduser().resolve()
    if not repo.is_dir():
        raise UsageError(f"{repo} is not a directory")
    top = git_top_level(repo)
    repo = top or repo
    path = repo / CONFIG_FILE
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to overwrite it")
    text = init_text(repo)
    tmp = path.with_name(".hotfix.toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        load_config(repo, tmp)
    except HotfixError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    location = locate_config(repo)
    if top is None:
        where = "not in a git work tree: hotfix looks for it in the directory it is given"
    else:
        where = (
            "at the git top level, where hotfix looks for it from any directory of the work "
            f"tree; {location.git_state or 'untracked'}: commit it on any branch, or keep it "
            "untracked (it never counts as a change of the work tree); its values are pinned "
            "with each hotfix when it starts"
        )
    sys.stdout.write(f"wrote {path}\n  ({where})\n  next: review it, then `hotfix check`\n")
    return path
