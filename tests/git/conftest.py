"""Fixtures for the git phases: a fresh git world and engines that are always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hotfix_fsm.durable import failpoints
from hotfix_fsm.engine import HotfixEngine
from tests.helpers_git import GitWorld, build_git_world, make_config, make_engine


@pytest.fixture
def world(tmp_path: Path) -> GitWorld:
    return build_git_world(tmp_path / "world")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def engines(db: Path) -> Iterator[Callable[..., HotfixEngine]]:
    """``engines(**gates)`` → a new engine on the same store file (closed after the test)."""
    made: list[HotfixEngine] = []

    def make(config: Any = None, **gates: Any) -> HotfixEngine:
        engine = make_engine(db, config or make_config(**gates))
        made.append(engine)
        return engine

    yield make
    failpoints.set_hook(None)
    for engine in made:
        engine.close()


@pytest.fixture
def engine(engines: Callable[..., HotfixEngine]) -> HotfixEngine:
    return engines()
