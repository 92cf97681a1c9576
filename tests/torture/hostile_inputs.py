"""The hostile-input corpus: CLI arguments, configuration values and server responses.

Placeholders, filled in by the tests: ``{canary}`` (a path that must never be created),
``{work}`` (the sandbox work tree), ``{tmp}`` (a scratch directory), ``{fix}`` (the fix
commit), ``{file}`` (a plain text file), ``{badutf8}`` (a file of invalid UTF-8),
``{patch_escape}`` (a patch writing outside the repository) and ``{patch_binary}`` (random
bytes).

Expectations: ``refused`` — exit 2 with a message; ``failed`` — exit 1 (the hotfix failed
clearly); ``handled`` — any documented exit code (0-4). Every case: no traceback, no
"unexpected error", the canary never appears, and the listed words are in the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CANARY_CMD = "touch {canary}"
SHELLISH = (
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "| touch {canary}",
    "&& touch {canary}",
    "\n touch {canary}",
)


@dataclass(frozen=True)
class ArgCase:
    """``hotfix ARGV`` run in a scratch directory against the paused sandbox's store."""

    name: str
    argv: tuple[str, ...]
    expect: str = "refused"
    words: tuple[str, ...] = ()
    secret: str | None = None  # must not be printed
    own_sandbox: bool = False  # it changes the work tree: give it a sandbox of its own
    bug: str = ""  # a reported bug: the case runs on its own as a strict xfail


def _start(issue: str, description: str = "Fix token expiry check", *extra: str) -> tuple[str, ...]:
    return (
        "start",
        issue,
        description,
        "--repo",
        "{work}",
        "--cherry-pick",
        "{fix}",
        "--yes",
        *extra,
    )


ISSUE_IDS = [
    "$(touch {canary})",
    "`touch {canary}`",
    "INC-1;touch {canary}",
    "INC-1|touch {canary}",
    "INC-1&&touch {canary}",
    "-rf",
    "../../etc/passwd",
    "INC-1\nINC-2",
    "INC\x1b[31m-1",
    "A" * 100_000,
    "INC-1.lock",
    "INC@{1}",
    "\u202eINC-1",
    "INC-1 ",
    "..",
    "INC~1^2:3",
]

ARG_CASES: list[ArgCase] = [
    *(ArgCase(f"issue:{i}", _start(issue), words=("issue",)) for i, issue in enumerate(ISSUE_IDS)),
    ArgCase("issue:empty", _start(""), words=("issue",)),
    ArgCase("issue:option-like", ("start", "--repo=/etc", "Fix it")),
    ArgCase("description:empty", _start("INC-1", ""), words=("description",)),
    ArgCase("description:blank", _start("INC-1", " \n\t "), words=("description",)),
    ArgCase("description:huge", _start("INC-1", "x" * 50_000), words=("too long",)),
    ArgCase(
        "description:shell-dry-run",
        _start("INC-1", " ".join(SHELLISH), "--dry-run"),
        expect="handled",
    ),
    ArgCase(
        "description:control-dry-run",
        _start("INC-1", "Fix\n\nSigned-off-by: Mallory <m@evil>\x1b]0;owned\x07\r", "--dry-run"),
        expect="handled",
    ),
    ArgCase("ref:shell", ("status", "$(touch {canary})"), words=("no hotfix",)),
    ArgCase("ref:traversal", ("log", "../../../etc/passwd"), words=("no hotfix",)),
    ArgCase("ref:sql", ("resume", "'; DROP TABLE hotfixes; --"), words=("no hotfix",)),
    ArgCase("ref:like-percent", ("status", "%"), words=("no hotfix",)),
    ArgCase("ref:like-underscore", ("status", "_"), words=("no hotfix",)),
    ArgCase("ref:glob", ("approve", "*", "deploy"), words=("no hotfix",)),
    ArgCase("ref:option-like", ("abort", "--reason=x")),
    ArgCase("ref:dash", ("report", "-")),
    ArgCase("report:unwritable-output", ("report", "INC-7", "--output", "/proc/no/such/file.md")),
    ArgCase("gate:shell", ("approve", "INC-7", "deploy;touch {canary}"), words=("gate",)),
    ArgCase("gate:newline", ("approve", "INC-7", "deploy\n"), words=("gate",)),
    ArgCase("gate:case", ("approve", "INC-7", "DEPLOY"), words=("gate",)),
    ArgCase("gate:option", ("approve", "INC-7", "--yes")),
    ArgCase("repo:missing", _start("INC-1", "Fix", "--repo", "/nonexistent/repo")),
    ArgCase("repo:not-git", _start("INC-1", "Fix", "--repo", "/etc")),
    ArgCase("repo:file", _start("INC-1", "Fix", "--repo", "{file}")),
    ArgCase("repo:shell", _start("INC-1", "Fix", "--repo", "$(touch {canary})")),
    ArgCase(
        "patch:missing",
        ("start", "INC-1", "Fix", "--repo", "{work}", "--patch", "/nonexistent.patch"),
        words=("patch",),
    ),
    ArgCase("patch:directory", ("start", "INC-1", "Fix", "--repo", "{work}", "--patch", "{tmp}")),
    ArgCase(
        "patch:and-cherry-pick",
        (
            "start",
            "INC-1",
            "Fix",
            "--repo",
            "{work}",
            "--patch",
            "{file}",
            "--cherry-pick",
            "{fix}",
        ),
    ),
    ArgCase(  # git refuses the path; the hotfix waits for a person to apply the fix
        "patch:escapes-repo",
        ("start", "INC-1", "Fix", "--repo", "{work}", "--patch", "{patch_escape}", "--yes"),
        expect="handled",
        words=("does not apply",),
        own_sandbox=True,
    ),
    ArgCase(
        "patch:binary",
        ("start", "INC-1", "Fix", "--repo", "{work}", "--patch", "{patch_binary}", "--yes"),
        expect="handled",
        words=("does not apply",),
        own_sandbox=True,
    ),
    ArgCase(
        "cherry-pick:option",
        ("start", "INC-1", "Fix", "--repo", "{work}", "--cherry-pick=--exec=touch {canary}"),
    ),
    ArgCase(
        "cherry-pick:shell",
        (
            "start",
            "INC-1",
            "Fix",
            "--repo",
            "{work}",
            "--cherry-pick",
            "$(touch {canary})",
            "--yes",
        ),
        expect="handled",
        own_sandbox=True,
    ),
    ArgCase(
        "cherry-pick:missing-commit",
        ("start", "INC-1", "Fix", "--repo", "{work}", "--cherry-pick", "HEAD~100000", "--yes"),
        expect="handled",
        own_sandbox=True,
    ),
    ArgCase("config:missing", ("--config", "/nonexistent.toml", *_start("INC-1"))),
    ArgCase("config:directory", ("--config", "{tmp}", *_start("INC-1"))),
    ArgCase("config:bad-utf8", ("--config", "{badutf8}", *_start("INC-1")), words=("utf-8",)),
    ArgCase(
        "db:postgres-password",
        ("--db", "postgresql://hotfix:SuperSecretPw-8fj2@127.0.0.1:1/hotfix", "list"),
        expect="handled",
        secret="SuperSecretPw-8fj2",
    ),
    ArgCase(
        "db:unknown-driver",
        ("--db", "mysql://u:HiddenPw-77@127.0.0.1:1/x", "list"),
        expect="handled",
        secret="HiddenPw-77",
    ),
    ArgCase("db:bad-scheme", ("--db", "notascheme://x/y", "list"), expect="handled"),
    ArgCase(
        "db:missing-dir", ("--db", "sqlite:////proc/no/such/dir/x.db", "list"), expect="handled"
    ),
    ArgCase("db:directory", ("--db", "{tmp}", "list"), expect="handled"),
    ArgCase("db:text-file", ("--db", "{file}", "list"), expect="handled"),
    ArgCase("command:unknown", ("rm -rf /",)),
    ArgCase("option:unknown", ("--evil", "list")),
    ArgCase("verbose:many", ("-vvvvvvvvvvvvvvvvvvvv", "list"), expect="handled"),
]


@dataclass(frozen=True)
class ConfigCase:
    """A ``hotfix.toml`` (merged ``change`` or ``raw`` bytes), then ``hotfix start --yes``."""

    name: str
    change: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None
    expect: str = "refused"
    words: tuple[str, ...] = ()
    bug: str = ""  # a reported bug: the case runs on its own as a strict xfail


CONFIG_CASES: list[ConfigCase] = [
    ConfigCase("type:remote-int", {"remote": 5}, words=("remote",)),
    ConfigCase(
        "type:command-string",
        {"gates": {"tests": {"command": "python -m unittest"}}},
        words=("gates.tests.command",),
    ),
    ConfigCase(
        "type:duration-string", {"monitor": {"duration": "long"}}, words=("monitor.duration",)
    ),
    ConfigCase("type:negative", {"retry_limit": -1}, words=("retry_limit",)),
    ConfigCase("type:bool-for-int", {"retry_limit": True}, words=("retry_limit",)),
    ConfigCase("type:labels-string", {"github": {"labels": "hotfix"}}, words=("github.labels",)),
    ConfigCase("unknown:typo", {"gates": {"tests": {"comand": ["true"]}}}, words=("comand",)),
    ConfigCase("unknown:top-level", {"shell": True}, words=("shell",)),
    ConfigCase("choice:merge-method", {"merge": {"method": "force-push"}}, words=("merge.method",)),
    ConfigCase("nul:string", {"main_branch": "main\x00evil"}, words=("nul",)),
    ConfigCase(
        "raw:bad-utf8", raw=b'remote = "origin"\nmain_branch = "\xff\xfe\xfd"\n', words=("utf-8",)
    ),
    ConfigCase("raw:syntax", raw=b"remote = \n[[[", words=("toml",)),
    ConfigCase(
        "raw:huge",
        raw=b'description_unused = "' + b"x" * 5_000_000 + b'"\n',
        words=("description_unused",),
    ),
    # refused by start before anything is recorded (exit 2), as the dry run does
    ConfigCase(
        "ref:branch-pattern-dots",
        {"branch_pattern": "hotfix/{issue}..{timestamp}"},
        words=("branch_pattern",),
    ),
    ConfigCase(
        "ref:branch-pattern-shell",
        {"branch_pattern": "hotfix/$(touch {canary})-{timestamp}"},
        words=("branch_pattern",),
    ),
    ConfigCase(
        "regex:issue-pattern",
        {"issue_pattern": "(["},
        words=("issue_pattern",),
    ),
    ConfigCase(
        "condition:metric",
        {
            "monitor": {
                "metrics": [{"name": "e", "field": "errorRate", "success": "< 5; touch {canary}"}]
            }
        },
        words=("monitor.metrics",),
    ),
    ConfigCase(
        "option:production-branch",
        {"production_branch": "--upload-pack=touch {canary}"},
        expect="handled",
    ),
    ConfigCase("option:remote", {"remote": "--upload-pack=touch {canary}"}, expect="handled"),
    ConfigCase("option:main-branch", {"main_branch": "-x"}, expect="handled"),
    ConfigCase(
        "url:api-not-a-url",
        {"github": {"api_url": "not a url"}, "retry_limit": 2},
        expect="handled",
    ),
    ConfigCase("repo:traversal", {"github": {"repository": "../../etc"}}, expect="handled"),
    ConfigCase(
        "float:nan-interval",
        {"monitor": {"interval": float("nan")}},
        words=("monitor.interval",),
    ),
    ConfigCase("float:inf-target", {"time_target_minutes": float("inf")}, expect="handled"),
    ConfigCase("int:huge", {"retry_limit": 2**62}, expect="handled"),
]

# Values that are configured, so they must reach the program as literal argv / inputs,
# never through a shell. One full run checks them together (test_hostile).
LITERAL_ARGS = [*SHELLISH, "$HOME", "*", "'quoted'", '"dq"', "a\\b", "--help"]


@dataclass(frozen=True)
class Reply:
    """What a hostile server answers: status, headers, body (``drip``: seconds per byte)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    drip: float = 0.0
    content_length: int | None = None  # lie about the length when set


DEEP = b"[" * 50_000 + b"]" * 50_000
SERVER_CASES: dict[str, Reply] = {
    "malformed-json": Reply(body=b'{"number": 1, "html_url": '),
    "html": Reply(
        body=b"<html><body>502 Bad Gateway</body></html>", headers=(("Content-Type", "text/html"),)
    ),
    "empty-200": Reply(body=b""),
    "json-array": Reply(body=b"[1, 2, 3]"),
    "json-string": Reply(body=b'"healthy"'),
    "wrong-types": Reply(
        body=b'{"number": "one", "status": ["healthy"], "version": {"x": 1}, "state": 5}'
    ),
    "nan": Reply(
        body=b'{"status": "healthy", "errorRate": NaN, "uptime": Infinity, "number": NaN}'
    ),
    "deep-nesting": Reply(body=DEEP),
    "enormous": Reply(body=b'{"status": "healthy", "pad": "' + b"x" * 20_000_000 + b'"}'),
    "invalid-utf8": Reply(body=b'{"status": "\xff\xfe healthy"}'),
    "control-chars": Reply(body=b'{"status": "healthy\\u001b[2J\\u0007", "message": "\\u0000"}'),
    "short-body": Reply(body=b'{"status": "healthy"}', content_length=5000),
    "slow-drip": Reply(body=b'{"status": "healthy", "pad": "' + b"x" * 200 + b'"}', drip=0.03),
    "redirect-loop": Reply(status=302, headers=(("Location", "/"),)),
    "status-999": Reply(status=599, body=b'{"message": "???"}'),
}
