"""What the ``hotfix`` command prints, where it goes: outside text sanitised (hostile strings
through every reading command, in a pipe and on a pseudo-terminal), whole values in a pipe,
no escape sequences with ``NO_COLOR`` or off a terminal, units on durations."""

from __future__ import annotations

import io
import itertools
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hotfix_fsm.cli.render import ProgressView
from hotfix_fsm.core.outcome import Event
from hotfix_fsm.core.sanitize import has_control, sanitize
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.reporting.report import fmt_duration, human_time
from hotfix_fsm.store import Entry
from tests.cli.conftest import Cli

_profile = settings.default
EXAMPLES = 25 if _profile is not None and _profile.max_examples >= 100 else 4
_counter = itertools.count()

# What a terminal would obey: title changes, screen clears, colours, bells, C1 CSI,
# bidi overrides, a carriage return faking a line.
FRAGMENTS = [
    "\x1b]2;PWNED\x07",
    "\x1b[2J",
    "\x1b[31m",
    "\x07",
    "\x9b31m",
    "\u202e",
    "\u2066",
    "\r",
    "\x7f",
    "\x08",
    "\x0b",
    "ci/test",
    "[bold]",
    " ",
    "é",
    "|",
]
hostile = st.lists(
    st.sampled_from(FRAGMENTS) | st.characters(min_codepoint=1, max_codepoint=0x2070),
    min_size=1,
    max_size=12,
).map("".join)


def _seed_hotfix(db: Path, text: str, *, issue: str = "INC-7") -> str:
    """A hotfix whose every outside text (description, URLs, branch, check names, health
    answers, pause reason, error) is ``text``; written through the journal writer."""
    hid = f"{issue}-{next(_counter):04d}-{'x' * 40}"
    with HotfixEngine(str(db)) as engine:
        hotfix = engine.writer.create(
            hotfix_id=hid,
            issue=issue,
            description=f"Fix {text}",
            repo=f"/tmp/{text}",
            graph_hash=engine.graph.hash,
            options={"started_by": text, "fix_mode": text},
            context={
                "branch": f"hotfix/{text}",
                "pr_url": f"https://github.example/pr/{text}",
                "deploy_run_url": f"https://github.example/run/{text}",
                "release_tag": f"v1.{text}",
                "time_to_production": 125.0,
                "rollback_target": {"sha": "a" * 40, "tag": text, "recorded_at": 1795993381.9},
            },
        )
        entries = [
            Entry("intent", "push", 1, f"hotfix/{text}", {"driver": text}),
            Entry("done", "push", 1, None, {"facts": {"branch": text, "pushed_sha": text}}),
            Entry("failed", "wait_ci", 1, None, {"error": f"check {text} failed"}),
            Entry(
                "measurement",
                "verify",
                0,
                None,
                {"check": text, "n": 1, "status": 200, "healthy": False, "reason": text},
            ),
            Entry("note", None, 0, None, {"facts": {"ci": {"reason": text}}}),
        ]
        engine.writer.write(hotfix, entries, paused_reason=f"waiting for {text}", error=text)
    return hid


def _bad(text: str) -> bool:
    """Raw control characters (only the tool's newlines and tabs are allowed)."""
    return has_control(text, allow_newlines=True)


def run_pty(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> str:
    """Run the command with stdout and stderr on a pseudo-terminal; what it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hotfix_fsm.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cwd,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=timeout)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


# -- the sanitiser --------------------------------------------------------------------------


@given(st.text())
def test_sanitize_leaves_no_control_character_and_is_idempotent(text: str) -> None:
    shown = sanitize(text)
    assert not has_control(shown, allow_newlines=False)
    assert sanitize(shown) == shown
    kept = sanitize(text, keep_newlines=True)
    assert not has_control(kept, allow_newlines=True)
    assert kept.count("\n") == text.count("\n")


def test_sanitize_shows_what_it_escaped() -> None:
    assert sanitize("ci/test\x1b]2;PWNED\x07") == "ci/test\\x1b]2;PWNED\\x07"
    assert sanitize("a\u202eb\x9bc\x7f") == "a\\u202eb\\x9bc\\x7f"
    assert sanitize("plain text, é, ünïcode ✓") == "plain text, é, ünïcode ✓"


# -- hostile text through the reading commands -----------------------------------------------


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile)
def test_hostile_outside_text_is_never_printed_raw(
    cli: Cli, cli_env: dict[str, str], tmp_path: Path, text: str
) -> None:
    hid = _seed_hotfix(Path(cli_env["HOTFIX_FSM_DB"]), text)
    for args in (
        ("status", hid),
        ("list", "--all"),
        ("log", hid),
        ("report", hid),
        ("status", hid, "--json"),
        ("log", hid, "--json"),
    ):
        result = cli(*args)
        assert result.code == 0, result
        assert not _bad(result.out), (args, result.out)
        assert not _bad(result.err), (args, result.err)
    # On a terminal too (rich tables, styles): only rich's own escape sequences, none of ours.
    shown = run_pty(["status", hid], cli_env, tmp_path)
    assert "PWNED\x07" not in shown
    assert "\x1b]2" not in shown
    assert "\u202e" not in shown


def test_a_known_escape_sequence_shows_escaped(cli: Cli, cli_env: dict[str, str]) -> None:
    hid = _seed_hotfix(Path(cli_env["HOTFIX_FSM_DB"]), "ci/test\x1b]2;PWNED\x07\x1b[2J")
    for args in (("status", hid), ("log", hid), ("report", hid)):
        result = cli(*args)
        assert "\\x1b]2;PWNED\\x07\\x1b[2J" in result.out, (args, result.out)


def test_progress_lines_show_check_names_escaped() -> None:
    stream = io.StringIO()
    view = ProgressView("INC-1-x", live=False, stream=stream)
    name = "ci/test\x1b]2;PWNED\x07\x1b[2J"
    view.on_event(Event("INC-1-x", "progress", "wait_ci", {"message": f"waiting for {name}"}))
    view.on_event(Event("INC-1-x", "failed", "wait_ci", {"error": f"{name} failed"}))
    assert not _bad(stream.getvalue())
    assert "waiting for ci/test\\x1b]2;PWNED\\x07" in stream.getvalue()
    live = ProgressView("INC-1-x", live=True, stream=io.StringIO())
    live.on_event(Event("INC-1-x", "progress", "wait_ci", {"message": f"waiting for {name}"}))
    assert not _bad(live.__rich__().plain)


def _write_config(repo: Path, workflow: str) -> None:
    quoted = json.dumps(workflow).replace("\x7f", "\\u007f")
    (repo / "hotfix.toml").write_text(
        f'[deploy]\nworkflow = {quoted}\n\n[github]\nrepository = "acme/shop"\n',
        encoding="utf-8",
    )


def test_configuration_values_are_shown_escaped(cli: Cli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _write_config(repo, "deploy\x1b]2;PWNED\x07\u202e.yml")
    for args in (
        ("check", "-C", str(repo)),
        ("start", "INC-9", "Fix \x1b[2J it", "-C", str(repo), "--dry-run"),
    ):
        result = cli(*args)
        assert "Traceback" not in result.err, result
        assert not _bad(result.out + result.err), (args, result)
        if args[0] == "start":  # (check names the workflow only when it asks GitHub)
            assert "\\x1b]2;PWNED\\x07\\u202e" in result.out, (args, result.out)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile)
def test_hostile_configuration_and_description_through_check_and_plan(
    cli: Cli, tmp_path: Path, text: str
) -> None:
    repo = tmp_path / f"repo-{next(_counter)}"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _write_config(repo, f"deploy-{text}.yml")
    for args in (
        ("check", "-C", str(repo)),
        ("check", "-C", str(repo), "--json"),
        ("start", "INC-9", f"Fix {text}", "-C", str(repo), "--dry-run"),
        ("start", "INC-9", f"Fix {text}", "-C", str(repo), "--dry-run", "--json"),
    ):
        result = cli(*args)
        assert "Traceback" not in result.err, result
        assert not _bad(result.out + result.err), (args, result)


# -- whole values in a pipe, no escapes without a terminal or with NO_COLOR -------------------


def test_piped_output_holds_whole_values(cli: Cli, cli_env: dict[str, str]) -> None:
    text = "long-branch-" + "b" * 120
    hid = _seed_hotfix(Path(cli_env["HOTFIX_FSM_DB"]), text)
    env = {"COLUMNS": "40"}
    listed = cli("list", "--all", env=env)
    assert "…" not in listed.out
    row = listed.out.splitlines()[0].split("\t")
    assert row[0] == hid, listed.out
    assert len(row) == 4, listed.out
    logged = cli("log", hid, env=env)
    assert f"pushed_sha={text}" in logged.out  # shas whole in a pipe
    assert "…" not in logged.out
    assert f"hotfix/{text}" in logged.out
    assert all(len(line.split("\t")) == 4 for line in logged.out.splitlines()), logged.out
    status = cli("status", hid, env=env)
    assert "…" not in status.out
    assert f"https://github.example/pr/{text}" in status.out
    assert "\x1b" not in listed.out + logged.out + status.out


def test_no_color_means_no_escape_sequences_on_a_terminal(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    hid = _seed_hotfix(Path(cli_env["HOTFIX_FSM_DB"]), "plain")
    styled = run_pty(["status", hid], cli_env, tmp_path)
    assert "\x1b[1m" in styled  # a terminal gets bold ...
    plain = run_pty(["status", hid], {**cli_env, "NO_COLOR": "1"}, tmp_path)
    assert "\x1b[" not in plain, plain  # ... unless NO_COLOR is set
    assert hid in plain


def test_durations_and_times_carry_units(cli: Cli, cli_env: dict[str, str]) -> None:
    assert fmt_duration(41.7) == "41.7 s"
    assert fmt_duration(125) == "2 min 5 s"
    assert fmt_duration(3600 + 180) == "1 h 3 min"
    hid = _seed_hotfix(Path(cli_env["HOTFIX_FSM_DB"]), "units")
    status = cli("status", hid)
    assert "time_to_production: 2 min 5 s" in status.out, status.out
    assert "1795993381" not in status.out
    assert f"recorded_at {human_time(1795993381.9)}" in status.out, status.out
    assert human_time(1795993381.9).endswith(" UTC")


def test_monitoring_lines_show_values_against_thresholds() -> None:
    thresholds = {"error_rate": "ok < 5, fail >= 10", "uptime": "ok >= 99"}
    stream = io.StringIO()
    view = ProgressView("INC-1-x", live=False, stream=stream, thresholds=thresholds)
    round_ = {
        "window": "w",
        "round": 2,
        "values": {"error_rate": 0.4, "uptime": 97.5},
        "verdicts": {"error_rate": "success", "uptime": "failure"},
    }
    view.on_event(Event("INC-1-x", "intent", "monitor", {}))
    view.on_event(Event("INC-1-x", "measurement", "monitor", round_))
    line = "error_rate 0.4 ✓ (ok < 5, fail >= 10), uptime 97.5 ✗ (ok >= 99)"
    assert f"INC-1-x: monitor: round 3: {line}" in stream.getvalue()
    live = ProgressView("INC-1-x", live=True, stream=io.StringIO(), thresholds=thresholds)
    live.on_event(Event("INC-1-x", "intent", "monitor", {}))
    live.on_event(Event("INC-1-x", "measurement", "monitor", round_))
    assert live.__rich__().plain.endswith(line)


def test_log_lines_on_the_terminal_are_sanitised(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hotfix_fsm.cli.command import main
    from hotfix_fsm.log import get_logger, set_console_writer

    monkeypatch.setenv("HOTFIX_FSM_DB", str(tmp_path / "store.db"))
    try:
        with pytest.raises(SystemExit):
            main(["list"])
        get_logger("hotfix_fsm.cli").warning("check ci/test\x1b]2;PWNED\x07 answered 502")
        err = capsys.readouterr().err
    finally:
        set_console_writer(None)
    assert "ci/test\\x1b]2;PWNED\\x07 answered 502" in err
    assert not _bad(err)


def test_log_lines_on_a_terminal_carry_no_escapes_shown_as_text(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A warning the driver logs (here: its lease taken over) reaches a terminal through the
    sanitising echo; structlog must not colour it, or ``\\x1b[2m`` would show as text."""
    script = (
        "import atexit, sys\n"
        "from hotfix_fsm.cli import main\n"
        "from hotfix_fsm.log import get_logger\n"
        "warn = get_logger('hotfix_fsm.durable.lease').warning\n"
        "atexit.register(lambda: warn('lease_lost', hotfix='INC-1-x'))\n"
        "sys.argv = ['hotfix', '--db', sys.argv[1], 'list']\n"
        "main()\n"
    )
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "s.db")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli_env,
        cwd=tmp_path,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert "lease_lost" in shown, shown
    assert "\\x1b" not in shown, shown
