"""Start-up shortcuts of the command change nothing a user sees: a run builds only the verb it
names, and values already of their type skip typer's pydantic coercion with the same result."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click.exceptions import BadParameter

from hotfix_fsm.cli.command import app
from hotfix_fsm.cli.parsing import (
    ROOT_COUNT_OPTIONS,
    ROOT_VALUE_OPTIONS,
    command_for,
    conventional,
    plain_values_skip_pydantic,
    verb_of,
)


def _help(command: Any, args: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as ended:
        conventional(command).main(args=args, prog_name="hotfix")
    assert ended.value.code == 0
    return out.getvalue()


def test_root_options_before_a_verb_are_the_callbacks_own() -> None:
    """A new global option taking a value must be listed, or its value would pass for a verb."""
    root = typer.main.get_command(app)
    taking_value, counting = set(), set()
    for param in root.params:
        if param.param_type_name != "option" or getattr(param, "is_flag", False):
            continue
        target = counting if getattr(param, "count", False) else taking_value
        target.update(param.opts)
    assert taking_value == set(ROOT_VALUE_OPTIONS)
    assert counting == set(ROOT_COUNT_OPTIONS)


@pytest.mark.parametrize(
    ("args", "verb"),
    [
        (["status", "X"], "status"),
        (["--db", "x.db", "-vv", "status"], "status"),
        (["--db=x.db", "--verbose", "list"], "list"),
        (["--db", "status", "list"], "list"),  # "status" is the store's name here
        (["--config", "c.toml", "sandbox", "init"], "sandbox"),
        (["--help", "status"], None),
        (["--version"], None),
        (["statu"], None),
        (["--", "status"], None),
        ([], None),
    ],
)
def test_the_verb_of_an_argv(args: list[str], verb: str | None) -> None:
    verbs = {"status", "list", "sandbox", "start"}
    assert verb_of(args, verbs) == verb


def test_each_verb_built_alone_has_the_help_of_the_whole_command() -> None:
    whole = typer.main.get_command(app)
    verbs = sorted(whole.commands)  # type: ignore[attr-defined]
    assert {"status", "start", "sandbox", "list"} <= set(verbs)
    for verb in verbs:
        alone = command_for(app, [verb, "--help"])
        assert set(alone.commands) == {verb}
        assert _help(alone, [verb, "--help"]) == _help(whole, [verb, "--help"]), verb
    assert set(command_for(app, ["--help"]).commands) == set(verbs)


def _params(verb: str) -> dict[str, Any]:
    command = command_for(app, [verb])
    plain_values_skip_pydantic(command)
    found = {p.name: p for p in command.params}
    found.update({p.name: p for p in command.commands[verb].params})
    return found


def _both(param: Any, value: Any) -> tuple[Any, Any]:
    """The shortcut's result and typer's own coercion's, for the same raw value."""
    from typer._coercion import build_runtime_param

    typer_own = build_runtime_param(param.type_descriptor)
    return (
        param.get_runtime_param().coerce(value, param=param, ctx=None),
        typer_own.coerce(value, param=param, ctx=None),
    )


@pytest.mark.parametrize(
    ("verb", "name", "value"),
    [
        ("start", "repo", "some/dir"),
        ("start", "repo", Path(".")),
        ("start", "repo", ""),
        ("start", "patch", "fix.patch"),
        ("start", "config", "~/hotfix.toml"),
        ("start", "cherry_pick", ("abc", "def")),
        ("start", "cherry_pick", ()),
        ("start", "issue", "INC-1"),
        ("start", "verbose", 2),
        ("start", "yes", True),
        ("status", "interval", 1.0),
        ("status", "interval", 0.05),
        ("status", "interval", "0.5"),
    ],
)
def test_values_skipping_pydantic_come_out_as_typer_makes_them(
    verb: str, name: str, value: Any
) -> None:
    mine, theirs = _both(_params(verb)[name], value)
    assert mine == theirs
    assert type(mine) is type(theirs)


def test_a_bounded_number_out_of_bounds_gets_typers_own_error() -> None:
    param = _params("status")["interval"]
    with pytest.raises(BadParameter, match=r"greater than or equal to 0\.05"):
        param.get_runtime_param().coerce(0.01, param=param, ctx=None)
