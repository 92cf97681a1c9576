"""How the command parses and shows its arguments: conventional help, and typer's pydantic
coercion skipped where a value already has its type (it costs more than the rest of
``hotfix status``)."""

from __future__ import annotations

from collections.abc import Callable
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
    ``str`` parameter given a string, or a flag or counter click already made a bool or an
    int, needs no coercion. Those are passed through; any other value (a path given as text,
    a number typed as text, a bound or a custom parser) goes to typer's own coercion, so its
    checks and messages are unchanged.
    If typer's internals move, nothing is changed and typer coerces everything as before.
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
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

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, self.types) and not (
                isinstance(value, bool) and bool not in self.types
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
        if any(getattr(info, k, None) is not None for k in ("min", "max", "parser", "click_type")):
            return
        types = plain_types(desc.annotation)
        if types and getattr(param, "_runtime_param", "absent") is None:
            param._runtime_param = _PassIfTyped(
                parameter_info=info, annotation=desc.annotation, types=types, descriptor=desc
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
