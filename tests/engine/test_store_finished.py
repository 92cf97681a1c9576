"""Migration 0004: ``finished_at`` and the journal keyed by (hotfix_id, seq) — existing stores
upgrade with their data intact, and the store keeps ``finished_at`` true to the state."""

from __future__ import annotations

import json
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from hotfix_fsm.core import machine
from hotfix_fsm.store import Entry, open_store
from hotfix_fsm.store.engine import make_engine, migrations_dir, upgrade
from hotfix_fsm.store.repository import FINISHED_STATES, Store

BEFORE = "0003_lean_checkpoint"

# Hotfixes as a 0003 store holds them: (id, issue, state, created_at, updated_at, last_seq).
OLD_HOTFIXES = [
    ("INC-1-a", "INC-1", "done", 100.0, 400.0, 3),
    ("INC-2-a", "INC-2", "awaiting_fix", 200.0, 300.0, 2),
    ("INC-3-a", "INC-3", "cancelled", 250.0, 500.0, 1),
    ("INC-4-a", "INC-4", "failed", 260.0, 600.0, 2),
]
OLD_JOURNAL = [
    ("INC-1-a", 1, 100.0, "created", None, 0, "INC-1-a", '{"issue":"INC-1"}'),
    ("INC-2-a", 1, 200.0, "created", None, 0, "INC-2-a", "{}"),
    ("INC-1-a", 2, 150.0, "intent", "branch", 1, "hotfix/INC-1-a", "{}"),
    ("INC-2-a", 2, 300.0, "note", None, 0, None, '{"text":"x"}'),
    ("INC-1-a", 3, 400.0, "transition", "finish", 0, None, '{"to":"done"}'),
    ("INC-3-a", 1, 250.0, "created", None, 0, "INC-3-a", "{}"),
    ("INC-4-a", 1, 260.0, "created", None, 0, "INC-4-a", "{}"),
    ("INC-4-a", 2, 600.0, "failed", "branch", 1, None, '{"error":"e"}'),
]


def _fill_0003(engine: Engine) -> None:
    with engine.begin() as conn:
        for hid, issue, state, created, updated, last in OLD_HOTFIXES:
            conn.execute(
                text(
                    "INSERT INTO hotfixes (id, issue, description, repo, state, context, "
                    "options, graph_hash, created_at, updated_at, last_seq, fencing_token) "
                    "VALUES (:id, :issue, 'd', '/r', :state, '{\"branch\":\"b\"}', '{}', 'g', "
                    ":created, :updated, :last, 7)"
                ),
                {
                    "id": hid,
                    "issue": issue,
                    "state": state,
                    "created": created,
                    "updated": updated,
                    "last": last,
                },
            )
        for row in OLD_JOURNAL:
            conn.execute(
                text(
                    'INSERT INTO journal (hotfix_id, seq, at, kind, phase, attempt, "key", '
                    "payload) VALUES (:h, :s, :at, :kind, :phase, :attempt, :key, :payload)"
                ),
                dict(
                    zip(
                        ("h", "s", "at", "kind", "phase", "attempt", "key", "payload"),
                        row,
                        strict=True,
                    )
                ),
            )


def _journal_rows(store: Store, hid: str) -> list[tuple[Any, ...]]:
    return [
        (e.hotfix_id, e.seq, e.at, e.kind, e.phase, e.attempt, e.key, e.payload)
        for e in store.journal(hid)
    ]


def _finished_at(store: Store) -> dict[str, float | None]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, finished_at FROM hotfixes")).all()
    return {str(r[0]): r[1] for r in rows}


def test_the_finished_states_are_the_graphs_terminal_ones() -> None:
    assert frozenset(machine.TERMINAL) == FINISHED_STATES


def test_a_0003_store_upgrades_with_its_hotfixes_and_journal_intact(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine, BEFORE)
    _fill_0003(engine)
    engine.dispose()

    store = open_store(store_url)  # upgrades to head on open
    try:
        for hid, issue, state, created, updated, last in OLD_HOTFIXES:
            hotfix = store.get(hid)
            assert (hotfix.issue, hotfix.state, hotfix.created_at) == (issue, state, created)
            assert (hotfix.updated_at, hotfix.last_seq, hotfix.fencing_token) == (updated, last, 7)
            assert hotfix.context == {"branch": "b"}
        for hid in ("INC-1-a", "INC-2-a", "INC-3-a", "INC-4-a"):
            expected = sorted(r for r in OLD_JOURNAL if r[0] == hid)
            assert [(*r[:7], r[7]) for r in _journal_rows(store, hid)] == [
                (*r[:7], json.loads(r[7])) for r in expected
            ]
        assert _finished_at(store) == {
            "INC-1-a": 400.0,
            "INC-2-a": None,
            "INC-3-a": 500.0,
            "INC-4-a": None,
        }
        assert [h.id for h in store.list_hotfixes()] == ["INC-4-a", "INC-2-a"]
        assert [h.id for h in store.list_hotfixes(include_finished=True)] == [
            "INC-4-a",
            "INC-3-a",
            "INC-1-a",
            "INC-2-a",
        ]
        assert [h.id for h in store.list_hotfixes(include_finished=True, limit=2)] == [
            "INC-4-a",
            "INC-3-a",
        ]
        assert store.find("INC-1").id == "INC-1-a"
        # The journal goes on where it stood, and (hotfix_id, seq) stays unique.
        lease = store.acquire_lease("INC-2-a", "me", ttl=60)
        assert store.checkpoint(lease, [Entry("note")]) == 3
        assert [e.seq for e in store.journal("INC-2-a", newest_first=True, limit=2)] == [3, 2]
    finally:
        store.engine.dispose()


def test_a_downgrade_to_0003_keeps_the_data(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine, BEFORE)
    _fill_0003(engine)
    upgrade(engine)
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.execution_options(hotfix_write=True).begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, BEFORE)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == BEFORE
        rows = conn.execute(
            text(
                'SELECT hotfix_id, seq, at, kind, phase, attempt, "key", payload FROM journal '
                "ORDER BY hotfix_id, seq"
            )
        ).all()
        states = dict(conn.execute(text("SELECT id, state FROM hotfixes")).all())
    assert [tuple(r) for r in rows] == sorted(OLD_JOURNAL)
    assert states == {hid: state for hid, _, state, *_ in OLD_HOTFIXES}
    engine.dispose()
    store = open_store(store_url)  # and up again
    assert _finished_at(store)["INC-1-a"] == 400.0
    store.engine.dispose()


def test_finishing_sets_finished_at_once_and_a_reopened_hotfix_is_unfinished(
    store_url: str,
) -> None:
    store = open_store(store_url)
    try:
        for n in (1, 2, 3):
            store.create(
                hotfix_id=f"INC-{n}-x", issue=f"INC-{n}", description="d", repo="/r",
                graph_hash="g", options={},
            )  # fmt: skip
        store.create(
            hotfix_id="INC-9-x", issue="INC-9", description="d", repo="/r", graph_hash="g",
            options={}, state="cancelled",
        )  # fmt: skip
        lease = store.acquire_lease("INC-1-x", "me", ttl=60)
        store.checkpoint(lease, [Entry("note")], state="branched")
        assert _finished_at(store)["INC-1-x"] is None
        store.checkpoint(lease, [Entry("transition", "finish")], state="done")
        done_at = _finished_at(store)["INC-1-x"]
        assert done_at is not None
        assert _finished_at(store)["INC-9-x"] is not None
        store.append("INC-1-x", [Entry("note")])  # a record after the end
        assert _finished_at(store)["INC-1-x"] == done_at
        assert {h.id for h in store.list_hotfixes()} == {"INC-2-x", "INC-3-x"}
        assert store.active_for_issue("INC-1") == []
        everything = store.list_hotfixes(include_finished=True)
        assert everything[0].id == "INC-1-x"  # the note made it the latest
        assert len(everything) == 4
        stamps = [h.updated_at for h in everything]
        assert stamps == sorted(stamps, reverse=True)

        store.append("INC-1-x", [Entry("note")], state="failed")  # no graph edge does this
        assert _finished_at(store)["INC-1-x"] is None
        assert store.latest_unfinished() is not None
        assert store.latest_unfinished().id == "INC-1-x"  # type: ignore[union-attr]
        assert [h.id for h in store.active_for_issue("INC-1")] == ["INC-1-x"]
    finally:
        store.engine.dispose()
