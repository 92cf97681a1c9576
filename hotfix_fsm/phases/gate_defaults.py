"""The gate phase (``Gate``) and what each gate runs: configured argv, else a detected default.

Defaults (configuration overrides every one of them):

======  =================================================  ==================================
gate    npm project (``package.json``)                     Python project (``pyproject.toml``,
                                                           ``setup.py`` or ``setup.cfg``)
======  =================================================  ==================================
tests   ``npm run test:critical`` (else ``npm test``)      ``python -m pytest -q``
build   ``npm run build``, then ``dist/`` must be           ``python -m build``, then ``dist/``
        non-empty                                          must be non-empty
audit   ``npm audit --audit-level=high``                   ``pip-audit``
======  =================================================  ==================================

An npm script the project does not define is not guessed at: the gate then needs a
configured command (or ``enabled = false``), and the error names the key to set.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotfix_fsm.adapters.commands import CommandNotFound, run_logged
from hotfix_fsm.config import Config, GateConfig
from hotfix_fsm.core.redact import redact, redact_obj
from hotfix_fsm.errors import LeaseLost, PermanentError
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.facts import GateArtifact, GateResult

if TYPE_CHECKING:
    from hotfix_fsm.adapters.git import GitRepo

TAIL_LINES = 20
_SERVICES = threading.Lock()


@dataclass(frozen=True)
class GatePlan:
    """The command a gate runs, the artifact it must leave, and where they came from."""

    command: tuple[str, ...]
    artifact: str
    source: str  # "configuration", "npm" or "python"


def gate_config(config: Config, gate: str) -> GateConfig:
    """``config.gates.<gate>`` (a gate the configuration does not know gets the defaults)."""
    found = getattr(config.gates, gate, None)
    return found if isinstance(found, GateConfig) else GateConfig()


def _python() -> str:
    return "python" if shutil.which("python") else "python3"


def _npm_scripts(work_tree: Path) -> dict[str, Any] | None:
    manifest = work_tree / "package.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PermanentError(
            f"cannot read {manifest} to pick the default gate commands: {exc}",
            hint="fix package.json, or configure every gate's command in hotfix.toml",
        ) from exc
    scripts = data.get("scripts") if isinstance(data, dict) else None
    return scripts if isinstance(scripts, dict) else {}


def detect(gate: str, work_tree: Path) -> GatePlan | None:
    """The default command for ``gate`` in this project, or None when there is none."""
    scripts = _npm_scripts(work_tree)
    if scripts is not None:
        if gate == "tests":
            if "test:critical" in scripts:
                return GatePlan(("npm", "run", "test:critical"), "", "npm")
            if "test" in scripts:
                return GatePlan(("npm", "test"), "", "npm")
            return None
        if gate == "build":
            return GatePlan(("npm", "run", "build"), "dist", "npm") if "build" in scripts else None
        if gate == "audit":
            return GatePlan(("npm", "audit", "--audit-level=high"), "", "npm")
        return None
    if any((work_tree / name).is_file() for name in ("pyproject.toml", "setup.py", "setup.cfg")):
        python = _python()
        plans = {
            "tests": GatePlan((python, "-m", "pytest", "-q"), "", "python"),
            "build": GatePlan((python, "-m", "build"), "dist", "python"),
            "audit": GatePlan(("pip-audit",), "", "python"),
        }
        return plans.get(gate)
    return None


def plan_gate(gate: str, cfg: GateConfig, work_tree: Path) -> GatePlan:
    """The configured command, else the detected default; PermanentError when neither."""
    if cfg.command:
        return GatePlan(tuple(cfg.command), cfg.artifact, "configuration")
    found = detect(gate, work_tree)
    if found is None:
        raise PermanentError(
            f"gate {gate} has no command: none is configured and none could be detected in "
            f"{work_tree} (no package.json script or Python project for it)",
            hint=f'set gates.{gate}.command = ["..."] in hotfix.toml (an argv list), or '
            f"gates.{gate}.enabled = false to skip it on purpose (the journal records the skip)",
        )
    return GatePlan(found.command, cfg.artifact or found.artifact, found.source)


def check_artifact(gate: str, artifact: str, work_tree: Path, *, nonempty: bool) -> GateArtifact:
    """Verify the artifact a gate must leave inside the work tree; facts about it."""
    relative = Path(artifact)
    key = f"gates.{gate}.artifact"
    root = work_tree.resolve()
    target = (root / relative).resolve()
    if relative.is_absolute() or not target.is_relative_to(root):
        raise PermanentError(
            f"{key} = {artifact!r} is outside the work tree {root}",
            hint=f'give {key} as a path relative to the repository root, such as "dist"',
        )
    if not target.exists():
        raise PermanentError(
            f"gate {gate} exited 0 but its artifact {artifact} does not exist in {root}",
            hint=f"check the build output location and set {key} accordingly, then resume",
        )
    is_dir = target.is_dir()
    size = sum(1 for _ in target.iterdir()) if is_dir else target.stat().st_size
    if nonempty and size == 0:
        raise PermanentError(
            f"gate {gate} exited 0 but its artifact {artifact} is empty",
            hint="check the build; an empty artifact would deploy nothing",
        )
    if is_dir:
        return {"path": artifact, "kind": "dir", "entries": size}
    return {"path": artifact, "kind": "file", "bytes": size}


class Gate(BasePhase):
    """Run one gate (tests, build, audit) against the fix commit in the work tree."""

    def __init__(self, gate_name: str) -> None:
        self.gate_name = gate_name
        self.name = f"gate:{gate_name}"

    def key(self, ctx: PhaseContext) -> str:
        return f"{self.gate_name}:{ctx.facts.get('fix_sha', '')}"

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done("a gate has no external effect; it simply runs again")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        gate, hotfix_id = self.gate_name, ctx.hotfix.id
        cfg = gate_config(ctx.config, gate)
        if not cfg.enabled:
            reason = "disabled in configuration"
            ctx.record("note", {"gate": gate, "skipped": True, "reason": reason})
            skipped: GateResult = {"gate": gate, "skipped": True, "reason": reason}
            return {**skipped}
        sha = ctx.facts.get("fix_sha", "")
        if not sha:
            raise PermanentError("no fix commit is recorded; there is nothing to test")
        with _SERVICES:  # gates run in parallel; Services builds adapters lazily, unlocked
            git = ctx.services.git
        tree = git.work_tree
        self._check_work_tree(ctx, git, sha)
        plan = plan_gate(gate, cfg, tree)
        log = ctx.services.hotfix_dir(hotfix_id) / "gates" / f"{gate}-{ctx.attempt}.log"
        env = {
            **os.environ,
            "CI": os.environ.get("CI", "true"),
            "HOTFIX_ID": hotfix_id,
            "HOTFIX_GATE": gate,
            "HOTFIX_SHA": sha,
        }
        shown = redact(" ".join(plan.command))
        try:
            result = run_logged(
                plan.command,
                cwd=tree,
                log_path=log,
                timeout=cfg.timeout,
                env=env,
                stop_event=ctx.stop_event,
            )
        except CommandNotFound as exc:
            raise PermanentError(
                f"gate {gate} cannot run {exc.executable!r}: {exc.reason}",
                hint=f"install it, or set gates.{gate}.command in hotfix.toml "
                f"({plan.source} chose {shown!r}); then `hotfix resume {hotfix_id}`",
            ) from exc
        if result.stopped:
            raise LeaseLost(
                "this driver lost its lease while a gate ran; the gate was "
                "stopped and another driver continues",
                hotfix_id=hotfix_id,
            )
        facts: GateResult = redact_obj(
            {
                "gate": gate,
                "command": list(plan.command),
                "source": plan.source,
                "exit_code": result.exit_code,
                "duration_s": result.duration_s,
                "sha": sha,
                "log": str(log),
                "output_bytes": result.output_bytes,
            }
        )
        tail = result.tail_lines(TAIL_LINES)
        retry = (
            f"read the log; if the cause was the environment, fix it and `hotfix resume "
            f"{hotfix_id}` (only failed gates run again); if the fix is wrong, `hotfix "
            f"abort {hotfix_id}` and start a new hotfix"
        )
        if result.timed_out:
            raise PermanentError(
                f"gate {gate} timed out after {cfg.timeout:g}s running {shown!r} on "
                f"{sha[:12]} (its process group was killed); last output:\n{tail}\n"
                f"full log: {log}",
                hint=f"find the hang, or raise gates.{gate}.timeout; then `hotfix resume "
                f"{hotfix_id}`",
            )
        if result.exit_code != 0:
            raise PermanentError(
                f"gate {gate} failed on {sha[:12]}: {shown!r} exited with {result.exit_code} "
                f"after {result.duration_s:.1f}s; last output:\n{tail}\nfull log: {log}",
                hint=retry,
            )
        if plan.artifact:
            facts["artifact"] = check_artifact(
                gate, plan.artifact, tree, nonempty=cfg.artifact_nonempty
            )
        return {**facts}

    @staticmethod
    def _check_work_tree(ctx: PhaseContext, git: GitRepo, sha: str) -> None:
        head = git.head_sha()
        where = f"in {git.work_tree}"
        if head != sha:
            raise PermanentError(
                f"the work tree is at {head[:12]}, not the fix commit {sha[:12]}; the gates "
                "test exactly the commit that will be pushed",
                hint=f"`git switch {ctx.facts.get('branch')}` {where} (it must be at "
                f"{sha[:12]}), then `hotfix resume {ctx.hotfix.id}`",
            )
        modified = git.status(untracked=False)
        if modified:
            files = ", ".join(e[3:] for e in modified[:5])
            raise PermanentError(
                f"tracked files changed since the fix commit ({files}); the gates would not "
                f"test {sha[:12]}",
                hint=f"discard the changes {where} (`git restore --staged --worktree .`), "
                f"then `hotfix resume {ctx.hotfix.id}`",
            )
