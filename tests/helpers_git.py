"""Real git worlds for tests: a bare origin, a seed clone standing for "other people", and
the engineer's clone (the hotfix work tree); plus an engine wired with the real git phases
and recording stand-ins for the phases that come after ``push``.

Other test folders may reuse ``build_git_world`` and ``GitWorld``.

The origin, once seeded, looks like this::

    v1.0.0 ─ prod-only (production)            config.txt: timeout=5
        └── feature ─ fix-on-main ─ config-on-main (main)
                        app.py fix    config.txt: timeout=30 (conflicts with production)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfix_fsm.config import Config, config_from_mapping
from hotfix_fsm.core import machine
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.errors import NeedsHuman
from hotfix_fsm.phases.base import BasePhase, PhaseContext, Probe
from hotfix_fsm.phases.git_phases import Branch, CommitFix, Gate, Push
from hotfix_fsm.sandbox.refhook import install_ref_log, read_ref_log

REPO_ROOT = Path(__file__).resolve().parent.parent


def git(cwd: Path, *args: str, input: str | None = None) -> str:
    """Run git in ``cwd`` (raising with git's stderr on failure); its stdout, stripped."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr}")
    return proc.stdout.strip()


@dataclass
class GitWorld:
    """A bare ``origin``, the engineer's clone ``work`` and a ``seed`` clone for others."""

    root: Path
    origin: Path
    seed: Path
    work: Path
    ref_log: Path
    shas: dict[str, str] = field(default_factory=dict)

    @property
    def base_sha(self) -> str:
        """The production head on the remote when the world was built."""
        return self.shas["production"]

    def remote_sha(self, ref: str) -> str | None:
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        out = git(self.origin, "for-each-ref", "--format=%(objectname)", full)
        return out or None

    def remote_branches(self, prefix: str = "hotfix/") -> list[str]:
        out = git(self.origin, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        return [b for b in out.splitlines() if b.startswith(prefix)]

    def ref_updates(self, ref: str) -> list[dict[str, Any]]:
        """Every logged update of ``ref`` on the origin since the world was built."""
        full = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        return [e for e in read_ref_log(self.ref_log) if e.get("ref") == full]

    def forced_updates(self) -> list[dict[str, Any]]:
        return [e for e in read_ref_log(self.ref_log) if e.get("forced")]

    def work_status(self) -> str:
        return git(self.work, "status", "--porcelain")

    def write(self, relative: str, text: str) -> Path:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def push_as_someone_else(self, branch: str, files: dict[str, str], message: str) -> str:
        """Commit ``files`` on top of production in the seed clone and push it to ``branch``."""
        git(self.seed, "fetch", "--quiet", "origin")
        git(self.seed, "switch", "--quiet", "--detach", "origin/production")
        for name, text in files.items():
            (self.seed / name).write_text(text, encoding="utf-8")
        git(self.seed, "add", "--all")
        git(self.seed, "commit", "--quiet", "-m", message)
        sha = git(self.seed, "rev-parse", "HEAD")
        git(self.seed, "push", "--quiet", "origin", f"{sha}:refs/heads/{branch}")
        return sha


def _commit(repo: Path, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def build_git_world(root: Path) -> GitWorld:
    """Build the origin, the seed and the engineer's clone under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    origin, seed, work = root / "origin.git", root / "seed", root / "work"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(root, "init", "--quiet", "--initial-branch=main", str(seed))
    git(seed, "remote", "add", "origin", str(origin))
    shas: dict[str, str] = {}
    shas["initial"] = _commit(
        seed,
        {
            "app.py": "def check(token):\n    return token is not None\n",
            "config.txt": "timeout=10\n",
            ".gitignore": "*.log\nignored/\n",
        },
        "initial",
    )
    git(seed, "tag", "-a", "v1.0.0", "-m", "release 1.0.0")
    git(seed, "branch", "production")
    git(seed, "switch", "--quiet", "production")
    shas["production"] = _commit(seed, {"config.txt": "timeout=5\n"}, "prod-only change")
    git(seed, "switch", "--quiet", "main")
    shas["feature"] = _commit(seed, {"feature.py": "FEATURE = True\n"}, "feature on main")
    shas["fix_on_main"] = _commit(
        seed,
        {"app.py": "def check(token):\n    return bool(token) and not token.expired\n"},
        "Fix token expiry check",
    )
    shas["config_on_main"] = _commit(seed, {"config.txt": "timeout=30\n"}, "raise timeout")
    shas["main"] = shas["config_on_main"]
    git(seed, "push", "--quiet", "origin", "main", "production", "v1.0.0")
    ref_log = root / "ref-log.jsonl"
    install_ref_log(origin, ref_log)
    git(root, "clone", "--quiet", str(origin), str(work))
    return GitWorld(root=root, origin=origin, seed=seed, work=work, ref_log=ref_log, shas=shas)


def make_release_origin(
    root: Path, *, run: Callable[..., str] = git, feature_on_main: bool = True
) -> tuple[Path, Path]:
    """``(bare origin, clone)`` under ``root``: the clone committed ``app.txt`` ("line 1",
    "line 2"), tagged it ``v1.0.0``, branched ``production`` there and pushed ``main``,
    ``production`` and the tag. With ``feature_on_main``, ``main`` has one more commit
    (``main-only.txt``). ``run`` is the caller's ``git(cwd, *args)`` (its environment).
    """
    bare, work = root / "origin.git", root / "work"
    run(root, "init", "-q", "--bare", "-b", "main", str(bare))
    run(root, "init", "-q", "-b", "main", str(work))
    (work / "app.txt").write_text("line 1\nline 2\n")
    run(work, "add", "app.txt")
    run(work, "commit", "-q", "-m", "initial release")
    run(work, "tag", "-a", "v1.0.0", "-m", "v1.0.0")
    run(work, "branch", "production")
    if feature_on_main:
        (work / "main-only.txt").write_text("feature\n")
        run(work, "add", "main-only.txt")
        run(work, "commit", "-q", "-m", "feature on main")
    run(work, "remote", "add", "origin", str(bare))
    run(work, "push", "-q", "origin", "main", "production", "v1.0.0")
    return bare, work


# -- the engine ------------------------------------------------------------------------------


class NoAlerts:
    """Stand-in for the alerter being written elsewhere; records what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, event: str, hotfix: Any, message: str, fields: dict[str, Any]) -> None:
        self.sent.append((event, message))


class LaterPhaseStandIn(BasePhase):
    """Stands for a phase after ``push``: pauses, so a drive stops in state ``pushed``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.not_done()

    def run(self, ctx: PhaseContext) -> dict[str, Any]:
        raise NeedsHuman(f"stand-in for {self.name}: the git phases end here")


def git_phases() -> dict[str, Any]:
    """The real phases under test, keyed by name."""
    phases: list[Any] = [Branch(), CommitFix(), *(Gate(g) for g in machine.GATES), Push()]
    return {p.name: p for p in phases}


def all_phases() -> dict[str, Any]:
    """Every effect phase: the real git phases plus stand-ins for the rest."""
    return {**{n: LaterPhaseStandIn(n) for n in machine.EFFECT_PHASES}, **git_phases()}


def ok_command(label: str) -> list[str]:
    return [sys.executable, "-c", f"print({label!r} + ' passed')"]


def config_data(**gates: Any) -> dict[str, Any]:
    """Configuration data with three quick passing gates; ``gates`` overrides per gate."""
    data: dict[str, Any] = {
        "gates": {name: {"command": ok_command(name), "timeout": 60.0} for name in machine.GATES},
        "retry_limit": 2,
    }
    for name, override in gates.items():
        if name == "parallel":
            data["gates"]["parallel"] = override
        else:
            data["gates"][name] = {**data["gates"].get(name, {}), **override}
    return data


def make_config(**gates: Any) -> Config:
    return config_from_mapping(config_data(**gates), "<test>")


def make_engine(
    db: str | os.PathLike[str], config: Config | None = None, **kw: Any
) -> HotfixEngine:
    alerts = kw.pop("alerts", None) or NoAlerts()
    return HotfixEngine(
        db,
        phases=all_phases(),
        services={"alerts": lambda _s: alerts},
        config=config or make_config(),
        backoff_base=0.001,
        **kw,
    )


def drive_main(argv: list[str]) -> int:
    """Entry point of the driver subprocess: ``<db> <hotfix id> <config json>``."""
    db, hotfix_id, raw = argv
    engine = make_engine(db, config_from_mapping(json.loads(raw), "<driver>"))
    try:
        outcome = engine.drive(hotfix_id)
    finally:
        engine.close()
    print(json.dumps({"state": outcome.state, "paused": outcome.paused_reason}))
    return 0


def driver_argv(db: Path, hotfix_id: str, data: dict[str, Any]) -> list[str]:
    """The argv of a separate process that drives ``hotfix_id`` with ``drive_main``."""
    code = (
        "import sys\nfrom tests.helpers_git import drive_main\nsys.exit(drive_main(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code, str(db), hotfix_id, json.dumps(data)]
