"""Bad input through the real command: every case of ``hostile_inputs`` gets a clear error or
safe handling, no traceback, and nothing runs that the user did not configure (a canary file
named in shell syntax never appears)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.errors import ExitCode
from tests.torture.harness import FIGURES, ForkPool, Result, parallel
from tests.torture.hostile_inputs import (
    ARG_CASES,
    CONFIG_CASES,
    LITERAL_ARGS,
    SHELLISH,
    ArgCase,
    ConfigCase,
)
from tests.torture.sandbox import ISSUE, Sandbox

Factory = Callable[..., Sandbox]
EXIT: dict[str, set[int]] = {
    "refused": {int(ExitCode.USAGE)},
    "failed": {int(ExitCode.FAILED)},
    "handled": set(range(5)),
}


@dataclass
class Places:
    """The values of the corpus placeholders for one test."""

    values: dict[str, str]

    @property
    def canary(self) -> Path:
        return Path(self.values["canary"])

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            for key, real in self.values.items():
                value = value.replace("{" + key + "}", real)
            return value
        if isinstance(value, list | tuple):
            return type(value)(self.fill(v) for v in value)
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value


def places(tmp_path: Path, sb: Sandbox) -> Places:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    (scratch / "notes.txt").write_text("not a repository, not a patch, not a database\n" * 20)
    (scratch / "bad.toml").write_bytes(b'remote = "\xff\xfe"\n')
    (scratch / "escape.patch").write_text(
        "diff --git a/../../escaped.txt b/../../escaped.txt\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/../../escaped.txt\n@@ -0,0 +1 @@\n+escaped\n"
    )
    (scratch / "binary.patch").write_bytes(os.urandom(4096))
    return Places(
        {
            "canary": str(tmp_path / "canary-XYZ"),
            "work": str(sb.work),
            "tmp": str(scratch),
            "fix": sb.info.fix_sha,
            "file": str(scratch / "notes.txt"),
            "badutf8": str(scratch / "bad.toml"),
            "patch_escape": str(scratch / "escape.patch"),
            "patch_binary": str(scratch / "binary.patch"),
        }
    )


def problems(
    name: str, result: Result, expect: str, words: tuple[str, ...], secret: str | None, p: Places
) -> list[str]:
    """What is wrong with how the command handled one hostile input (empty: all good)."""
    out: list[str] = []
    text = result.out + result.err
    if result.killed or result.code not in EXIT[expect]:
        out.append(f"exit {result.code}, expected {expect}")
    if "Traceback (most recent call last)" in text:
        out.append("a traceback was printed")
    if "unexpected error" in text or "likely a bug" in text:
        out.append("an unexpected error (a bug path) was reported")
    for word in words:
        if p.fill(word).lower() not in text.lower():
            out.append(f"the message does not mention {word!r}")
    if secret and secret in text:
        out.append("a secret was printed")
    if "\x1b" in text or "\x07" in text:
        out.append("a raw terminal control character from the input was printed")
    if p.canary.exists():
        out.append("THE CANARY EXISTS: something ran a shell")
    return [f"{name}: {o}\n    {str(result)[:1500]}" for o in out]


@pytest.fixture
def paused(sandboxes: Factory) -> Sandbox:
    sb = sandboxes("paused")
    result = sb.cli(*sb.start_args()[:-1])  # without --yes: waits at the deploy approval
    assert result.code == ExitCode.PAUSED, str(result)
    return sb


def _run_arg_case(case: ArgCase, sb: Sandbox, p: Places, found: list[str], forks: ForkPool) -> None:
    argv = p.fill(case.argv)
    result = sb.quick(forks, *argv, cwd=Path(p.values["tmp"]), timeout=90)
    found.extend(problems(case.name, result, case.expect, case.words, case.secret, p))


def test_hostile_cli_arguments(
    paused: Sandbox, sandboxes: Factory, tmp_path: Path, forks: ForkPool
) -> None:
    p = places(tmp_path, paused)
    found: list[str] = []
    shared = [c for c in ARG_CASES if not c.own_sandbox and not c.bug]
    parallel(lambda c: _run_arg_case(c, paused, p, found, forks), shared, workers=4)

    def isolated(case: ArgCase) -> None:
        sb = sandboxes(f"arg-{case.name.replace(':', '-')}")
        q = Places({**p.values, "work": str(sb.work), "fix": sb.info.fix_sha})
        _run_arg_case(case, sb, q, found, forks)
        status = sb.git("status", "--porcelain")
        if status:
            found.append(f"{case.name}: the work tree was left dirty:\n{status}")

    parallel(isolated, [c for c in ARG_CASES if c.own_sandbox and not c.bug], workers=4)
    # The paused hotfix is exactly as it was: no hostile ref approved, aborted or resumed it.
    hotfix = paused.hotfix()
    assert hotfix is not None
    assert hotfix.state == "awaiting_deploy_approval"
    assert not [e for e in paused.journal(hotfix.id) if e.kind == "approval"]
    assert not p.canary.exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path.parent / "escaped.txt").exists()
    tried = sum(1 for c in ARG_CASES if not c.bug)
    FIGURES.add("inputs", category="cli", tried=tried, problems=len(found))
    assert not found, f"{len(found)} hostile arguments mishandled:\n" + "\n".join(found)


def _run_config_case(
    case: ConfigCase, sandboxes: Factory, tmp_path: Path, found: list[str], forks: ForkPool
) -> None:
    sb = sandboxes(f"cfg-{case.name.replace(':', '-')}")
    p = places(tmp_path, sb)
    if case.raw is not None:
        sb.write_config_text(case.raw)
    else:
        sb.configure(p.fill(case.change))
    result = sb.quick(forks, *sb.start_args(), timeout=90)
    found.extend(problems(case.name, result, case.expect, case.words, None, p))


def test_hostile_configuration(sandboxes: Factory, tmp_path: Path, forks: ForkPool) -> None:
    found: list[str] = []
    cases = [c for c in CONFIG_CASES if not c.bug]
    parallel(lambda c: _run_config_case(c, sandboxes, tmp_path, found, forks), cases, workers=4)
    assert not Path(tmp_path / "canary-XYZ").exists()
    FIGURES.add("inputs", category="config", tried=len(cases), problems=len(found))
    assert not found, f"{len(found)} hostile configurations mishandled:\n" + "\n".join(found)


def test_configured_values_reach_programs_literally(sandbox: Sandbox, tmp_path: Path) -> None:
    """Shell syntax in a configured gate command, a workflow input and the description are
    passed as literal argv / strings through a full hotfix: nothing is expanded or run."""
    sb = sandbox
    p = places(tmp_path, sb)
    argv_file = tmp_path / "argv.json"
    record = "import json, sys; json.dump(sys.argv[2:], open(sys.argv[1], 'w'))"
    literal = p.fill(LITERAL_ARGS)
    note = p.fill(" ".join(SHELLISH))
    description = p.fill("Fix `touch {canary}` $(touch {canary}); and \x1b[31mred\x1b[0m\nline two")
    sb.configure(
        {
            "gates": {
                "tests": {"command": [sys.executable, "-c", record, str(argv_file), *literal]}
            },
            "deploy": {"inputs": {"note": note}},
        }
    )
    result = sb.cli(
        "start",
        ISSUE,
        description,
        "--repo",
        str(sb.work),
        "--cherry-pick",
        sb.info.fix_sha,
        "--yes",
    )
    assert result.code == ExitCode.OK, str(result)
    effects = sb.effects()
    received = json.loads(argv_file.read_text())
    # Each configured value (the gate's arguments, the workflow input, the description)
    # that did not arrive literally, or that ran as shell.
    found = [
        f"gate argument {a!r} arrived as {b!r}"
        for a, b in zip(literal, received, strict=False)
        if a != b
    ]
    if len(received) != len(literal):
        found.append(f"the gate got {len(received)} arguments, not {len(literal)}")
    if effects["dispatches"][0]["inputs"]["note"] != note:
        found.append(f"the deploy input became {effects['dispatches'][0]['inputs']['note']!r}")
    if "$(touch" not in effects["pull_requests"][0]["title"]:
        found.append(f"the PR title became {effects['pull_requests'][0]['title']!r}")
    if p.canary.exists():
        found.append("the canary file was created: something ran a shell")
    FIGURES.add("inputs", category="literal", tried=len(literal) + 2, problems=len(found))
    assert not found, "\n".join(found)
    for args in (("status", ISSUE), ("list", "--all"), ("log", ISSUE), ("report", ISSUE)):
        shown = sb.cli(*args)
        assert shown.code == ExitCode.OK, str(shown)
        assert "Traceback" not in shown.err
    assert not p.canary.exists()


def _xfail(bug: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG (reported): {bug}")


if any(c.bug for c in ARG_CASES):  # (none open right now)

    @pytest.mark.parametrize(
        "case", [pytest.param(c, id=c.name, marks=_xfail(c.bug)) for c in ARG_CASES if c.bug]
    )
    def test_known_bug_argument(
        case: ArgCase, sandbox: Sandbox, tmp_path: Path, forks: ForkPool
    ) -> None:
        p = places(tmp_path, sandbox)
        found: list[str] = []
        _run_arg_case(case, sandbox, p, found, forks)
        FIGURES.add("inputs", category="cli", tried=1, problems=len(found))
        assert not found, "\n".join(found)


if any(c.bug for c in CONFIG_CASES):  # (none open right now)

    @pytest.mark.parametrize(
        "case", [pytest.param(c, id=c.name, marks=_xfail(c.bug)) for c in CONFIG_CASES if c.bug]
    )
    def test_known_bug_configuration(
        case: ConfigCase, sandboxes: Factory, tmp_path: Path, forks: ForkPool
    ) -> None:
        found: list[str] = []
        _run_config_case(case, sandboxes, tmp_path, found, forks)
        FIGURES.add("inputs", category="config", tried=1, problems=len(found))
        assert not found, "\n".join(found)


def test_description_control_characters_are_not_printed_raw(sandbox: Sandbox) -> None:
    """A description with ESC/BEL, on a hotfix paused at its fix: the inspection commands
    show it escaped (a teammate's terminal on a shared store must not obey it)."""
    sb = sandbox
    description = "Fix\x1b]0;owned\x07 \x1b[2J\x1b[31mred"
    paused = sb.cli("start", ISSUE, description, "--repo", str(sb.work))
    assert paused.code == ExitCode.PAUSED, str(paused)
    raw = []
    commands = (("status", ISSUE), ("list",), ("log", ISSUE), ("report", ISSUE))
    for args in commands:
        shown = sb.cli(*args)
        assert "Traceback" not in shown.err
        if "\x1b" in shown.out + shown.err or "\x07" in shown.out + shown.err:
            raw.append(args[0])
    FIGURES.add("inputs", category="cli", tried=len(commands), problems=len(raw))
    assert raw == [], f"raw control characters printed by: {raw}"
