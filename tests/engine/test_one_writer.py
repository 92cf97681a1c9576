"""The journal writer is the only writer: no other module of ``hotfix_fsm`` calls the store's
write methods (``checkpoint``, ``append``, ``create``).

An AST scan of every module: a call ``X.checkpoint(…)`` anywhere, or ``X.append(…)`` /
``X.create(…)`` on a store — ``X`` being a name or attribute called ``store`` (``store``,
``self.store``, ``engine.store`` …), a call to ``open_store``/``Store``, or a local name
bound to one of those — is allowed only in ``hotfix_fsm/durable/journal.py`` (and in the
store package, which defines them). The scanner is checked on examples that break the rule,
and on the writer itself, so the test cannot pass by seeing nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hotfix_fsm

PACKAGE = Path(hotfix_fsm.__file__).resolve().parent
WRITER = PACKAGE / "durable" / "journal.py"
STORE_PACKAGE = PACKAGE / "store"
WRITE_METHODS = {"checkpoint", "append", "create"}
STORE_FACTORIES = {"open_store", "Store"}


def _is_store(node: ast.expr, aliases: set[str]) -> bool:
    """Whether ``node`` evaluates to a store, as far as its spelling tells."""
    if isinstance(node, ast.Name):
        return node.id in aliases or node.id.lstrip("_").lower() == "store"
    if isinstance(node, ast.Attribute):
        return node.attr.lstrip("_").lower() == "store"
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in STORE_FACTORIES
    return False


def _aliases(tree: ast.AST) -> set[str]:
    """Local names bound to a store anywhere in the module (``s = engine.store``)."""
    names: set[str] = set()
    changed = True
    while changed:  # follow chains: a = engine.store; b = a
        changed = False
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, (ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                targets, value = [node.optional_vars], node.context_expr
            if value is None or not _is_store(value, names):
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id not in names:
                    names.add(target.id)
                    changed = True
    return names


def store_writes(source: str, filename: str = "<scan>") -> list[str]:
    """Every call in ``source`` that writes journal rows or hotfix state through a store."""
    tree = ast.parse(source, filename)
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method, receiver = node.func.attr, node.func.value
        if method not in WRITE_METHODS:
            continue
        if method == "checkpoint" or _is_store(receiver, aliases):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node.func)}(…)")
    return found


def test_only_the_journal_writer_writes_through_the_store() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == WRITER or STORE_PACKAGE in path.parents:
            continue
        offenders += store_writes(path.read_text(), str(path.relative_to(PACKAGE.parent)))
    assert offenders == [], (
        "write journal rows and hotfix state through durable/journal.py's JournalWriter "
        "(engine.writer / runner.writer), never the store directly:\n  " + "\n  ".join(offenders)
    )


def test_the_writer_itself_is_seen_writing() -> None:
    found = store_writes(WRITER.read_text(), "journal.py")
    assert any("self.store.checkpoint" in f for f in found), found
    assert any("self.store.append" in f for f in found), found
    assert any("self.store.create" in f for f in found), found


def test_the_scan_catches_each_way_round_the_writer() -> None:
    source = """
from hotfix_fsm.store import open_store

def sneaky(engine, runner, lease, hid, rows):
    engine.store.append(hid, rows)
    runner.store.checkpoint(lease, rows)
    store.create(hotfix_id=hid)
    s = engine.store
    t = s
    t.append(hid, rows)
    open_store("x.db").append(hid, rows)
    with open_store("y.db") as u:
        u.create(hotfix_id=hid)
    anything.checkpoint(lease, rows)
    self._store.append(hid, rows)

def innocent(rows, lines):
    rows.append(1)
    lines.append("x")
    storage = []
    storage.append(2)
    table.create(bind=None)
"""
    found = store_writes(source)
    lines = sorted(int(f.split(":")[1]) for f in found)
    assert lines == [5, 6, 7, 10, 11, 13, 14, 15], found
