"""Configuration: ``hotfix.toml`` at the repository root or ``[tool.hotfix]`` in ``pyproject.toml``.

Every setting the phases use, with its default. Loading validates types and refuses unknown
keys; errors name the key and the file. Secrets (tokens, webhook URLs) are best given through
the environment variable a ``*_env`` key names, and are registered with the log redactor.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hotfix_fsm.core.redact import looks_like_secret
from hotfix_fsm.errors import ConfigError

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
        found = [
            self.secret(self.github.token, self.github.token_env),
            self.secret(self.alerts.slack_webhook, self.alerts.slack_webhook_env),
            self.secret(self.alerts.webhook_url, self.alerts.webhook_url_env),
            self.secret(self.alerts.pagerduty_routing_key, self.alerts.pagerduty_routing_key_env),
        ]
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


def find_config_file(repo: Path) -> tuple[Path, str | None] | None:
    """``hotfix.toml`` wins over ``[tool.hotfix]`` in ``pyproject.toml``."""
    direct = repo / "hotfix.toml"
    if direct.is_file():
        return direct, None
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        return pyproject, "tool.hotfix"
    return None


def load_config(
    repo: str | os.PathLike[str] | None = None, path: str | os.PathLike[str] | None = None
) -> Config:
    """Load from ``path`` or the repository's own file; defaults when there is none."""
    table: str | None = None
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(
                f"configuration file {file} does not exist",
                hint="pass an existing file to --config, or run `hotfix init`",
            )
        if file.name == "pyproject.toml":
            table = "tool.hotfix"
    elif repo is not None:
        found = find_config_file(Path(repo))
        if found is None:
            return Config()
        file, table = found
    else:
        return Config()
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
