"""Processes, configuration files, figures and concurrency helpers of the torture suite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# -- figures --------------------------------------------------------------------------------


class Figures:
    """Counters of one pytest run, appended as JSON lines to ``$HOTFIX_TORTURE_FIGURES``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def add(self, kind: str, **values: Any) -> None:
        path = os.environ.get("HOTFIX_TORTURE_FIGURES")
        if not path:
            return
        line = json.dumps({"kind": kind, **values}, sort_keys=True, default=str)
        with self._lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


FIGURES = Figures()


# -- configuration --------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_dumps(data: dict[str, Any], prefix: str = "") -> str:
    """A small TOML writer for configuration data (tables, scalars, lists, inline tables)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        name = f"{prefix}.{json.dumps(key)}" if prefix else json.dumps(key)
        out += f"\n[{name}]\n" + toml_dumps(value, name)
    return out


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, table by table."""
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# -- processes ------------------------------------------------------------------------------


@dataclass
class Result:
    """One finished ``hotfix`` process."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float
    killed: bool = False
    pid: int = 0

    def __str__(self) -> str:
        return (
            f"hotfix {' '.join(self.args)} → exit {self.code} in {self.seconds:.1f}s "
            f"(pid {self.pid})\n"
            f"--- stdout ---\n{self.out[-4000:]}\n--- stderr ---\n{self.err[-4000:]}"
        )


def assert_no_traceback(result: Result) -> None:
    """No Python traceback and no 'unexpected error' (the crash-log path of a bug)."""
    for text in (result.out, result.err):
        assert "Traceback (most recent call last)" not in text, str(result)
        assert "hotfix: unexpected error" not in text, str(result)


# The command exposes no lease-TTL knob (HotfixEngine takes ``lease_ttl``; the CLI always
# uses the default 30 s), so lease-expiry tests run the same ``main()`` with a shorter default.
LEASE_SHIM = """
import functools, os
import hotfix_fsm.engine as engine
engine.HotfixEngine.__init__ = functools.partialmethod(
    engine.HotfixEngine.__init__, lease_ttl=float(os.environ["HOTFIX_TORTURE_LEASE_TTL"])
)
from hotfix_fsm.cli import main
main()
"""


class Proc:
    """A running ``hotfix`` process in its own session, output in files."""

    def __init__(
        self,
        args: tuple[str, ...],
        env: dict[str, str],
        cwd: Path,
        stem: Path,
        *,
        lease_ttl: float | None = None,
    ) -> None:
        self.args = args
        self.out_path, self.err_path = stem.with_suffix(".out"), stem.with_suffix(".err")
        head = ["-m", "hotfix_fsm.cli"]
        if lease_ttl is not None:
            head = ["-c", LEASE_SHIM]
            env = {**env, "HOTFIX_TORTURE_LEASE_TTL": str(lease_ttl)}
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [sys.executable, *head, *args],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, sig)

    def power_cut(self) -> None:
        """SIGKILL the process and everything it started (gates, git), as a dead laptop.

        Never after the process was reaped: its pid (and group id) may belong to another
        process by then.
        """
        if self.popen.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def running(self) -> bool:
        """Still running (an exited process stays unreaped, so its pid stays ours)."""
        if self.popen.returncode is not None:
            return False
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.popen.pid, flags) is None

    def _wait_exit(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.running():
            if time.monotonic() >= end:
                return False
            time.sleep(0.005)
        return True

    def finish(self, *, kill_after: float | None = None, timeout: float = 120) -> Result:
        """Wait for the exit (SIGKILLing it after ``kill_after`` seconds if still running)."""
        killed = False
        if kill_after is not None and not self._wait_exit(kill_after):
            self.power_cut()
            killed = True
        if not self._wait_exit(timeout):
            self.power_cut()
            self.popen.wait()
            raise AssertionError(f"hotfix {' '.join(self.args)} hung for {timeout}s")
        # A failpoint kills only the driver: its children (gates, git) die with it here.
        self.power_cut()
        code = self.popen.wait()
        return Result(
            self.args,
            code,
            self.out_path.read_text(encoding="utf-8", errors="replace"),
            self.err_path.read_text(encoding="utf-8", errors="replace"),
            time.monotonic() - self.started,
            killed=killed or code == -signal.SIGKILL,
            pid=self.popen.pid,
        )


def copy_store(src: Path, dst: Path) -> Path:
    """A consistent single-file copy (WAL folded in) of the SQLite store at ``src``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(src)) as a,
        contextlib.closing(sqlite3.connect(dst)) as b,
    ):
        a.backup(b)
        b.execute("PRAGMA journal_mode = WAL")
    return dst


# -- running trials at once -----------------------------------------------------------------


def parallel(fn: Callable[[T], Any], items: list[T], workers: int = 3) -> None:
    """Run ``fn`` over ``items`` in threads; fail with every error (not only the first)."""
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trial") as pool:
        futures = {pool.submit(fn, item): item for item in items}
        for future, item in futures.items():
            exc = future.exception()
            if exc is not None:
                errors.append(f"--- {item!r}: {type(exc).__name__}: {exc}")
    assert not errors, f"{len(errors)} of {len(items)} trials failed:\n" + "\n".join(errors)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 180) -> None:
    """Poll ``check`` (small sleeps) until true; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# -- many short commands, cheaply ----------------------------------------------------------

# A process that imports the command once, then forks one child per job: each child runs
# ``hotfix_fsm.cli.main(argv)`` — the console script's entry point — in its own process with
# its own cwd, environment, stdout and stderr, and exits with the command's code. It spares
# the interpreter start-up and imports (~0.8 s of CPU) per hostile input; the crash, fault
# and concurrency tests keep ``python -m hotfix_fsm.cli``.
FORK_SERVER = r"""
import json, os, signal, sys, traceback
import hotfix_fsm.cli as cli
for name in ("hotfix_fsm.cli.render", "hotfix_fsm.cli.plan", "hotfix_fsm.reporting.report",
             "hotfix_fsm.phases", "hotfix_fsm.adapters.git", "hotfix_fsm.log"):
    try:
        __import__(name)
    except Exception:
        pass
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setsid()
            os.chdir(job["cwd"])
            os.environ.clear()
            os.environ.update(job["env"])
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            signal.alarm(int(job["timeout"]))
            sys.argv = [cli.__file__, *job["argv"]]
            cli.main(job["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(json.dumps({"code": os.waitstatus_to_exitcode(status)}) + "\n")
    sys.stdout.flush()
"""


class ForkServer:
    """Runs ``hotfix ARGV`` jobs through ``FORK_SERVER``, one at a time (see ``ForkPool``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FORK_SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def run(
        self, argv: tuple[str, ...], *, env: dict[str, str], cwd: Path, stem: Path, timeout: float
    ) -> Result:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        out, err = stem.with_suffix(".out"), stem.with_suffix(".err")
        job = {"argv": list(argv), "env": env, "cwd": str(cwd), "out": str(out), "err": str(err)}
        started = time.monotonic()
        self.proc.stdin.write(json.dumps({**job, "timeout": max(1, int(timeout))}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the fork server died"
        code = int(json.loads(answer)["code"])
        return Result(
            tuple(argv),
            code,
            out.read_text(encoding="utf-8", errors="replace"),
            err.read_text(encoding="utf-8", errors="replace"),
            time.monotonic() - started,
            killed=code == -signal.SIGALRM,
        )

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()


class ForkPool:
    """A few fork servers shared by the threads of ``parallel``."""

    def __init__(self, env: dict[str, str], size: int = 4) -> None:
        import queue

        self._free: queue.Queue[ForkServer] = queue.Queue()
        self._all = [ForkServer(env) for _ in range(size)]
        for server in self._all:
            self._free.put(server)

    def run(
        self, argv: tuple[str, ...], *, env: dict[str, str], cwd: Path, stem: Path, timeout: float
    ) -> Result:
        server = self._free.get()
        try:
            return server.run(argv, env=env, cwd=cwd, stem=stem, timeout=timeout)
        finally:
            self._free.put(server)

    def close(self) -> None:
        for server in self._all:
            server.close()
