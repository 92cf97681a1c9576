"""Build a rehearsal sandbox: a bare origin, a work tree with a tiny real application, a config.

``build_sandbox(DIR)`` creates::

    DIR/origin.git     bare origin: main, production, tag v1.0.0, a suggested fix on main
    DIR/work           a clone with a tiny app whose tests, build and audit really run
    DIR/work/hotfix.toml   configuration pointing at the sandbox services (kept out of git)
    DIR/github         state of the rehearsal GitHub server (with the origin's ref log)
    DIR/production     state of the rehearsal production app
    DIR/sandbox.json   ports, URLs, token and the interesting commits

The application has a real bug on ``production`` (an expired token is accepted); ``main``
carries the fix ("Fix token expiry check") so ``hotfix start --cherry-pick <sha>`` works, and a
branch ``experiment/expiry-rewrite`` carries a "fix" whose tests fail, for drills of a failing
gate. Nothing here needs the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hotfix_fsm.sandbox.refhook import install_ref_log

OWNER, NAME = "acme", "shop"
TOKEN_ENV = "HOTFIX_SANDBOX_TOKEN"  # noqa: S105 - the name of a variable, not a token
SANDBOX_FILE = "sandbox.json"
FIX_SUBJECT = "Fix token expiry check"
BROKEN_BRANCH = "experiment/expiry-rewrite"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sandbox Developer",
    "GIT_AUTHOR_EMAIL": "dev@sandbox.invalid",
    "GIT_COMMITTER_NAME": "Sandbox Developer",
    "GIT_COMMITTER_EMAIL": "dev@sandbox.invalid",
}

APP_V1 = '''"""The sandbox shop: a token check and a health report."""

VERSION = "1.0.0"


def token_expired(issued_at: float, ttl: float, now: float) -> bool:
    """True when a token issued at ``issued_at`` and valid for ``ttl`` seconds has expired."""
    return now - issued_at > ttl * 60  # BUG: ttl is in seconds, not minutes


def health() -> dict[str, object]:
    return {"status": "healthy", "version": VERSION}
'''

APP_FIXED = APP_V1.replace(
    "return now - issued_at > ttl * 60  # BUG: ttl is in seconds, not minutes",
    "return now - issued_at >= ttl",
)

APP_BROKEN = APP_V1.replace(
    "return now - issued_at > ttl * 60  # BUG: ttl is in seconds, not minutes",
    "return now > ttl  # rewrite in progress",
)

TESTS = """import unittest

from app import health, token_expired


class CriticalTests(unittest.TestCase):
    def test_fresh_token_is_valid(self) -> None:
        self.assertFalse(token_expired(issued_at=1000.0, ttl=300.0, now=1010.0))

    def test_expired_token_is_refused(self) -> None:
        self.assertTrue(token_expired(issued_at=1000.0, ttl=300.0, now=1400.0))

    def test_health_reports_healthy(self) -> None:
        self.assertEqual(health()["status"], "healthy")


if __name__ == "__main__":
    unittest.main()
"""

BUILD = '''"""Build: package the application into dist/app.tar."""

import pathlib
import tarfile

dist = pathlib.Path("dist")
dist.mkdir(exist_ok=True)
with tarfile.open(dist / "app.tar", "w") as tar:
    tar.add("app.py")
print("built", dist / "app.tar")
'''

AUDIT = '''"""Audit: refuse a dependency on the denylist (a stand-in for npm audit / pip-audit)."""

import pathlib
import sys

DENYLIST = {"insecure-crypto==0.1", "leftpad==0.0.1"}
pins = [line.strip() for line in pathlib.Path("requirements.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")]
bad = sorted(p for p in pins if p in DENYLIST)
if bad:
    print("vulnerable dependencies:", ", ".join(bad))
    sys.exit(1)
print(f"audit: {len(pins)} pinned dependencies, none on the denylist")
'''

LOCK = "# pinned dependencies of the sandbox shop\nsafe-json==2.1.0\nhttp-kit==1.4.2\n"


@dataclass
class SandboxInfo:
    """What ``sandbox.json`` holds."""

    root: str
    origin: str
    work: str
    config: str
    token: str
    github_port: int
    production_port: int
    fix_sha: str
    broken_fix_sha: str
    production_sha: str
    release_tag: str = "v1.0.0"
    repository: str = f"{OWNER}/{NAME}"
    github_url: str = ""
    production_url: str = ""

    @property
    def health_url(self) -> str:
        return f"{self.production_url}/health"

    def save(self) -> None:
        path = Path(self.root) / SANDBOX_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o600)  # the sandbox token is not a real secret, but is treated as one
        os.replace(tmp, path)


def load_info(root: str | os.PathLike[str]) -> SandboxInfo:
    """Read ``DIR/sandbox.json``; raises ``ConfigError`` when DIR is not a sandbox."""
    from hotfix_fsm.errors import ConfigError

    path = Path(root) / SANDBOX_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{root} is not a sandbox (no {SANDBOX_FILE})",
            hint=f"create one with `hotfix sandbox init {root}`",
        ) from None
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON: {exc}",
            hint="rebuild the sandbox with `hotfix sandbox init`",
        ) from None
    known = set(SandboxInfo.__dataclass_fields__)
    return SandboxInfo(**{k: v for k, v in data.items() if k in known})


def git(cwd: Path, *args: str) -> str:
    """Run git with a fixed identity and no user/system configuration; return stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_IDENTITY, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _commit(work: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(work, "add", "--", *files)
    git(work, "commit", "-q", "-m", message)
    return git(work, "rev-parse", "HEAD")


def config_text(info: SandboxInfo) -> str:
    """The sandbox's hotfix.toml (fast polls and a few-seconds monitoring window)."""
    py = json.dumps(sys.executable)
    return f'''# hotfix.toml for the rehearsal sandbox (written by `hotfix sandbox init`/`serve`).
# It points at the local rehearsal GitHub API and production app of {info.root}.

remote = "origin"
production_branch = "production"
main_branch = "main"
time_target_minutes = 30

[gates.tests]
command = [{py}, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-q"]
timeout = 120

[gates.build]
command = [{py}, "build.py"]
artifact = "dist/app.tar"
timeout = 120

[gates.audit]
command = [{py}, "audit.py"]
timeout = 120

[github]
api_url = "{info.github_url}"
repository = "{info.repository}"
# The sandbox token: {TOKEN_ENV} wins when set, else the literal below (not a real secret,
# but handled as one: it never reaches a log, the journal or a report).
token_env = "{TOKEN_ENV}"
token = "{info.token}"
request_timeout = 5
max_backoff = 2

[ci]
poll_interval = 0.2
timeout = 60
no_checks_grace = 5

[deploy]
workflow = "deploy-production.yml"
approval = "manual"
poll_interval = 0.2
timeout = 60

[verify]
url = "{info.health_url}"
interval = 0.2
timeout = 5
request_timeout = 3

[monitor]
duration = 3
interval = 0.5

[rollback]
policy = "automatic"
workflow = "rollback.yml"

[alerts]
# PagerDuty's Events API, played by the sandbox's production app: drills show the incidents
# in `hotfix sandbox effects`. The routing key is the sandbox's own (handled as a secret).
pagerduty_url = "{info.production_url}/v2/enqueue"
pagerduty_routing_key = "{pagerduty_key(info)}"
'''


def pagerduty_key(info: SandboxInfo) -> str:
    """The sandbox's PagerDuty routing key (32 characters, derived from its token)."""
    return hashlib.sha256(f"pagerduty:{info.token}".encode()).hexdigest()[:32]


def write_config(info: SandboxInfo) -> Path:
    """(Re)write ``work/hotfix.toml`` for the current ports."""
    info.github_url = info.github_url or f"http://127.0.0.1:{info.github_port}"
    info.production_url = info.production_url or f"http://127.0.0.1:{info.production_port}"
    path = Path(info.config)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config_text(info), encoding="utf-8")
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


# The keys of ``hotfix.toml`` that ``serve`` owns: what changes with the ports, and the token
# the rehearsal GitHub accepts. Every other key, and every comment, is the user's.
OWNED_KEYS: tuple[tuple[str, str], ...] = (
    ("github", "api_url"),
    ("github", "token"),
    ("verify", "url"),
    ("alerts", "pagerduty_url"),
    ("alerts", "pagerduty_routing_key"),
)
_HEADER = re.compile(r"^\s*\[(?!\[)\s*([^\]]*?)\s*\]\s*(?:#.*)?$")


def owned_values(info: SandboxInfo) -> dict[tuple[str, str], str]:
    """The values ``serve`` must write for the running servers."""
    info.github_url = info.github_url or f"http://127.0.0.1:{info.github_port}"
    info.production_url = info.production_url or f"http://127.0.0.1:{info.production_port}"
    values = {
        ("github", "api_url"): info.github_url,
        ("github", "token"): info.token,
        ("verify", "url"): info.health_url,
        ("alerts", "pagerduty_url"): f"{info.production_url}/v2/enqueue",
        ("alerts", "pagerduty_routing_key"): pagerduty_key(info),
    }
    return {key: values[key] for key in OWNED_KEYS}


def update_config(info: SandboxInfo) -> list[str]:
    """Set the keys ``serve`` owns (``OWNED_KEYS``) in ``work/hotfix.toml`` and keep the rest
    of the file — the user's keys, comments and layout — as it is; write the whole file only
    when there is none. Returns what was done, for the person, as lines of text.

    The edit is line by line (``tomllib`` cannot write) and is checked by parsing the result:
    it must hold the new values and every other value unchanged. A file that is not valid
    TOML, or that this careful edit cannot change safely (a key written as a dotted key or in
    an inline table, a multi-line string), is left untouched and the lines say what to set.
    """
    wanted = owned_values(info)
    path = Path(info.config)
    settings = ", ".join(f"{t}.{k} = {json.dumps(v)}" for (t, k), v in wanted.items())
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        write_config(info)
        return [f"wrote {path}"]
    except (OSError, UnicodeError) as exc:
        return [f"{path} could not be read ({exc}); it was left as it is: set {settings}"]
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"{path} is not valid TOML ({exc}); it was left as it is: set {settings}"]
    changed = [key for key, value in wanted.items() if _lookup(before, key) != value]
    if not changed:
        return [f"{path} is up to date"]
    edited = _set_keys(text, {key: wanted[key] for key in changed})
    if edited is None or not _only_owned_changed(before, edited, wanted):
        return [
            f"{path} could not be updated safely; it was left as it is: set {settings}",
        ]
    mode = path.stat().st_mode & 0o777
    tmp = path.with_suffix(".tmp")
    tmp.write_text(edited, encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)
    names = ", ".join(f"{t}.{k}" for t, k in changed)
    return [f"set {names} in {path} (the rest of the file is kept as it was)"]


def _lookup(data: dict[str, Any], key: tuple[str, str]) -> Any:
    table = data.get(key[0])
    return table.get(key[1]) if isinstance(table, dict) else None


def _only_owned_changed(
    before: dict[str, Any], text: str, wanted: dict[tuple[str, str], str]
) -> bool:
    try:
        after = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return False
    if any(_lookup(after, key) != value for key, value in wanted.items()):
        return False

    def without_owned(data: dict[str, Any]) -> dict[str, Any]:
        out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
        for table, key in wanted:
            if isinstance(out.get(table), dict):
                out[table].pop(key, None)
                if not out[table] and table not in before:
                    del out[table]
        return out

    return without_owned(before) == without_owned(after)


def _table_of(line: str) -> str | None:
    """The table a ``[table]`` header line opens (None for any other line)."""
    match = _HEADER.match(line)
    return match.group(1) if match else None


def _set_keys(text: str, values: dict[tuple[str, str], str]) -> str | None:
    """``text`` with each ``table.key`` set to its value by editing lines, or None when a
    key is written in a form this edit does not change (the caller then leaves the file)."""
    lines = text.splitlines(keepends=True)
    for (table, key), value in values.items():
        rendered = json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML string
        headers = {i: _table_of(line) for i, line in enumerate(lines) if _table_of(line)}
        start = next((i for i, name in headers.items() if name == table), None)
        if start is None:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += ["\n", f"[{table}]\n", f"{key} = {rendered}\n"]
            continue
        end = next((i for i in headers if i > start), len(lines))
        assign = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
        found = [i for i in range(start + 1, end) if assign.match(lines[i])]
        if not found:
            newline = "\r\n" if lines[start].endswith("\r\n") else "\n"
            lines.insert(start + 1, f"{key} = {rendered}{newline}")
            continue
        line = lines[found[0]]
        body = line.rstrip("\r\n")
        match = re.match(r"^(\s*[^=]+=\s*)(\"(?:[^\"\\]|\\.)*\"|'[^']*')(\s*(?:#.*)?)$", body)
        if match is None or len(found) > 1:
            return None
        lines[found[0]] = match.group(1) + rendered + match.group(3) + line[len(body) :]
    return "".join(lines)


def build_sandbox(root: str | os.PathLike[str], *, force: bool = False) -> SandboxInfo:
    """Create the sandbox in ``root`` (which must be empty or absent unless ``force``)."""
    from hotfix_fsm.errors import UsageError

    base = Path(root).expanduser().resolve()
    if base.exists() and any(base.iterdir()) and not force:
        raise UsageError(
            f"{base} is not empty", hint="choose a new directory, or pass --force to build into it"
        )
    base.mkdir(parents=True, exist_ok=True)
    origin, work = base / "origin.git", base / "work"
    for path in (origin, work):
        if path.exists():
            raise UsageError(f"{path} already exists", hint="choose a new directory")
    git(base, "init", "-q", "--bare", "-b", "main", str(origin))
    git(base, "init", "-q", "-b", "main", str(work))
    git(work, "config", "user.name", "Sandbox Engineer")
    git(work, "config", "user.email", "oncall@sandbox.invalid")
    git(work, "remote", "add", "origin", str(origin))
    (work / ".git" / "info").mkdir(parents=True, exist_ok=True)
    (work / ".git" / "info" / "exclude").write_text("hotfix.toml\n*.tmp\n", encoding="utf-8")
    production = _commit(
        work,
        {
            "app.py": APP_V1,
            "tests/__init__.py": "",
            "tests/test_app.py": TESTS,
            "build.py": BUILD,
            "audit.py": AUDIT,
            "requirements.lock": LOCK,
            ".gitignore": "dist/\n__pycache__/\n",
            "README.md": "# shop\n\nThe rehearsal sandbox's tiny application.\n",
        },
        "Release 1.0.0",
    )
    git(work, "tag", "-a", "v1.0.0", "-m", "Release 1.0.0")
    git(work, "branch", "production")
    git(work, "checkout", "-q", "-b", BROKEN_BRANCH)
    broken = _commit(work, {"app.py": APP_BROKEN}, "Rewrite token expiry (work in progress)")
    git(work, "checkout", "-q", "main")
    fix = _commit(work, {"app.py": APP_FIXED}, FIX_SUBJECT)
    git(work, "push", "-q", "origin", "main", "production", "v1.0.0", BROKEN_BRANCH)
    git(work, "fetch", "-q", "origin")
    git(work, "branch", "-q", "--set-upstream-to=origin/main", "main")
    # Only main stays local: production is read from the remote, as on a real laptop whose
    # production branch would go stale between incidents.
    git(work, "branch", "-q", "-D", "production", BROKEN_BRANCH)
    (base / "github").mkdir()
    (base / "production").mkdir()
    # From here on every ref change in the origin (pushes and API merges alike) is logged.
    install_ref_log(origin, base / "github" / "ref-log.jsonl")
    info = SandboxInfo(
        root=str(base),
        origin=str(origin),
        work=str(work),
        config=str(work / "hotfix.toml"),
        token="sandbox-" + secrets.token_hex(12),
        github_port=free_port(),
        production_port=free_port(),
        fix_sha=fix,
        broken_fix_sha=broken,
        production_sha=production,
    )
    write_config(info)
    info.save()
    return info


__all__ = [
    "BROKEN_BRANCH",
    "FIX_SUBJECT",
    "OWNED_KEYS",
    "SANDBOX_FILE",
    "TOKEN_ENV",
    "SandboxInfo",
    "build_sandbox",
    "config_text",
    "free_port",
    "load_info",
    "owned_values",
    "update_config",
    "write_config",
]
