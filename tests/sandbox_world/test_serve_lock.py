"""`hotfix sandbox serve`: one server per directory, and only its own keys in hotfix.toml."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.config import load_config
from hotfix_fsm.errors import ExitCode, UsageError
from hotfix_fsm.sandbox.serve import LOCK_FILE, serve_sandbox
from hotfix_fsm.sandbox.world import OWNED_KEYS, SandboxInfo, build_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def info(tmp_path: Path) -> SandboxInfo:
    return build_sandbox(tmp_path / "sb")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTFIX_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


class Server:
    """`hotfix sandbox serve DIR` as a real process, up once it printed its banner."""

    def __init__(self, root: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotfix_fsm.cli", "sandbox", "serve", root],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert self.proc.stdout is not None
        self.banner: list[str] = []
        for line in self.proc.stdout:  # ends (and fails below) if the server dies first
            self.banner.append(line)
            if "press Ctrl-C" in line:
                break
        assert self.banner, "the server printed nothing"
        assert "press Ctrl-C" in self.banner[-1], self.banner

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.communicate(timeout=60)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.close(signal.SIGKILL)


def serve_cli(root: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotfix_fsm.cli", "sandbox", "serve", root],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )


def lock_of(info: SandboxInfo) -> dict[str, Any]:
    text = (Path(info.root) / LOCK_FILE).read_text(encoding="utf-8")
    data = json.loads(text) if text.strip() else {}
    assert isinstance(data, dict)
    return data


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_second_serve_is_refused_and_a_dead_servers_lock_is_taken_over(
    info: SandboxInfo, servers: list[Server]
) -> None:
    first = Server(info.root)
    servers.append(first)
    config, state = Path(info.config), Path(info.root) / "sandbox.json"
    held = lock_of(info)
    assert held["pid"] == first.pid
    before = (digest(config), digest(state))

    second = serve_cli(info.root)
    assert second.returncode == ExitCode.USAGE, second
    assert "Traceback" not in second.stderr
    assert f"already served by process {first.pid}" in second.stderr, second.stderr
    assert held["github_url"] in second.stderr
    assert held["production_url"] in second.stderr
    assert f"kill {first.pid}" in second.stderr
    assert (digest(config), digest(state)) == before  # nothing rewritten
    with urllib.request.urlopen(f"{held['production_url']}/health", timeout=10) as resp:
        assert resp.status == 200  # the first server still serves

    first.close(signal.SIGKILL)
    assert not pid_alive(first.pid)
    assert lock_of(info)["pid"] == first.pid  # a stale lock: its process is dead

    third = Server(info.root)
    servers.append(third)
    taken = lock_of(info)
    assert taken["pid"] == third.pid
    assert taken["github_url"] == json.loads(state.read_text())["github_url"]
    third.close(signal.SIGTERM)
    assert third.proc.returncode == 0, third.proc.stderr
    assert lock_of(info) == {}  # released: nobody serves the directory


USER_TOP = "# Our drill settings — keep them (a comment serve must not drop).\n"


def _edit_like_a_user(info: SandboxInfo) -> dict[str, Any]:
    """Comments, a changed value with its own comment, a wrong token and a removed key."""
    path = Path(info.config)
    text = path.read_text(encoding="utf-8")
    assert "\nduration = 3\n" in text
    text = USER_TOP + text.replace("\nduration = 3\n", "\nduration = 7  # long enough to watch\n")
    text = text.replace(f'token = "{info.token}"', 'token = "sandbox-typo"  # pasted by hand')
    verify_url = f'url = "{info.health_url}"\n'
    assert verify_url in text
    text = text.replace(verify_url, "")
    path.write_text(text, encoding="utf-8")
    return tomllib.loads(text)


def _without_owned(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for table, key in OWNED_KEYS:
        out.get(table, {}).pop(key, None)
    return out


def test_serve_sets_only_its_own_keys_and_keeps_the_users(info: SandboxInfo) -> None:
    edited = _edit_like_a_user(info)
    path = Path(info.config)
    with socket.socket() as blocker:  # the old port is taken: serve moves, hotfix.toml follows
        blocker.bind(("127.0.0.1", info.github_port))
        blocker.listen()
        with serve_sandbox(info.root) as running:
            github_url, health = running.urls["github"], running.urls["health"]
            assert github_url != f"http://127.0.0.1:{info.github_port}"
            text = path.read_text(encoding="utf-8")
            after = tomllib.loads(text)
            assert after["github"]["api_url"] == github_url
            assert after["github"]["token"] == info.token
            assert after["verify"]["url"] == health
            assert _without_owned(after) == _without_owned(edited)
            assert text.startswith(USER_TOP)
            assert "\nduration = 7  # long enough to watch\n" in text
            assert f'token = "{info.token}"  # pasted by hand' in text
            notes = " ".join(running.config_notes)
            assert "github.api_url" in notes, notes
            assert "verify.url" in notes, notes
            assert load_config(info.work).github.api_url == github_url

            with pytest.raises(UsageError, match=f"already served by process {os.getpid()}"):
                serve_sandbox(info.root)
            assert path.read_text(encoding="utf-8") == text
    kept = path.read_bytes()
    with serve_sandbox(info.root) as again:  # the same ports: nothing to change
        assert again.urls["github"] == github_url
        assert "up to date" in " ".join(again.config_notes)
    assert path.read_bytes() == kept


def test_serve_leaves_a_file_it_cannot_edit_safely_and_says_what_to_set(
    info: SandboxInfo,
) -> None:
    path = Path(info.config)
    broken = path.read_text(encoding="utf-8") + "\n[monitor]\nduration = 9\n"  # a second table
    path.write_text(broken, encoding="utf-8")
    with serve_sandbox(info.root) as running:
        notes = " ".join(running.config_notes)
        assert "not valid TOML" in notes, notes
        assert "left as it is" in notes, notes
        assert f'github.api_url = "{running.urls["github"]}"' in notes
    assert path.read_text(encoding="utf-8") == broken

    dotted = 'remote = "origin"\ngithub.api_url = "http://127.0.0.1:1"\n'
    path.write_text(dotted, encoding="utf-8")
    with serve_sandbox(info.root) as running:
        assert "could not be updated safely" in " ".join(running.config_notes)
    assert path.read_text(encoding="utf-8") == dotted


def test_serve_writes_a_missing_hotfix_toml_whole(info: SandboxInfo) -> None:
    Path(info.config).unlink()
    with serve_sandbox(info.root) as running:
        assert load_config(info.work).github.api_url == running.urls["github"]
        assert any("wrote" in note for note in running.config_notes)
