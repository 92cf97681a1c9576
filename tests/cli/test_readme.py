"""The README stays true: its diagram is `hotfix graph`, its reference names every key."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hotfix_fsm.config import Config, MetricConfig
from hotfix_fsm.core.machine import to_mermaid

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_starts_with_the_two_commands() -> None:
    head = README.split("## ", 1)[0]
    assert ".venv/bin/pip install . && .venv/bin/hotfix demo" in head
    assert ".venv/bin/pip install '.[test]' && .venv/bin/python -m pytest" in head


def test_readme_diagram_is_the_current_graph() -> None:
    block = README.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert block == to_mermaid()


def _keys(cls: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        if f.name == "source" and cls is Config:
            continue
        value = getattr(cls(), f.name)
        if dataclasses.is_dataclass(value):
            keys += _keys(type(value), f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def test_readme_configuration_reference_names_every_key() -> None:
    missing = [k for k in _keys(Config) if f"`{k}`" not in README]
    missing += [k for k in _keys(MetricConfig) if f"`{k}`" not in README]
    assert not missing, f"README lacks configuration keys: {missing}"
