"""``hotfix check``, ``hotfix start --dry-run`` and ``hotfix init``: look, plan, write config.

``check`` and the dry-run change nothing: no database row, no fetch, no push. They read the
configuration, ask the remote with ``git ls-remote``, and send read-only GET requests to the
GitHub API and the health URL. Each finding says what to do about it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hotfix_fsm.config import Config, ConfigLocation, git_top_level, load_config, locate_config
from hotfix_fsm.core.redact import looks_like_secret, redact, register_secret
from hotfix_fsm.core.sanitize import sanitize
from hotfix_fsm.errors import ConfigError, ExitCode

OK, WARN, FAIL = "ok", "warn", "fail"
_GITHUB_REMOTE = re.compile(r"github\.com[:/](?P<repo>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")
_SEMVER = re.compile(r"^(?P<prefix>.*?)(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)$")


@dataclass
class Finding:
    """One readiness check: what was looked at, how it went, what to do."""

    check: str
    status: str  # ok | warn | fail
    detail: str
    hint: str = ""


def git(repo: Path, *args: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """Run a read-only git command (argv, no shell, no prompts); (code, stdout, stderr)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        return 127, "", "git is not installed"
    except subprocess.TimeoutExpired:
        return 124, "", f"git {args[0]} timed out after {timeout:.0f}s"
    return proc.returncode, proc.stdout, proc.stderr.strip()


def repository_of(repo: Path, config: Config) -> str:
    """``owner/name`` from the configuration, else from the remote URL ('' if unknown)."""
    if config.github.repository:
        return config.github.repository
    code, out, _ = git(repo, "remote", "get-url", config.remote, timeout=10)
    match = _GITHUB_REMOTE.search(out.strip()) if code == 0 else None
    return match.group("repo") if match else ""


def _env_name(name: str) -> str:
    """``$NAME`` for a message, unless what should be a variable name looks like a secret."""
    return "an environment variable" if looks_like_secret(name) else f"${name}"


def token_of(config: Config) -> tuple[str, str]:
    """The GitHub token and where it came from ('' when there is none)."""
    if config.github.token_env and os.environ.get(config.github.token_env):
        return os.environ[config.github.token_env], _env_name(config.github.token_env)
    if config.github.token:
        return config.github.token, "github.token in the configuration"
    for env in ("GITHUB_TOKEN", "GH_TOKEN"):
        if os.environ.get(env):
            return os.environ[env], f"${env}"
    return "", ""


def remote_heads(repo: Path, config: Config) -> tuple[dict[str, str], str]:
    """``refs/...`` → sha from ``git ls-remote`` (heads and tags), or ({}, error)."""
    code, out, err = git(
        repo, "ls-remote", "--heads", "--tags", config.remote, timeout=config.git_timeout
    )
    if code != 0:
        return {}, err or f"git ls-remote exited {code}"
    refs: dict[str, str] = {}
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref.endswith("^{}"):
            refs[ref[:-3]] = sha  # the peeled commit of an annotated tag wins
        else:
            refs.setdefault(ref, sha)
    return refs, ""


def last_tag(refs: dict[str, str], prefix: str, head: str | None) -> str | None:
    """The tag on the production head, else the highest ``<prefix>X.Y.Z`` tag."""
    tags = {r.removeprefix("refs/tags/"): s for r, s in refs.items() if r.startswith("refs/tags/")}
    on_head = sorted(t for t, s in tags.items() if head and s == head)
    if on_head:
        return on_head[-1]
    versions = []
    for tag in tags:
        m = _SEMVER.match(tag)
        if m and m.group("prefix") == prefix:
            versions.append(((int(m["major"]), int(m["minor"]), int(m["patch"])), tag))
    return max(versions)[1] if versions else None


# -- check ----------------------------------------------------------------------------------


def run_checks(repo: Path, config_path: Path | None = None) -> list[Finding]:
    """Every readiness finding for ``repo``; changes nothing."""
    findings: list[Finding] = []
    repo = repo.expanduser().resolve()
    repo = git_top_level(repo) or repo
    try:
        location = locate_config(repo, config_path)
        config = load_config(repo, config_path)
    except ConfigError as exc:
        return [Finding("configuration", FAIL, exc.message, exc.hint or "fix the key named")]
    register_secret(*config.secrets())
    findings.append(configuration_finding(location))
    findings += _check_git(repo, config)
    token, source = token_of(config)
    name = repository_of(repo, config)
    if not name:
        findings.append(
            Finding(
                "github repository",
                FAIL,
                "cannot tell the GitHub repository",
                'set github.repository = "owner/name"',
            )
        )
    if not token:
        findings.append(
            Finding(
                "github token",
                FAIL,
                "no GitHub token found",
                f"export a token in {_env_name(config.github.token_env or 'GITHUB_TOKEN')} "
                "(set github.token_env to its name)",
            )
        )
    else:
        findings.append(Finding("github token", OK, f"present (from {source})"))
    if token and name:
        findings += _check_github(config, token, name)
    findings.append(_check_health(config))
    return findings


def configuration_finding(location: ConfigLocation) -> Finding:
    """Where the configuration lives and why; the defaults are a warning."""
    if location.path is None:
        return Finding(
            "configuration",
            WARN,
            f"defaults: {location.why}",
            "write one with `hotfix init` (it goes to the git top level)",
        )
    detail = f"{location.describe()}: valid"
    if location.git_state in ("untracked", "ignored by git"):
        detail += "; it never counts as a change of the work tree"
    return Finding("configuration", OK, detail)


def _check_git(repo: Path, config: Config) -> list[Finding]:
    code, _, err = git(repo, "rev-parse", "--show-toplevel", timeout=10)
    if code != 0:
        return [
            Finding(
                "git repository",
                FAIL,
                f"{repo} is not a git work tree ({err})",
                "run hotfix in the repository, or pass --repo",
            )
        ]
    refs, error = remote_heads(repo, config)
    if error:
        return [
            Finding(
                "git remote",
                FAIL,
                f"remote {config.remote!r} is unreachable: {error}",
                "check the remote URL, network and git credentials",
            )
        ]
    out = [Finding("git remote", OK, f"remote {config.remote!r} answers")]
    for branch, what in (
        (config.production_branch, "production branch"),
        (config.main_branch, "main branch"),
    ):
        sha = refs.get(f"refs/heads/{branch}")
        if sha:
            out.append(Finding(what, OK, f"{branch} at {sha[:12]}"))
        else:
            out.append(
                Finding(
                    what,
                    FAIL,
                    f"{branch!r} does not exist on {config.remote}",
                    f"set {'production_branch' if 'prod' in what else 'main_branch'}"
                    " to the branch that holds it",
                )
            )
    return out


def _check_github(config: Config, token: str, name: str) -> list[Finding]:
    import requests

    api = config.github.api_url.rstrip("/")
    headers = {
        "Authorization": f"token {token}",
        "Accept": "application/vnd.github+json",
        "User-Agent": "hotfix-fsm-check",
    }
    timeout = config.github.request_timeout
    out: list[Finding] = []
    with requests.Session() as http:
        try:
            resp = http.get(f"{api}/repos/{name}", headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            return [
                Finding(
                    "github api",
                    FAIL,
                    f"{api} is unreachable: {_why(exc)}",
                    "check github.api_url and the network",
                )
            ]
        if resp.status_code in (401, 403):
            return [
                Finding(
                    "github token",
                    FAIL,
                    f"the token was refused ({resp.status_code})",
                    "create a new token with the repo and workflow scopes",
                )
            ]
        if resp.status_code == 404:
            return [
                Finding(
                    "github repository",
                    FAIL,
                    f"{name} is not visible with this token",
                    "check github.repository and the token's access",
                )
            ]
        out.append(Finding("github repository", OK, f"{name} reachable"))
        if config.merge.auto:
            out.append(_auto_merge_finding(resp))
        scopes = resp.headers.get("X-OAuth-Scopes")
        if scopes is None:
            out.append(
                Finding(
                    "token scopes",
                    WARN,
                    "the token's scopes cannot be read (fine-grained token?)",
                    "make sure it may write contents, pull requests and actions",
                )
            )
        else:
            have = {s.strip() for s in scopes.split(",") if s.strip()}
            missing = [s for s in ("repo", "workflow") if s not in have]
            out.append(
                Finding(
                    "token scopes",
                    FAIL if missing else OK,
                    f"scopes: {', '.join(sorted(have)) or 'none'}",
                    f"add the {' and '.join(missing)} scope(s)" if missing else "",
                )
            )
        workflows = [("deploy workflow", config.deploy.workflow)]
        if config.rollback.workflow:
            workflows.append(("rollback workflow", config.rollback.workflow))
        for what, file in workflows:
            try:
                r = http.get(
                    f"{api}/repos/{name}/actions/workflows/{file}", headers=headers, timeout=timeout
                )
            except requests.RequestException as exc:
                out.append(Finding(what, FAIL, f"cannot ask for {file}: {_why(exc)}"))
                continue
            if r.status_code == 200:
                out.append(Finding(what, OK, f"{file} exists ({r.json().get('state', '?')})"))
            else:
                out.append(
                    Finding(
                        what,
                        FAIL,
                        f"{file} not found ({r.status_code})",
                        f"add .github/workflows/{file} (see examples/workflows/) "
                        "with a workflow_dispatch trigger",
                    )
                )
    return out


def _auto_merge_finding(resp: Any) -> Finding:
    """``merge.auto = true`` needs the repository to allow auto-merge."""
    try:
        allowed = resp.json().get("allow_auto_merge")
    except (ValueError, AttributeError):
        allowed = None
    if allowed is True:
        return Finding("auto-merge", OK, "merge.auto = true and the repository allows it")
    if allowed is False:
        return Finding(
            "auto-merge",
            FAIL,
            "merge.auto = true, but the repository does not allow auto-merge",
            "turn on Settings → General → Allow auto-merge, or set merge.auto = false",
        )
    return Finding(
        "auto-merge",
        WARN,
        "merge.auto = true; whether the repository allows auto-merge cannot be read",
        "make sure Settings → General → Allow auto-merge is on",
    )


def _why(exc: Exception) -> str:
    """A short reason for a failed request (requests' own text is a paragraph)."""
    import requests

    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return redact(str(exc))[:200]  # mask first: a cut must not split a secret


def _check_health(config: Config) -> Finding:
    url = config.verify.url
    if not url:
        return Finding(
            "health url",
            FAIL,
            "verify.url is not set",
            "set verify.url to the production health endpoint",
        )
    import requests

    try:
        with requests.Session() as http:
            resp = http.get(url, timeout=config.verify.request_timeout)
    except requests.RequestException as exc:
        return Finding(
            "health url",
            FAIL,
            f"{url} does not answer: {_why(exc)}",
            "check verify.url and that production is reachable from here",
        )
    if resp.status_code != config.verify.expected_status:
        return Finding(
            "health url",
            WARN,
            f"{url} answered {resp.status_code}, expected {config.verify.expected_status}",
            "production looks unhealthy now; verify would not pass",
        )
    return Finding("health url", OK, f"{url} answered {resp.status_code}")


def print_check(repo: Path, *, config_path: Path | None, as_json: bool) -> int:
    """Print the findings; the exit code is 0 when nothing failed, else 1 (2: bad config)."""
    findings = run_checks(repo, config_path)
    failed = [f for f in findings if f.status == FAIL]
    if as_json:
        doc = {
            "schema": "hotfix-fsm/check@1",
            "ok": not failed,
            "findings": [asdict(f) for f in findings],
        }
        sys.stdout.write(redact(json.dumps(doc, indent=2, sort_keys=True)) + "\n")
    else:
        marks = {OK: "✓", WARN: "!", FAIL: "✗"}
        for f in findings:
            line = f"{marks[f.status]} {f.check}: {f.detail}"
            if f.hint and f.status != OK:
                line += f"\n    what to do: {f.hint}"
            sys.stdout.write(sanitize(redact(line), keep_newlines=True) + "\n")
        sys.stdout.write("ready\n" if not failed else f"{len(failed)} problem(s) to fix\n")
    if failed and failed[0].check == "configuration":
        return int(ExitCode.USAGE)
    return int(ExitCode.FAILED if failed else ExitCode.OK)


__all__ = [
    "Finding",
    "configuration_finding",
    "git",
    "last_tag",
    "print_check",
    "remote_heads",
    "repository_of",
    "run_checks",
    "token_of",
]
