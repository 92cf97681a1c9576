"""Run argv commands with a deadline: gates (output to a log file) and git (output captured).

Every command runs in its own process group, so a timeout kills the command *and* whatever
it started (a test runner's workers, a build's compilers). Nothing runs through a shell:
``argv[0]`` is looked up on ``PATH`` and every other item is passed verbatim, so a ``;`` or
``$(…)`` in an argument is just those characters.

``run_logged`` reads the merged stdout/stderr with a selector in the calling thread, so
megabytes of output never fill a pipe and block the child, and a deadline holds even when
the command prints nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from hotfix_fsm.core.redact import redact, secret_spans

_CHUNK = 65536
_TAIL_CHARS = 32768
# Kept back when a line longer than a chunk must be written in pieces: longer than any token
# or webhook URL, so a secret that starts before the cut has wholly arrived.
_HOLD = 4096
_POLL = 0.2


class CommandNotFound(Exception):
    """``argv[0]`` does not exist or cannot be executed."""

    def __init__(self, executable: str, reason: str) -> None:
        super().__init__(f"{executable}: {reason}")
        self.executable = executable
        self.reason = reason


@dataclass(frozen=True)
class CommandResult:
    """What ``run_logged`` saw. ``exit_code`` is None when the command was killed."""

    argv: tuple[str, ...]
    exit_code: int | None
    duration_s: float
    timed_out: bool
    stopped: bool
    tail: str
    log_path: Path
    output_bytes: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.stopped

    def tail_lines(self, count: int = 20) -> str:
        return "\n".join(self.tail.rstrip("\n").splitlines()[-count:])


@dataclass(frozen=True)
class Captured:
    """What ``run_captured`` saw (text decoded as UTF-8, invalid bytes replaced)."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if sig == signal.SIGKILL:
            break
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; members that ignored SIGTERM still get SIGKILL.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(grace, 1.0))


def _spawn(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None,
    *,
    stdin: int,
    stderr: int,
) -> subprocess.Popen[bytes]:
    if not argv or not argv[0]:
        raise CommandNotFound("", "the command is empty")
    try:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError as exc:
        if not cwd.is_dir():
            raise CommandNotFound(argv[0], f"the working directory {cwd} does not exist") from exc
        raise CommandNotFound(argv[0], "no such executable (not found on PATH)") from exc
    except PermissionError as exc:
        raise CommandNotFound(argv[0], "it is not executable (permission denied)") from exc
    except (NotADirectoryError, OSError) as exc:
        raise CommandNotFound(argv[0], exc.strerror or str(exc)) from exc


class _LogSink:
    """Writes output to the log a line at a time, redacted, and keeps the tail.

    A line longer than a chunk is written in pieces, each cut outside every secret
    (``secret_spans``): redacting the two halves of a split token would mask neither.
    """

    def __init__(self, fh: TextIO, redactor: Callable[[str], str]) -> None:
        self._fh = fh
        self._redact = redactor
        # Decoded incrementally: a UTF-8 character split between two reads stays whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.tail = ""
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self._pending += self._decoder.decode(data)
        cut = self._pending.rfind("\n") + 1
        if not cut:
            if len(self._pending) < _CHUNK:
                return
            cut = _safe_cut(self._pending, len(self._pending) - _HOLD)
        self._emit(self._pending[:cut])
        self._pending = self._pending[cut:]

    def close(self) -> None:
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            self._emit(self._pending)
            self._pending = ""

    def _emit(self, raw: str) -> None:
        text = self._redact(raw)
        self._fh.write(text)
        self.tail = (self.tail + text)[-_TAIL_CHARS:]


def _safe_cut(text: str, cut: int) -> int:
    """The largest cut at or before ``cut`` that splits no secret of ``text``.

    Only a single match longer than the whole chunk (a megabyte "token") leaves no such cut;
    it is then written whole, masked as far as it has arrived.
    """
    spans = secret_spans(text)
    moved = True
    while moved:
        moved = False
        for start, end in spans:
            if start < cut < end:
                cut, moved = start, True
    return cut if cut > 0 else len(text)


def run_logged(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    log_path: str | os.PathLike[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    stop_event: threading.Event | None = None,
    kill_grace: float = 2.0,
    drain_grace: float = 1.0,
    redactor: Callable[[str], str] = redact,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` with a deadline; full output (stdout+stderr) to ``log_path``.

    Args:
        timeout: seconds before the process group is killed (``timed_out`` is then True).
        stop_event: when set (the driver lost its lease), the command is killed at once.
        drain_grace: after the command exits, how long to keep reading output that a
            background child still writes before the group is killed.

    Raises:
        CommandNotFound: ``argv[0]`` cannot be executed (nothing ran).
    """
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(cwd)
    start = time.monotonic()
    deadline = start + timeout
    with open(log, "w", encoding="utf-8", errors="replace") as fh:
        fh.write(f"# command: {redactor(repr(list(argv)))}\n# cwd: {workdir}\n")
        fh.flush()
        sink = _LogSink(fh, redactor)
        proc = _spawn(argv, workdir, env, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        timed_out = stopped = False
        exited_at: float | None = None
        if proc.stdout is None:  # pragma: no cover - Popen contract with stdout=PIPE
            raise RuntimeError("no pipe to read the command's output from")
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if now >= deadline:
                    timed_out = True
                    break
                if stop_event is not None and stop_event.is_set():
                    stopped = True
                    break
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at >= drain_grace:
                    break  # a background child holds the pipe open; stop reading
                if not selector.select(min(_POLL, deadline - now)):
                    continue
                try:
                    data = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    break
                sink.feed(data)
        # Kill the group: on timeout/stop the command itself, else leftover children.
        if timed_out or stopped:
            kill_group(proc, kill_grace)
        else:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                kill_group(proc, kill_grace)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
        sink.close()
        duration = time.monotonic() - start
        exit_code = None if (timed_out or stopped) else proc.returncode
        fh.write(
            f"\n# exit code: {exit_code}, duration: {duration:.2f}s"
            f"{', timed out' if timed_out else ''}{', stopped' if stopped else ''}\n"
        )
    return CommandResult(
        argv=tuple(argv),
        exit_code=exit_code,
        duration_s=round(duration, 3),
        timed_out=timed_out,
        stopped=stopped,
        tail=sink.tail,
        log_path=log,
        output_bytes=sink.size,
    )


def run_captured(
    argv: Sequence[str],
    *,
    cwd: str | os.PathLike[str],
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    kill_grace: float = 2.0,
) -> Captured:
    """Run ``argv`` and capture stdout and stderr, killing its process group on timeout.

    Raises:
        CommandNotFound: ``argv[0]`` cannot be executed.
    """
    start = time.monotonic()
    proc = _spawn(
        argv,
        Path(cwd),
        env,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    timed_out = False
    with proc:
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc, kill_grace)
            try:
                out, err = proc.communicate(timeout=kill_grace)
            except subprocess.TimeoutExpired:  # a child outside the group holds the pipes
                out, err = b"", b""
    return Captured(
        argv=tuple(argv),
        returncode=None if timed_out else proc.returncode,
        stdout=out.decode("utf-8", errors="replace"),
        stderr=err.decode("utf-8", errors="replace"),
        timed_out=timed_out,
        duration_s=round(time.monotonic() - start, 3),
    )
