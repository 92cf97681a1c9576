"""Configuration: ``hotfix.toml`` at the repository root or ``[tool.hotfix]`` in ``pyproject.toml``.

Every setting the phases use, with its default. Loading validates types and refuses unknown
keys; errors name the key and the file. Secrets (tokens, webhook URLs) are best given through
the environment variable a ``*_env`` key names, and are registered with the log redactor.

The file is looked for at the git top level of the directory a command runs in (as git
finds ``.git``), so any subdirectory of the work tree finds it; ``locate_config`` says where
and why. It may be committed on any branch or kept untracked. When a hotfix starts, its
effective values are pinned in the store (``pin_config``: values, hash, source; never a
secret) and every later command rebuilds them (``config_from_pin``), so a file that vanished
with a branch switch, or another clone, changes nothing; ``config_changes`` lists what a
file now says differently, key by key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hotfix_fsm.core.redact import looks_like_secret
from hotfix_fsm.errors import ConfigError, UsageError

ISSUE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$"


@dataclass
class GateConfig:
    command: list[str] = field(default_factory=list)  # argv; empty = detect from the project
    enabled: bool = True
    timeout: float = 900.0
    artifact: str = ""  # build only: a path that must exist (and be non-empty) afterwards
    artifact_nonempty: bool = True


@dataclass
class GatesConfig:
    parallel: bool = True
    tests: GateConfig = field(default_factory=GateConfig)
    build: GateConfig = field(default_factory=GateConfig)
    audit: GateConfig = field(default_factory=GateConfig)


@dataclass
class GitHubConfig:
    api_url: str = "https://api.github.com"
    repository: str = ""  # owner/name; derived from the remote URL when empty
    token: str = ""  # discouraged: prefer token_env or `gh auth token`
    token_env: str = ""
    labels: list[str] = field(default_factory=lambda: ["hotfix", "urgent"])
    request_timeout: float = 15.0
    max_retries: int = 8
    max_backoff: float = 60.0


@dataclass
class CIConfig:
    enabled: bool = True
    required_checks: list[str] = field(default_factory=list)  # empty = every check reported
    timeout: float = 1800.0
    poll_interval: float = 10.0
    # Seconds to wait for the first check to appear before concluding the repo has no CI.
    no_checks_grace: float = 60.0


@dataclass
class DeployConfig:
    workflow: str = "deploy-production.yml"
    inputs: dict[str, str] = field(default_factory=dict)
    approval: str = "manual"  # manual | auto
    timeout: float = 1800.0
    poll_interval: float = 10.0
    distinct_approver: bool = False  # four eyes: who started a hotfix cannot approve its deploy
    approvers: list[str] = field(default_factory=list)  # who may approve a deploy; [] = anyone


@dataclass
class VerifyConfig:
    url: str = ""
    expected_status: int = 200
    json_field: str = "status"  # empty = do not look at the body
    json_value: str = "healthy"
    version_field: str = "version"  # when the service reports it, it must equal the fix sha
    timeout: float = 300.0
    interval: float = 5.0
    request_timeout: float = 10.0


@dataclass
class MetricConfig:
    name: str = ""
    source: str = "health"  # health | client | prometheus
    field: str = ""  # health: the JSON field; client: latency_ms | success_ratio
    query: str = ""  # prometheus: the PromQL query
    success: str = ""  # e.g. "< 5"; empty = not judged on success
    failure: str = ""  # e.g. ">= 10"; empty = never fails outright
    failure_limit: int = 0  # failed measurements tolerated
    consecutive_error_limit: int = 4  # measurement errors tolerated in a row
    missing: str = "error"  # missing/NaN value counts as: error | failure | ignore


def _default_metrics() -> list[MetricConfig]:
    return [
        MetricConfig(name="error_rate", field="errorRate", success="< 5", failure=">= 10"),
        MetricConfig(
            name="response_time",
            field="responseTime",
            success="< 1000",
            failure=">= 3000",
            failure_limit=1,
        ),
        MetricConfig(name="uptime", field="uptime", success=">= 99", failure="< 95"),
    ]


@dataclass
class MonitorConfig:
    enabled: bool = True
    initial_delay: float = 0.0
    interval: float = 10.0
    duration: float = 300.0
    count: int = 0  # > 0: stop after this many measurements instead of the duration
    inconclusive: str = "pause"  # pause | pass | fail
    prometheus_url: str = ""
    metrics: list[MetricConfig] = field(default_factory=_default_metrics)


@dataclass
class RollbackConfig:
    policy: str = "automatic"  # automatic | ask | never
    workflow: str = "rollback.yml"  # empty = redeploy the target with the deploy workflow
    inputs: dict[str, str] = field(default_factory=dict)
    after_merge: str = "revert"  # revert (a PR) | reset (force-with-lease, needs approval)
    allow_reset: bool = False


@dataclass
class AlertsConfig:
    slack_webhook: str = ""
    slack_webhook_env: str = ""
    webhook_url: str = ""
    webhook_url_env: str = ""
    # PagerDuty Events API v2: an incident per hotfix (dedup key = hotfix id), triggered on
    # pause, failure and rollback, resolved when the hotfix ends.
    pagerduty_routing_key: str = ""
    pagerduty_routing_key_env: str = ""
    pagerduty_url: str = "https://events.pagerduty.com/v2/enqueue"
    events: list[str] = field(
        default_factory=lambda: [
            "paused",
            "failed",
            "rollback_started",
            "rollback_finished",
            "time_target_breached",
            "completed",
            "cancelled",
        ]
    )
    timeout: float = 5.0


@dataclass
class MergeConfig:
    method: str = "squash"  # squash | merge | rebase
    # true: turn on GitHub's auto-merge (as `gh pr merge --auto`) and follow the PR to it
    auto: bool = False


@dataclass
class TagConfig:
    enabled: bool = True
    scheme: str = "patch"  # patch (next vX.Y.Z) | a template such as "hotfix-{issue}"
    prefix: str = "v"


@dataclass
class BackportConfig:
    enabled: bool = True
    base: str = ""  # defaults to the main branch


@dataclass
class CleanupConfig:
    delete_remote_branch: bool = True
    delete_local_branch: bool = True


@dataclass
class Config:
    """Everything the phases read. ``source`` says where it came from, for messages."""

    remote: str = "origin"
    production_branch: str = "production"
    main_branch: str = "main"
    branch_pattern: str = "hotfix/{issue}-{timestamp}"
    issue_pattern: str = ISSUE_PATTERN
    severity: str = "critical"
    time_target_minutes: float = 30.0
    retry_limit: int = 5  # transient failures of one phase before it fails
    git_timeout: float = 120.0
    gates: GatesConfig = field(default_factory=GatesConfig)
    github: GitHubConfig = field(default_factory=GitHubConfig)
    ci: CIConfig = field(default_factory=CIConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    merge: MergeConfig = field(default_factory=MergeConfig)
    tag: TagConfig = field(default_factory=TagConfig)
    backport: BackportConfig = field(default_factory=BackportConfig)
    cleanup: CleanupConfig = field(default_factory=CleanupConfig)
    source: str = "defaults"

    def secret(self, value: str, env: str) -> str:
        """A secret from the named environment variable, else the literal value."""
        return (os.environ.get(env, "") if env else "") or value

    def secrets(self) -> list[str]:
        """Every secret this configuration can produce, for the redactor."""
        found = []
        for section, key, env in SECRET_FIELDS:
            table = getattr(self, section)
            found.append(self.secret(getattr(table, key), getattr(table, env)))
        return [s for s in found if s]


CHOICES: dict[str, tuple[str, ...]] = {
    "deploy.approval": ("manual", "auto"),
    "monitor.inconclusive": ("pause", "pass", "fail"),
    "rollback.policy": ("automatic", "ask", "never"),
    "rollback.after_merge": ("revert", "reset"),
    "merge.method": ("squash", "merge", "rebase"),
    "metric.source": ("health", "client", "prometheus"),
    "metric.missing": ("error", "failure", "ignore"),
}

T = TypeVar("T")
_NOT_SHOWN = "<a value that looks like a secret; not shown>"


def _shown(value: Any, width: int = 60) -> str:
    """``value`` for an error message, or a description of it when it looks like a secret."""
    return _NOT_SHOWN if _holds_secret(value) else f"{value!r:.{width}}"


def _holds_secret(value: Any) -> bool:
    if isinstance(value, str):
        return looks_like_secret(value)
    if isinstance(value, dict):
        return any(_holds_secret(k) or _holds_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_secret(v) for v in value)
    return False


def _build(cls: type[T], data: Any, where: str, source: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'the configuration'} must be a table, in {source}")
    hints = typing.get_type_hints(cls)
    known = {
        f.name
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not (cls is Config and f.name == "source")
    }
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(
                f"unknown configuration key {_shown(dotted, 200)} in {source}",
                hint=f"known keys here: {', '.join(sorted(known))}",
            )
        kwargs[key] = _coerce(hints[key], value, dotted, source)
    obj = cls(**kwargs)
    for key, allowed in CHOICES.items():
        section, _, name = key.partition(".")
        if (cls is MetricConfig and section == "metric") or where.endswith(section):
            current = getattr(obj, name, None)
            if current is not None and current not in allowed:
                raise ConfigError(
                    f"{where}.{name} = {_shown(current, 200)} in {source} is not one of "
                    f"{', '.join(allowed)}"
                )
    return obj


def _coerce(hint: Any, value: Any, dotted: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, dotted, source)  # type: ignore[arg-type]
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{dotted} in {source} must be a list")
        return [_coerce(item, v, f"{dotted}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"{dotted} in {source} must be a table of strings")
        return dict(value)
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{dotted} in {source} must be a finite number, not {value!r}")
        if value < 0:
            raise ConfigError(f"{dotted} in {source} must not be negative")
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ConfigError(f"{dotted} in {source} must not be negative")
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        if "\x00" in value:
            raise ConfigError(f"{dotted} in {source} contains a NUL character")
        if dotted.endswith("_env") and looks_like_secret(value):
            raise ConfigError(
                f"{dotted} must name an environment variable (it looks like a token was "
                "pasted; the value is not shown)",
                hint=f"in {source}: put the secret in an environment variable and set "
                f"{dotted} to that variable's name",
            )
        return value
    raise ConfigError(
        f"{dotted} in {source} must be {getattr(hint, '__name__', hint)}, "
        f"not {type(value).__name__} ({_shown(value)})"
    )


def config_from_mapping(data: dict[str, Any], source: str = "<mapping>") -> Config:
    """A validated Config from already parsed TOML data."""
    config = _build(Config, data, "", source)
    config.source = source
    try:
        re.compile(config.issue_pattern)
    except re.error as exc:
        raise ConfigError(
            f"issue_pattern in {source} is not a valid regular expression: {exc}",
            hint="fix the pattern, or remove it to use the default",
        ) from exc
    from hotfix_fsm.core.analysis import ConditionError, Rule

    for i, metric in enumerate(config.monitor.metrics):
        if not metric.name:
            raise ConfigError(f"monitor.metrics[{i}] in {source} needs a name")
        try:
            Rule.from_config(metric)
        except ConditionError as exc:
            detail = str(exc)
            for value in (metric.name, metric.success, metric.failure, metric.missing):
                if looks_like_secret(value):
                    detail = detail.replace(value, _NOT_SHOWN)
            name = _NOT_SHOWN if looks_like_secret(metric.name) else metric.name
            raise ConfigError(
                f"monitor.metrics[{i}] ({name}) in {source}: {detail}",
                hint='write conditions like "< 5", ">= 99" or "== healthy"',
            ) from exc
    return config


CONFIG_FILE = "hotfix.toml"
# Configuration keys whose literal values are secrets: never pinned in the store (the value
# is read again from the file at use time; a ``*_env`` key names the variable instead).
# Every secret a configuration can hold: (section, key given literally, key naming its env
# variable). One table, so the redactor and the pinned configuration never disagree.
SECRET_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("github", "token", "token_env"),
    ("alerts", "slack_webhook", "slack_webhook_env"),
    ("alerts", "webhook_url", "webhook_url_env"),
    ("alerts", "pagerduty_routing_key", "pagerduty_routing_key_env"),
)
# The literal ones, which a pinned configuration leaves out (read again from the file).
SECRET_KEYS = tuple(f"{section}.{key}" for section, key, _env in SECRET_FIELDS)


def git_top_level(path: str | os.PathLike[str]) -> Path | None:
    """The top directory of the git work tree holding ``path`` (as git finds ``.git``).

    None when ``path`` is not inside a work tree (or git cannot be run).
    """
    where = Path(path).expanduser()
    if not where.is_dir():
        where = where.parent
    if not where.is_dir():
        return None
    code, out = _git(where, "rev-parse", "--show-toplevel")
    return Path(out).resolve() if code == 0 and out else None


def _git(cwd: Path, *args: str) -> tuple[int, str]:
    """A read-only git command in ``cwd`` (argv, no prompt): (exit code, stdout stripped)."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return 127, ""
    return proc.returncode, proc.stdout.strip()


@dataclass(frozen=True)
class ConfigLocation:
    """Where the configuration of a repository lives, and why it was taken from there.

    ``path`` is None when there is no file (the defaults); ``top_level`` is the git work
    tree's top directory (None outside a work tree); ``git_state`` says how git sees the
    file: ``untracked``, ``ignored``, ``tracked on <branch>``, ``tracked, with uncommitted
    changes``, ``outside the work tree`` or ``""``.
    """

    path: Path | None
    table: str | None
    top_level: Path | None
    why: str
    git_state: str = ""

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else "defaults"

    @property
    def relative(self) -> str | None:
        """The file's path from the top level (posix), when it lies inside the work tree."""
        if self.path is None or self.top_level is None:
            return None
        try:
            return self.path.resolve().relative_to(self.top_level).as_posix()
        except ValueError:
            return None

    def describe(self) -> str:
        """``/repo/hotfix.toml (found at the git top level; untracked)``."""
        details = "; ".join(d for d in (self.why, self.git_state) if d)
        what = self.source if self.table is None else f"[{self.table}] in {self.source}"
        return f"{what} ({details})" if details else what


def _has_table(file: Path, table: str) -> bool:
    """True when ``file`` holds ``[table]`` (or cannot be parsed: loading then says why)."""
    try:
        data: Any = tomllib.loads(file.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, OSError):
        return True
    for part in table.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def find_config_file(repo: Path) -> tuple[Path, str | None] | None:
    """``hotfix.toml`` wins over ``[tool.hotfix]`` in ``pyproject.toml``."""
    direct = repo / CONFIG_FILE
    if direct.is_file():
        return direct, None
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file() and _has_table(pyproject, "tool.hotfix"):
        return pyproject, "tool.hotfix"
    return None


def locate_config(
    repo: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None
) -> ConfigLocation:
    """Where the configuration for ``repo`` is: ``path`` when given, else the
    ``hotfix.toml`` (or ``[tool.hotfix]`` in ``pyproject.toml``) at the git top level of
    ``repo`` — wherever in the work tree the command runs — else the defaults."""
    top = git_top_level(repo) if repo is not None else None
    if path is not None:
        file = Path(path).expanduser().resolve()
        table = "tool.hotfix" if file.name == "pyproject.toml" else None
        where = top or (git_top_level(file.parent) if file.parent.is_dir() else None)
        return ConfigLocation(file, table, where, "given with --config", _git_state(file, where))
    if repo is None:
        return ConfigLocation(None, None, None, "no repository given")
    base = top or Path(repo).expanduser().resolve()
    found = find_config_file(base)
    if found is None:
        place = "the git top level" if top else "the directory (not a git work tree)"
        return ConfigLocation(
            None,
            None,
            top,
            f"no {CONFIG_FILE} or [tool.hotfix] in pyproject.toml at {place} {base}",
        )
    file, table = found
    why = "found at the git top level" if top else "found in the directory (not a git work tree)"
    return ConfigLocation(file.resolve(), table, top, why, _git_state(file.resolve(), top))


def _git_state(file: Path, top: Path | None) -> str:
    """How git sees ``file``: untracked, ignored, tracked (on which branch) or modified."""
    if top is None:
        return ""
    try:
        relative = file.relative_to(top).as_posix()
    except ValueError:
        return "outside the work tree"
    tracked, _ = _git(top, "--literal-pathspecs", "ls-files", "--error-unmatch", "--", relative)
    if tracked == 0:
        code, branch = _git(top, "symbolic-ref", "--quiet", "--short", "HEAD")
        changed, _ = _git(top, "--literal-pathspecs", "diff", "--quiet", "HEAD", "--", relative)
        if changed == 1:
            return "tracked, with uncommitted changes"
        return f"tracked on {branch}" if code == 0 and branch else "tracked"
    ignored, _ = _git(top, "--literal-pathspecs", "check-ignore", "--quiet", "--", relative)
    return "ignored by git" if ignored == 0 else "untracked"


def load_config(
    repo: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None
) -> Config:
    """Load from ``path`` or the repository's own file; defaults when there is none.

    The repository's file is looked for at the git top level of ``repo`` (``repo`` may be
    any directory inside the work tree); ``locate_config`` says where and why.
    """
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(
                f"configuration file {file} does not exist",
                hint="pass an existing file to --config, or run `hotfix init`",
            )
        return load_config_file(file, "tool.hotfix" if file.name == "pyproject.toml" else None)
    if repo is None:
        return Config()
    location = locate_config(repo)
    if location.path is None:
        return Config()
    return load_config_file(location.path, location.table)


def load_config_file(file: Path, table: str | None = None) -> Config:
    """A validated Config from one file (``table``: the TOML table holding it)."""
    try:
        raw = file.read_bytes().decode("utf-8")
        data: dict[str, Any] = tomllib.loads(raw)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file} is not valid UTF-8 (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{file} is not valid TOML: {exc}", hint="fix the syntax at the line shown"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from exc
    if table:
        for part in table.split("."):
            data = data.get(part, {})
            if not isinstance(data, dict):
                raise ConfigError(f"[{table}] in {file} must be a table")
    return config_from_mapping(data, str(file))


# -- the configuration pinned with a hotfix --------------------------------------------------


def config_values(config: Config) -> dict[str, Any]:
    """The effective values as plain data, literal secrets blanked (``SECRET_KEYS``)."""
    values = {k: v for k, v in dataclasses.asdict(config).items() if k != "source"}
    for dotted in SECRET_KEYS:
        section, _, name = dotted.partition(".")
        if values.get(section, {}).get(name):
            values[section][name] = ""
    return values


def values_hash(values: dict[str, Any]) -> str:
    """A stable hash of configuration values (sorted keys, compact JSON, sha256)."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def pin_config(config: Config, location: ConfigLocation | None = None) -> dict[str, Any]:
    """What a hotfix stores of its configuration when it starts: the effective values
    (after defaults), their hash and where they came from. No secret: a literal token or
    webhook URL is left out (its key is listed in ``literal_secrets`` and read again from
    the file when used); ``*_env`` keys keep the variables' names."""
    values = config_values(config)
    literal = [
        dotted
        for dotted in SECRET_KEYS
        if getattr(getattr(config, dotted.split(".")[0]), dotted.split(".")[1])
    ]
    pin: dict[str, Any] = {
        "values": values,
        "hash": values_hash(values),
        "source": location.source if location else config.source,
        "literal_secrets": literal,
    }
    if location is not None:
        pin.update(relative=location.relative, table=location.table, why=location.why)
    return pin


def config_from_pin(pin: dict[str, Any], secrets_from: Config | None = None) -> Config:
    """The Config a hotfix pinned; literal secrets are taken from ``secrets_from`` (the
    file as it is now) when given."""
    source = str(pin.get("source") or "defaults")
    config = config_from_mapping(pin["values"], f"{source} (pinned)")
    config.source = source
    if secrets_from is not None:
        for dotted in pin.get("literal_secrets") or ():
            section, _, name = str(dotted).partition(".")
            value = getattr(getattr(secrets_from, section, None), name, "")
            if value and hasattr(getattr(config, section, None), name):
                setattr(getattr(config, section), name, value)
    return config


def pinned(options: dict[str, Any]) -> dict[str, Any] | None:
    """The configuration a hotfix pinned (its ``options["config"]``), or None when it was
    started before configurations were pinned."""
    pin = options.get("config")
    return pin if isinstance(pin, dict) and isinstance(pin.get("values"), dict) else None


def current_config_file(
    repo: str | os.PathLike[str],
    pin: dict[str, Any] | None,
    explicit: str | os.PathLike[str] | None = None,
) -> tuple[Path, str | None] | None:
    """The file a pinned configuration is compared with (and reloaded from) now.

    ``explicit`` (``--config`` of this command) wins; else the pinned file's place in the
    hotfix's work tree ``repo`` (another clone after a hand-off); else a file given with
    ``--config`` outside the work tree at start; else, when the defaults were pinned, a
    file found since at the git top level. None when there is no such file.
    """
    if explicit is not None:
        path = Path(explicit).expanduser().resolve()
        return path, "tool.hotfix" if path.name == "pyproject.toml" else None
    pin = pin or {"source": "defaults"}
    table = pin.get("table")
    relative, source = pin.get("relative"), str(pin.get("source") or "defaults")
    if relative:
        path = Path(repo) / str(relative)
    elif source == "defaults":
        found = locate_config(repo)
        return (found.path, found.table) if found.path is not None else None
    elif Path(source).is_absolute():
        path = Path(source)
    else:
        return None
    if not path.is_file() or (table and not _has_table(path, str(table))):
        return None
    return path, str(table) if table else None


@dataclass(frozen=True)
class ConfigDrift:
    """How the configuration file now differs from the values a hotfix pinned.

    ``file`` is the file compared (None: none is there now); ``changes`` one line per key
    (``config_changes``); ``error`` why the file could not be read.
    """

    hotfix_id: str
    pinned_source: str
    pinned_hash: str
    file: str | None = None
    changes: tuple[str, ...] = ()
    error: str = ""


def compare_with_file(
    hotfix_id: str,
    repo: str | os.PathLike[str],
    pin: dict[str, Any],
    explicit: str | os.PathLike[str] | None = None,
) -> tuple[ConfigDrift, Config | None]:
    """The values ``pin`` holds against the file as it is now (``current_config_file``):
    what differs, and that file's Config (None when there is none or it cannot be read)."""
    source, digest = str(pin.get("source")), str(pin.get("hash"))
    found = current_config_file(repo, pin, explicit)
    if found is None:
        return ConfigDrift(hotfix_id, source, digest), None
    file = str(found[0])
    try:
        now = load_config_file(*found)
    except ConfigError as exc:
        return ConfigDrift(hotfix_id, source, digest, file, error=exc.message), None
    changes = tuple(config_changes(pin["values"], config_values(now)))
    return ConfigDrift(hotfix_id, source, digest, file, changes), now


def repin_from_file(
    hotfix_id: str,
    repo: str | os.PathLike[str],
    pin: dict[str, Any] | None,
    explicit: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, Any], ConfigDrift]:
    """A new pin from the file as it is now, and how it differs from ``pin``.

    Raises:
        UsageError: there is no file to take the values from.
        ConfigError: the file is not a valid configuration.
    """
    found = current_config_file(repo, pin, explicit)
    if found is None:
        raise UsageError(
            f"there is no configuration file to reload for hotfix {hotfix_id} (pinned from "
            f"{pin.get('source') if pin else 'nowhere'}; looked in {repo})",
            hotfix_id=hotfix_id,
            hint="give the file with --config, or resume without --reload-config to keep the "
            "pinned values",
        )
    path, table = found
    location = ConfigLocation(
        path.resolve(), table, git_top_level(repo), "reloaded with --reload-config"
    )
    new = pin_config(load_config_file(path, table), location)
    changes = tuple(config_changes(pin["values"], new["values"])) if pin else ()
    return new, ConfigDrift(hotfix_id, location.source, new["hash"], str(path), changes)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and (not prefix or value):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        out = {f"{prefix}.count": len(value)}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def config_changes(pinned: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """One line per key whose value differs: ``deploy.workflow: pinned 'a.yml', file now
    'b.yml'`` (a value that looks like a secret is not shown)."""
    old, new = _flatten(pinned), _flatten(now)
    lines = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a != b:
            lines.append(f"{key}: pinned {_shown_value(a)}, file now {_shown_value(b)}")
    return lines


_ABSENT = object()


def _shown_value(value: Any) -> str:
    return "(absent)" if value is _ABSENT else _shown(value, 80)
