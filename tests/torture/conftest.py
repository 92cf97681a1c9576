"""Fixtures of the torture suite (the harness lives in ``sandbox``, ``harness`` and
``invariants``); ``python -m tests.torture.figures`` prints the suite's reliability figures."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.torture.harness import ForkPool
from tests.torture.sandbox import REPO_ROOT, Sandbox


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """A factory of sandboxes under tmp_path; every one is stopped at the end."""
    made: list[Sandbox] = []
    lock = threading.Lock()

    def make(name: str = "sb", **kw: Any) -> Sandbox:
        sb = Sandbox(tmp_path / name, **kw)
        with lock:
            made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.stop()


@pytest.fixture(scope="session")
def forks() -> Iterator[ForkPool]:
    """Fork servers for short commands (hostile inputs): one import, many processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTFIX_FSM_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    pool = ForkPool(env, size=4)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def sandbox(sandboxes: Callable[..., Sandbox]) -> Sandbox:
    return sandboxes()


def pytest_itemcollected(item: pytest.Item) -> None:
    """Everything here drives real ``hotfix`` processes: the slow set, its own step of CI."""
    if Path(__file__).parent in item.path.parents:
        item.add_marker(pytest.mark.slow)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Undo the root conftest's skip for tests that merely live in this ``torture`` package.

    tests/conftest.py skips items with ``"torture" in item.keywords``, and a package name is a
    keyword; only a real ``@pytest.mark.torture`` should be skipped without ``--torture``.
    """
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("torture") is None:
            item.own_markers[:] = [
                m
                for m in item.own_markers
                if not (m.name == "skip" and "--torture" in str(m.kwargs.get("reason", "")))
            ]
