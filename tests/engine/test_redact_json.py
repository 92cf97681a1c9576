"""The writer's fast redaction of the context: one search of its JSON text stands for
redacting every string in it, and a context holding a secret is still masked in the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hotfix_fsm.core.redact import MASK, json_is_clean, redact_obj, register_secret
from hotfix_fsm.durable.journal import JournalWriter
from hotfix_fsm.store import Entry, new_owner, open_store, to_json

# A prefix no other test writes, so the secrets registered here mask nothing elsewhere.
PREFIX = "Qz7Xv"
secrets_ = st.text(min_size=1, max_size=12).map(lambda tail: PREFIX + tail)
words = st.text(max_size=20)


def values(secret: str) -> st.SearchStrategy[Any]:
    """JSON-like values whose strings sometimes hold ``secret`` (in keys too)."""
    text = st.one_of(words, words.map(lambda w: w + secret + w))
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), text)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)
        ),
        max_leaves=12,
    )


@given(st.data(), secrets_)
def test_a_clean_json_text_means_redaction_changes_nothing(
    data: st.DataObject, secret: str
) -> None:
    register_secret(secret)
    value = data.draw(values(secret))
    if json_is_clean(to_json(value)):
        assert redact_obj(value) == value
    if secret in json.dumps(value, ensure_ascii=False):  # the secret is somewhere in it
        assert not json_is_clean(to_json(value))


def test_a_context_holding_a_secret_is_masked_in_the_store(tmp_path: Path) -> None:
    secret = PREFIX + "ContextSecret42"
    register_secret(secret)
    store = open_store(tmp_path / "s.db")
    writer = JournalWriter(store)
    hotfix = writer.create(
        hotfix_id="INC-1-20250101-000000",
        issue="INC-1",
        description="d",
        repo=str(tmp_path),
        graph_hash="x",
        options={},
    )
    lease = store.acquire_lease(hotfix.id, new_owner(), ttl=60)
    clean = {"pr": {"url": "https://github.com/acme/shop/pull/7"}}
    writer.write(hotfix, [Entry("note", "bench")], lease=lease, context=clean)
    assert store.get(hotfix.id).context == clean
    leaky = {"pr": {"url": "https://x.test/" + secret, "tags": [f"a {secret} b"]}}
    writer.write(hotfix, [Entry("note", "bench")], lease=lease, context=leaky)
    stored = store.get(hotfix.id).context
    assert stored == {"pr": {"url": f"https://x.test/{MASK}", "tags": [f"a {MASK} b"]}}
    store.engine.dispose()
    raw = sqlite3.connect(tmp_path / "s.db")
    try:
        (text,) = raw.execute("SELECT context FROM hotfixes").fetchone()
    finally:
        raw.close()
    assert secret not in text
