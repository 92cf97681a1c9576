"""``Sandbox``: a built and served rehearsal world with its own store, and ``drive``.

``Sandbox`` builds a rehearsal world (``build_sandbox``), serves it from threads of the test
process (``serve_sandbox``), tunes its ``hotfix.toml`` for speed, and runs
``python -m hotfix_fsm.cli`` with its own store and state directory. Trials are independent,
so a test may run several at once (``harness.parallel``). ``drive`` runs a hotfix to a
terminal state through any number of SIGKILLs (failpoints or random instants);
``invariants`` checks what each trial left behind.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hotfix_fsm.durable import failpoints
from hotfix_fsm.sandbox.serve import RunningSandbox, serve_sandbox
from hotfix_fsm.sandbox.world import SandboxInfo, build_sandbox
from hotfix_fsm.store import Hotfix, JournalEntry, Store, open_store
from tests.torture.harness import (
    ForkPool,
    Proc,
    Result,
    assert_no_traceback,
    merge,
    toml_dumps,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
ISSUE = "INC-7"
DESCRIPTION = "Fix token expiry check"
# Quick CI and runs; a trial's happy path takes about four seconds.
TIMINGS = {"ci_seconds": 0.2, "run_queued_seconds": 0.05, "run_seconds": 0.2}
TUNING: dict[str, dict[str, Any]] = {
    "github": {"max_backoff": 1, "request_timeout": 3},
    "ci": {"poll_interval": 0.1},
    "deploy": {"poll_interval": 0.1},
    "verify": {"interval": 0.1, "timeout": 1.5, "request_timeout": 1},
    "monitor": {"duration": 0.8, "interval": 0.2},
}
FAILPOINT_LOG = "HOTFIX_FSM_FAILPOINT_LOG"
# Opening a store may run Alembic, whose ``context``/``op`` proxies are process-global: two
# threads migrating at once break each other (reported; test_faults_store shows it).
_OPEN_LOCK = threading.Lock()


# -- the sandbox ----------------------------------------------------------------------------


class Sandbox:
    """A built and served rehearsal world with its own store; stop() it (or use ``with``)."""

    def __init__(
        self,
        base: Path,
        *,
        timings: dict[str, float] | None = None,
        tuning: dict[str, Any] | None = None,
    ) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        build_sandbox(base / "sandbox")
        self.running: RunningSandbox = serve_sandbox(
            base / "sandbox", timings={**TIMINGS, **(timings or {})}
        )
        self.db = base / "hotfix.db"
        self.state = base / "state"
        self.failpoint_log = base / "failpoints.log"
        self._seen_failpoints = 0
        self._n = 0
        self._lock = threading.Lock()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HOTFIX_FSM_", "HOTFIX_SANDBOX_", "PYTEST_", "COV_", "GIT_"))
            and k not in ("GITHUB_TOKEN", "GH_TOKEN")
        }
        self.env.update(
            HOTFIX_FSM_DB=str(self.db),
            HOTFIX_FSM_STATE_DIR=str(self.state),
            XDG_STATE_HOME=str(base / "xdg-state"),
            GIT_CONFIG_GLOBAL=str(base / "gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
            GIT_AUTHOR_NAME="Torture Engineer",
            GIT_AUTHOR_EMAIL="torture@example.test",
            GIT_COMMITTER_NAME="Torture Engineer",
            GIT_COMMITTER_EMAIL="torture@example.test",
            PYTHONPATH=os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            COLUMNS="200",
        )
        self.base_config = self.read_config()
        self.configure(merge(TUNING, tuning or {}))

    # -- parts -------------------------------------------------------------------------

    @property
    def info(self) -> SandboxInfo:
        return self.running.info

    @property
    def work(self) -> Path:
        return Path(self.info.work)

    def stop(self) -> None:
        self.running.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------

    def read_config(self) -> dict[str, Any]:
        return tomllib.loads(Path(self.info.config).read_text(encoding="utf-8"))

    def configure(self, changes: dict[str, Any], *, base: dict[str, Any] | None = None) -> None:
        """Rewrite ``work/hotfix.toml`` as the sandbox's own configuration plus ``changes``."""
        self.write_config(merge(base if base is not None else self.read_config(), changes))

    def write_config(self, data: dict[str, Any]) -> None:
        self.write_config_text(toml_dumps(data))

    def write_config_text(self, text: str | bytes) -> None:
        path = Path(self.info.config)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        os.replace(tmp, path)

    # -- the command -------------------------------------------------------------------

    def start_args(self, *extra: str, pick: str | None = None) -> tuple[str, ...]:
        sha = pick or self.info.fix_sha
        return (
            "start",
            ISSUE,
            DESCRIPTION,
            "--repo",
            str(self.work),
            "--cherry-pick",
            sha,
            "--yes",
            *extra,
        )

    def resume_args(self, ref: str = ISSUE) -> tuple[str, ...]:
        return ("resume", ref, "--take-over", "--yes")

    def spawn(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        lease_ttl: float | None = None,
        cwd: Path | None = None,
    ) -> Proc:
        with self._lock:
            self._n += 1
            stem = self.base / "runs" / f"{self._n:03d}"
        stem.parent.mkdir(exist_ok=True)
        return Proc(
            tuple(args), {**self.env, **(env or {})}, cwd or self.work, stem, lease_ttl=lease_ttl
        )

    def cli(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
    ) -> Result:
        return self.spawn(*args, env=env, cwd=cwd).finish(timeout=timeout)

    def quick(
        self, pool: ForkPool, *args: str, cwd: Path | None = None, timeout: float = 90
    ) -> Result:
        """``hotfix ARGS`` forked from a pre-imported server (for short commands)."""
        with self._lock:
            self._n += 1
            stem = self.base / "runs" / f"{self._n:03d}"
        stem.parent.mkdir(exist_ok=True)
        return pool.run(args, env=self.env, cwd=cwd or self.work, stem=stem, timeout=timeout)

    def fired_failpoints(self) -> list[str]:
        """Failpoints that killed a process since the last call (``phase:point@n``)."""
        if not self.failpoint_log.exists():
            return []
        lines = self.failpoint_log.read_text(encoding="utf-8").splitlines()
        new, self._seen_failpoints = lines[self._seen_failpoints :], len(lines)
        return new

    # -- the store ---------------------------------------------------------------------

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        with _OPEN_LOCK:  # Alembic's migration context is process-global (see _OPEN_LOCK)
            store = open_store(str(self.db))
        try:
            yield store
        finally:
            store.engine.dispose()

    @contextlib.contextmanager
    def store_at(self, db: Path) -> Iterator[Store]:
        with _OPEN_LOCK:
            store = open_store(str(db))
        try:
            yield store
        finally:
            store.engine.dispose()

    def hotfix(self, ref: str = ISSUE) -> Hotfix | None:
        if not self.db.exists():
            return None
        with self.store() as store:
            found = [
                h for h in store.list_hotfixes(include_finished=True) if ref in (h.issue, h.id)
            ]
        return found[0] if found else None

    def journal(self, hotfix_id: str) -> list[JournalEntry]:
        with self.store() as store:
            return store.journal(hotfix_id)

    def effects(self) -> dict[str, Any]:
        return self.running.effects()

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {k: v for k, v in self.env.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd or self.work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"git {args}: {proc.stderr}"
        return proc.stdout


# -- driving through crashes ----------------------------------------------------------------


@dataclass
class Drive:
    """How a hotfix got to its end: every process, the kills, the failpoints that fired."""

    runs: list[Result] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)  # see _passed_beside

    @property
    def kills(self) -> int:
        return sum(1 for r in self.runs if r.killed)

    @property
    def last(self) -> Result:
        return self.runs[-1]


TERMINAL_EXIT = {0, 1}


def _passed_beside(sb: Sandbox, hotfix_id: str, spec: str) -> bool:
    """A gate's ``after_done`` point a sibling gate's kill got to first: the gates run in
    parallel, so the process may die (at another gate's failpoint) after this gate's done row
    committed and before it reached its own point — which then never comes, the gate having
    passed. Only that point, and only with the done row in the journal, is excused."""
    name = spec.rsplit("@", 1)[0]
    if not (name.startswith("gate:") and name.endswith(":after_done")):
        return False
    phase = name.removesuffix(":after_done")
    return any(e.kind == "done" and e.phase == phase for e in sb.journal(hotfix_id))


def drive(
    sb: Sandbox,
    *,
    failpoint_specs: Iterable[str] = (),
    kill_after: Callable[[int], float | None] | None = None,
    first: tuple[str, ...] | None = None,
    prefix: tuple[str, ...] = (),
    max_runs: int = 60,
) -> Drive:
    """Start (or resume) the hotfix until a process exits 0 or 1, surviving every SIGKILL.

    ``failpoint_specs`` are armed in every process until each has fired once; ``kill_after(i)``
    gives the instant (seconds after its start) at which process ``i`` is SIGKILLed, or None.
    """
    pending = list(failpoint_specs)
    result = Drive()
    while len(result.runs) < max_runs:
        i = len(result.runs)
        args = first if (first and i == 0) else None
        if args is None:
            args = sb.resume_args() if sb.hotfix() is not None else sb.start_args()
        env: dict[str, str] = {FAILPOINT_LOG: str(sb.failpoint_log)}
        if pending:
            env[failpoints.ENV] = ",".join(pending)
        run = sb.spawn(*prefix, *args, env=env).finish(
            kill_after=kill_after(i) if kill_after else None
        )
        result.runs.append(run)
        for line in sb.fired_failpoints():
            result.fired.append(line)
            target = line.rsplit("@", 1)[0]
            pending = [s for s in pending if s.rsplit("@", 1)[0] != target]
        if run.killed:
            continue
        assert_no_traceback(run)
        assert run.code in TERMINAL_EXIT, f"the hotfix stopped short of a terminal state:\n{run}"
        hotfix = sb.hotfix()
        assert hotfix is not None, str(run)
        if hotfix.state in ("done", "rolled_back", "cancelled", "failed", "rollback_failed"):
            result.excused = [s for s in pending if _passed_beside(sb, hotfix.id, s)]
            pending = [s for s in pending if s not in result.excused]
            assert not pending, f"failpoints never reached: {pending}\n{run}"
            return result
        raise AssertionError(f"exit {run.code} but the hotfix is {hotfix.state}:\n{run}")
    raise AssertionError(f"no terminal state after {max_runs} processes")


def monitor_rounds(sb: Sandbox) -> int:
    """Monitoring rounds journaled so far."""
    hotfix = sb.hotfix()
    if hotfix is None:
        return 0
    return sum(1 for e in sb.journal(hotfix.id) if e.kind == "measurement" and e.phase == "monitor")
