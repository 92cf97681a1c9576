"""run_logged / run_captured against real subprocesses."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from hotfix_fsm.adapters.commands import CommandNotFound, run_captured, run_logged
from hotfix_fsm.core.redact import register_secret


def py(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def pid_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def wait_gone(pid: int, deadline: float = 120.0) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if pid_gone(pid):
            return True
        time.sleep(0.02)
    return False


def test_output_and_exit_code_are_captured_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "gate.log"
    result = run_logged(
        py("import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"),
        cwd=tmp_path,
        log_path=log,
        timeout=30,
    )
    assert result.exit_code == 3
    assert not result.ok
    assert not result.timed_out
    text = log.read_text()
    assert "out\n" in text
    assert "err\n" in text
    assert "# exit code: 3" in text
    assert set(result.tail_lines(5).splitlines()) == {"out", "err"}


def test_megabytes_of_output_do_not_block(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    code = (
        "import sys\n"
        "for i in range(60000):\n"
        "    sys.stdout.write('line %06d ' % i + 'x' * 100 + '\\n')\n"
        "sys.stderr.write('THE END\\n')\n"
    )
    result = run_logged(py(code), cwd=tmp_path, log_path=log, timeout=120)
    assert result.ok
    assert result.output_bytes > 6_000_000
    assert log.stat().st_size > 6_000_000
    assert "line 059999" in log.read_text()
    assert result.tail_lines(1) == "THE END"


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(120)\n"
    )
    started = time.monotonic()
    result = run_logged(
        py(code, str(pid_file)), cwd=tmp_path, log_path=tmp_path / "h.log", timeout=1.0
    )
    assert result.timed_out
    assert result.exit_code is None
    assert not result.ok
    assert time.monotonic() - started < 60
    assert "started" in result.tail
    assert wait_gone(int(pid_file.read_text()))


def test_a_silent_hang_still_times_out(tmp_path: Path) -> None:
    result = run_logged(
        py("import time; time.sleep(120)"), cwd=tmp_path, log_path=tmp_path / "s.log", timeout=0.3
    )
    assert result.timed_out
    assert "timed out" in (tmp_path / "s.log").read_text()


def test_background_child_holding_the_pipe_does_not_hang_the_gate(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    code = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "open(sys.argv[1], 'w').write(str(child.pid))\n"
        "print('done')\n"
    )
    result = run_logged(
        py(code, str(pid_file)),
        cwd=tmp_path,
        log_path=tmp_path / "b.log",
        timeout=60,
        drain_grace=0.2,
    )
    assert result.ok
    assert wait_gone(int(pid_file.read_text()))


def test_missing_executable_is_named(tmp_path: Path) -> None:
    with pytest.raises(CommandNotFound) as err:
        run_logged(
            ["no-such-tool-for-hotfix-tests", "--flag"],
            cwd=tmp_path,
            log_path=tmp_path / "m.log",
            timeout=5,
        )
    assert err.value.executable == "no-such-tool-for-hotfix-tests"
    assert "not found" in err.value.reason


def test_non_executable_file_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(CommandNotFound) as err:
        run_captured([str(script)], cwd=tmp_path, timeout=5)
    assert "permission denied" in err.value.reason


def test_stop_event_kills_the_command(tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    try:
        result = run_logged(
            py("import time; time.sleep(120)"),
            cwd=tmp_path,
            log_path=tmp_path / "x.log",
            timeout=60,
            stop_event=stop,
        )
    finally:
        timer.cancel()
    assert result.stopped
    assert not result.ok


def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = [f"a; touch {marker}", "$(id)", "`id`", "x && y", "*", "'quoted'"]
    result = run_captured(
        py("import sys; print(repr(sys.argv[1:]))", *hostile), cwd=tmp_path, timeout=30
    )
    assert result.ok
    assert result.stdout.strip() == repr(hostile)
    assert not marker.exists()


def test_registered_secrets_are_masked_in_the_log(tmp_path: Path) -> None:
    secret = "s3cr3t-token-for-gate-logs"
    register_secret(secret)
    log = tmp_path / "secret.log"
    result = run_logged(py(f"print('token={secret}')"), cwd=tmp_path, log_path=log, timeout=30)
    assert result.ok
    assert secret not in log.read_text()
    assert secret not in result.tail


def test_secrets_in_a_line_longer_than_a_chunk_are_masked(tmp_path: Path) -> None:
    """A 600 kB line (no newline) is written in pieces; no piece splits a secret, which
    redacting the halves would leave unmasked, and a multi-byte character survives."""
    secret = "Zq8v-X2kL.m4Pw~Yt7Rb"  # 65 bytes a unit: pieces of 64 KiB cut inside
    shaped = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    register_secret(secret)
    log = tmp_path / "long.log"
    code = f"import sys; sys.stdout.write(' {secret} {shaped} é' * 10000)"
    result = run_logged(py(code), cwd=tmp_path, log_path=log, timeout=60)
    assert result.ok
    text = log.read_text(encoding="utf-8")
    assert secret not in text
    assert shaped not in text
    body = text.split("\n")[2]  # after the command and cwd lines
    assert body == " *** *** é" * 10000
    assert secret not in result.tail
    assert shaped not in result.tail


def test_run_captured_times_out_and_feeds_stdin(tmp_path: Path) -> None:
    echoed = run_captured(
        py("import sys; print(sys.stdin.read().upper())"),
        cwd=tmp_path,
        timeout=30,
        input=b"hello; $(id)",
    )
    assert echoed.stdout.strip() == "HELLO; $(ID)"
    slow = run_captured(py("import time; time.sleep(120)"), cwd=tmp_path, timeout=0.3)
    assert slow.timed_out
    assert slow.returncode is None
