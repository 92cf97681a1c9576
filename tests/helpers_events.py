"""A subscriber that keeps every journal row it receives, to compare with ``hotfix log``."""

from __future__ import annotations

import json
from typing import Any

from hotfix_fsm.core.outcome import Event
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.store import JournalEntry

# (seq, kind, phase, payload as canonical JSON): what ``hotfix log`` shows of a row.
Row = tuple[int, str, str | None, str]


def row_of_event(event: Event) -> Row:
    assert event.seq is not None, event
    return (event.seq, event.kind, event.phase, _canonical(event.payload))


def row_of_entry(entry: JournalEntry) -> Row:
    return (entry.seq, entry.kind, entry.phase, _canonical(entry.payload))


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, default=str)


class Seen:
    """Subscribe it to an engine: it keeps the rows (and last state) it received, by hotfix."""

    def __init__(self) -> None:
        self.rows: dict[str, list[Row]] = {}
        self.states: dict[str, str | None] = {}
        self.progress = 0

    def __call__(self, event: Event) -> None:
        if event.seq is None:
            assert event.kind == "progress", event
            self.progress += 1
            return
        self.rows.setdefault(event.hotfix_id, []).append(row_of_event(event))
        self.states[event.hotfix_id] = event.state

    def seqs(self, hotfix_id: str) -> list[int]:
        return [row[0] for row in self.rows.get(hotfix_id, [])]

    def assert_saw_every_row(self, engine: HotfixEngine, hotfix_id: str) -> None:
        """Every row of the hotfix's journal reached this subscriber, once, in order."""
        journal = [row_of_entry(e) for e in engine.journal(hotfix_id)]
        assert self.rows.get(hotfix_id, []) == journal
        assert self.states[hotfix_id] == engine.get(hotfix_id).state


def journal_rows(engine: HotfixEngine, hotfix_id: str) -> list[Row]:
    return [row_of_entry(e) for e in engine.journal(hotfix_id)]
