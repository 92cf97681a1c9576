"""Lazy package exports (PEP 562): a name is imported from its module on first use.

A package's ``__init__`` names what it exports and where each lives; the heavy modules
(SQLAlchemy, GitPython, the sandbox servers) load only when a caller touches one, so
``hotfix --version`` and tooling that only needs the errors stay fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: each name in ``where`` is imported from the module
    it maps to on first access, then kept in the package's namespace (no second lookup)."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__


__all__ = ["lazy_exports"]
