"""Shared test settings: hypothesis profiles, the everyday/slow split, the store backends.

The README's test command, a bare ``python -m pytest``, runs the everyday suite: every test not
marked ``slow``. The slow set (the process-level crash-torture suite in ``tests/torture``) runs
as its own step of ``.ci/run``: ``python -m pytest -m slow``. Naming a file or a directory below
``tests/`` (``python -m pytest tests/torture/test_crash.py``) runs what it names, slow or not.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from hotfix_fsm.sandbox.exchange_log import RECORD_ENV
from tests.openapi_check import Tally, check_exchanges, read_exchanges

# CI runs a bounded profile; `--torture` (or HYPOTHESIS_PROFILE=torture) runs long. CI's is
# derandomized: the same examples every run (seeded per test), so a build is red for a change,
# never for a draw; the dev and torture profiles keep drawing new examples to explore.
settings.register_profile(
    "ci",
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=15,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "torture",
    max_examples=500,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--torture", action="store_true", help="run the long crash-torture runs")


# The suite starts hundreds of Python processes (``hotfix`` commands, gates, pytest-xdist
# workers). Where PYTHONDONTWRITEBYTECODE is set (CI machines often set it) each of them would
# compile the whole package again: they share a bytecode cache of this run instead, kept in a
# temporary directory, never in the source tree.
_BYTECODE_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
_bytecode_cache: tuple[Path, dict[str, str | None]] | None = None


def _share_bytecode_cache() -> None:
    global _bytecode_cache
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    folder = Path(tempfile.mkdtemp(prefix="hotfix-fsm-test-pycache-"))
    _bytecode_cache = (folder, {name: os.environ.get(name) for name in _BYTECODE_ENV})
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    global _bytecode_cache
    if _bytecode_cache is None:
        return
    folder, saved = _bytecode_cache
    _bytecode_cache = None
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    _share_bytecode_cache()
    if config.getoption("--torture"):
        settings.load_profile("torture")
    else:
        settings.load_profile(
            os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
        )


def _named_explicitly(config: pytest.Config, item: pytest.Item) -> bool:
    """Whether a command-line path below ``tests/`` names this item's file or a folder above it."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    tests_dir = Path(__file__).resolve().parent
    for arg in config.args:
        named = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if named in (tests_dir, config.rootpath.resolve()):
            continue
        if named == item.path or named in item.path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.option.markexpr and not config.getoption("--torture"):
        slow = [
            i for i in items if i.get_closest_marker("slow") and not _named_explicitly(config, i)
        ]
        if slow:
            config.hook.pytest_deselected(items=slow)
            chosen = set(map(id, slow))
            items[:] = [i for i in items if id(i) not in chosen]
    if config.getoption("--torture"):
        return
    skip = pytest.mark.skip(reason="long torture run: enable with --torture")
    for item in items:
        if "torture" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's state dir, default store and git identity inside tmp_path."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("HOTFIX_FSM_STATE_DIR", str(tmp_path / "hotfix-state"))
    monkeypatch.delenv("HOTFIX_FSM_DB", raising=False)
    monkeypatch.delenv("HOTFIX_FSM_FAILPOINTS", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GH_TOKEN", raising=False)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Engineer")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "engineer@example.test")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Engineer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "engineer@example.test")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


# Every real answer of the rehearsal GitHub, in every test, is checked against GitHub's
# OpenAPI description (tests/openapi_check.py): "fail" (default) fails the test that caused a
# violation, "report" only counts, "off" records nothing.
OPENAPI_CHECK_ENV = "HOTFIX_FSM_OPENAPI_CHECK"
_openapi_tally = Tally()


@pytest.fixture(autouse=True)
def _github_openapi_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record the rehearsal GitHub's exchanges during the test; validate them after it."""
    mode = os.environ.get(OPENAPI_CHECK_ENV, "fail")
    if mode == "off":
        yield
        return
    folder = tmp_path / "github-exchanges"
    monkeypatch.setenv(RECORD_ENV, str(folder))
    yield
    if not folder.is_dir():
        return
    tally = check_exchanges(read_exchanges(folder))
    _openapi_tally.add(tally)
    if tally.messages and mode == "fail":
        pytest.fail(
            f"the rehearsal GitHub broke GitHub's OpenAPI description {tally.violations} "
            f"time(s) in this test (tests/openapi/api.github.com.json):\n"
            + "\n".join(tally.messages[:20]),
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its tally to the controller, which prints the summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        tally = _openapi_tally
        workeroutput["github_openapi_tally"] = {
            "requests": tally.requests,
            "operations": sorted(tally.operations),
            "violations": tally.violations,
            "missing_required": tally.missing_required,
        }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller adds up what each pytest-xdist worker checked."""
    done = getattr(node, "workeroutput", {}).get("github_openapi_tally")
    if done:
        _openapi_tally.add(
            Tally(
                requests=done["requests"],
                operations=set(done["operations"]),
                violations=done["violations"],
                missing_required=done["missing_required"],
            )
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tally = _openapi_tally
    if tally.requests:
        terminalreporter.write_line(
            f"GitHub OpenAPI check: {tally.requests} rehearsal answers over "
            f"{len(tally.operations)} operations; {tally.violations} violation(s), "
            f"{tally.missing_required} of them missing required fields"
        )


PG_URL_ENV = "HOTFIX_FSM_TEST_PG_URL"


def _worker_id() -> str | None:
    """The pytest-xdist worker running this process (``gw0``, ``gw1``…), None when serial."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def _worker_postgres_url(url: str, worker: str | None) -> str:
    """The database of this process: ``HOTFIX_FSM_TEST_PG_URL`` itself when serial; for a
    pytest-xdist worker its own ``<database>_<worker>`` beside it (the fixture resets the
    database, so two processes never share one), created from the given database if missing.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if not worker:
        return url
    given = make_url(url)
    name = f"{given.database}_{worker}"
    engine = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            known = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if known is None:
                # The name is the given database's plus an xdist worker id ([a-z0-9_]):
                # quoted as an identifier, it cannot break out of the statement.
                quoted = conn.dialect.identifier_preparer.quote_identifier(name)
                conn.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        engine.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


@functools.cache
def _postgres_url() -> str | None:
    url = os.environ.get(PG_URL_ENV)
    return _worker_postgres_url(url, _worker_id()) if url else None


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS journal, hotfixes, alembic_version CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = _postgres_url()
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a PostgreSQL server: {PG_URL_ENV} is not set (.ci/run sets it)")
        pytest.skip(f"no PostgreSQL: set {PG_URL_ENV} (e.g. `URL=$(bash .ci/pg-start)`) to run")
    _reset_postgres(url)
    yield url
    _reset_postgres(url)
