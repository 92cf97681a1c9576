"""How the command parses and shows its arguments: conventional help, and typer's pydantic
coercion skipped where a value already has its type (it costs more than the rest of
``hotfix status``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer


def conventional(command: Any) -> Any:
    """Help as Unix tools print it: ``hotfix start [OPTIONS] ISSUE DESCRIPTION`` and
    ``ISSUE  The incident...`` (typer would print ``{ISSUE}`` and ``ISSUE <str>``)."""
    for param in command.params:
        if isinstance(param, typer.core.TyperArgument):
            name = param.metavar = param.metavar or (param.name or "").upper()
            shown = name if param.required else f"[{name}]"
            # Instance attributes: typer's help and usage read these of each argument.
            setattr(param, "_usage_display_name", lambda shown=shown: shown)  # noqa: B010
            setattr(param, "display_type_rich", lambda ctx=None: None)  # noqa: B010
        elif isinstance(param, typer.core.TyperOption) and _takes_value(param):
            # ``--port PORT`` and ``--check CHECK`` rather than ``<int>`` and ``<list[str]>``.
            param.metavar = param.metavar or (param.name or "value").upper()
    if isinstance(command, typer.core.TyperGroup):
        for sub in command.commands.values():
            conventional(sub)
    return command


def _takes_value(option: Any) -> bool:
    return not (option.is_flag or option.count or option.is_bool_flag)


def plain_values_skip_pydantic(command: object) -> None:
    """Let parameters already holding a value of their type skip typer's pydantic coercion.

    typer coerces every parameter through a pydantic ``TypeAdapter``, and importing pydantic
    costs about what everything else ``hotfix status`` does. A parameter left unset, a
    ``str`` parameter given a string, a flag or counter click already made a bool or an int,
    or a bounded number already of its type and inside its bounds (an unset ``--interval``'s
    default), needs no coercion: typer's own would return it unchanged. Those are passed
    through, and so is a ``list[str]`` option's tuple of texts (as the list typer makes of
    it). A path given as text goes to typer's own path checks as the ``Path`` pydantic
    would have made of it (``Path(text)``). Any other value (a number typed as text or out of
    its bounds, a custom parser) goes to typer's own coercion, so its checks and messages are
    unchanged.
    If typer's internals move, nothing is changed and typer coerces everything as before.
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
        from typer._param_types import coerce_cli_path
        from typer.core import _TyperParameter
    except ImportError:  # pragma: no cover - a typer without these internals
        return
    from dataclasses import dataclass
    from types import NoneType, UnionType
    from typing import Union, get_args, get_origin

    @dataclass(frozen=True)
    class _PassIfTyped(RuntimeParam):
        types: tuple[type, ...]
        descriptor: Any
        low: Any = None
        high: Any = None
        path_type: Any = None
        texts: bool = False  # a list[str] option, given texts

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.texts:
                if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                    return list(value)
            elif self.path_type is not None and isinstance(value, str | Path):
                # typer's own path checks, given the Path pydantic would have made of a text.
                return coerce_cli_path(
                    value if isinstance(value, Path) else self.path_type(value),
                    self.parameter_info,
                    path_type=self.path_type,
                    param=param,
                    ctx=ctx,
                )
            elif (
                isinstance(value, self.types)
                and not (isinstance(value, bool) and bool not in self.types)
                and (self.low is None or value >= self.low)
                and (self.high is None or value <= self.high)
            ):
                return value
            return build_runtime_param(self.descriptor)._coerce_value(value, param, ctx)

    def plain_types(annotation: Any) -> tuple[type, ...]:
        if get_origin(annotation) in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            annotation = members[0] if len(members) == 1 else None
        if isinstance(annotation, type) and get_origin(annotation) is None:
            return (annotation,)
        return ()

    def lighten(param: Any) -> None:
        if not isinstance(param, _TyperParameter):
            return
        desc = getattr(param, "type_descriptor", None)
        info = getattr(desc, "parameter_info", None)
        if desc is None or info is None or getattr(desc, "file_annotation", None):
            return
        if any(getattr(info, k, None) is not None for k in ("parser", "click_type")):
            return
        types = plain_types(desc.annotation)
        texts = get_origin(desc.annotation) is list and get_args(desc.annotation) == (str,)
        if texts:
            types = (list,)
        path_type = None
        if len(types) == 1 and issubclass(types[0], Path):
            if getattr(info, "path_type", None) is not None:
                return
            path_type = types[0]
        if types and getattr(param, "_runtime_param", "absent") is None:
            param._runtime_param = _PassIfTyped(
                parameter_info=info,
                annotation=desc.annotation,
                types=types,
                descriptor=desc,
                low=getattr(info, "min", None),
                high=getattr(info, "max", None),
                path_type=path_type,
                texts=texts,
            )

    def lightened_help(made: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def get_help_option(ctx: Any) -> Any:
            option = made(ctx)  # built on first parse: --help is a typer option too
            lighten(option)
            return option

        return get_help_option

    stack = [command]
    while stack:
        node = stack.pop()
        stack.extend(getattr(node, "commands", {}).values())
        for param in getattr(node, "params", ()):
            lighten(param)
        made = getattr(node, "get_help_option", None)
        if made is not None:
            node.get_help_option = lightened_help(made)  # type: ignore[attr-defined]


# The root options that take a value (``--db URL``), and the ones that take none and may come
# before a verb; any other token before the verb (``--help``, ``--version``, completion)
# builds the whole command. A test checks these against the root callback's options.
ROOT_VALUE_OPTIONS = ("--db", "--config", "--lease-ttl")
ROOT_COUNT_OPTIONS = ("-v", "--verbose")


def verb_of(args: list[str], verbs: set[str]) -> str | None:
    """The verb ``args`` invoke (``status`` in ``--db x.db -v status ID``), or None when
    they name none, or put before it anything but the global options of ``hotfix``."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ROOT_VALUE_OPTIONS:
            i += 2
        elif (
            arg.split("=", 1)[0] in ROOT_VALUE_OPTIONS
            or arg in ROOT_COUNT_OPTIONS
            or (arg.startswith("-v") and set(arg[1:]) == {"v"})  # -vv
        ):
            i += 1
        else:
            return arg if arg in verbs else None
    return None


def command_for(app: typer.Typer, args: list[str]) -> Any:
    """The click command for ``args``: built with only the verb they invoke.

    typer reads the signature of every verb to build the whole command (about a tenth of
    ``hotfix status``); a run needs the verb it names. The verb is built from the same
    declaration with the same root options, so its parsing, help and errors are the ones
    the whole command has. Without a plain verb (``--help``, a typo, shell completion),
    the whole command is built.
    """
    import copy
    import os

    import typer.main

    def name_of(info: Any) -> str:
        return str(info.name or typer.main.get_command_name(info.callback.__name__))

    verbs = {name_of(c) for c in app.registered_commands}
    verbs |= {str(g.name) for g in app.registered_groups if g.name}
    verb = verb_of(args, verbs)
    if verb is None or "_HOTFIX_COMPLETE" in os.environ:
        return typer.main.get_command(app)
    slim = copy.copy(app)
    slim.registered_commands = [c for c in app.registered_commands if name_of(c) == verb]
    slim.registered_groups = [g for g in app.registered_groups if g.name == verb]
    return typer.main.get_command(slim)
