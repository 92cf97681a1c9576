"""Every fact a hotfix records is declared in ``phases.facts.Facts``, with its type.

Real hotfixes run through the rehearsal world (a real origin, the rehearsal GitHub server, the
production app, every default phase): the happy path to ``done`` and a manual rollback of it
(a revert PR), and a deploy production rejects (verify fails, automatic rollback). Every key
of the final facts, of each journaled done row, probe and ``ctx.save`` must be declared, and
its value must have the declared type; a new undeclared fact fails here. A static scan checks
each key the code reads from a typed view by a string literal (mypy types ``.get`` of an
unknown key as ``object`` rather than refusing it).
"""

from __future__ import annotations

import ast
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from typing_extensions import is_typeddict

import hotfix_fsm
from hotfix_fsm.core.outcome import Event
from hotfix_fsm.engine import HotfixEngine
from hotfix_fsm.phases.facts import (
    LEDGERS,
    FactKey,
    Facts,
    GateResult,
    GroupFacts,
    TextFact,
    reported_key,
)
from hotfix_fsm.store import JournalEntry
from tests.torture.sandbox import Sandbox

DECLARED = get_type_hints(Facts)
ISSUE = "INC-42"


# -- checking a value against its declared type ---------------------------------------------


def problems(value: Any, hint: Any, where: str) -> list[str]:
    """Why ``value`` (as read back from JSON) does not have type ``hint``; empty when it has."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return []
    if origin in (Union, types.UnionType):
        found = [problems(value, arg, where) for arg in args]
        return [] if any(not p for p in found) else [f"{where}: {value!r} is not {hint}"]
    if origin is Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if is_typeddict(hint):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a {hint.__name__} object"]
        return record_problems(value, hint, where)
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [p for i, item in enumerate(value) for p in problems(item, args[0], f"{where}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not an object"]
        return [
            p
            for k, item in value.items()
            for p in ([] if isinstance(k, str) else [f"{where}: key {k!r} is not a string"])
            + problems(item, args[1], f"{where}.{k}")
        ]
    if hint is type(None):
        return [] if value is None else [f"{where}: {value!r} is not None"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, hint)
    return [] if ok else [f"{where}: {value!r} is not {hint.__name__}"]


def record_problems(record: dict[str, Any], typed: Any, where: str) -> list[str]:
    hints = get_type_hints(typed)
    missing = sorted(set(typed.__required_keys__) - set(record))
    found = [f"{where}: required key {k!r} is missing" for k in missing]
    for key, value in record.items():
        if key not in hints:
            found.append(f"{where}.{key}: not declared in {typed.__name__}")
        else:
            found += problems(value, hints[key], f"{where}.{key}")
    return found


def journal_problems(journal: list[JournalEntry]) -> list[str]:
    """Facts carried by done and probe rows (a run's or probe's) and notes (``ctx.save``)."""
    found: list[str] = []
    for row in journal:
        facts = row.payload.get("facts")
        if row.kind not in ("done", "probe", "note") or not isinstance(facts, dict):
            continue
        typed = GateResult if (row.phase or "").startswith("gate:") else Facts
        found += record_problems(facts, typed, f"journal #{row.seq} {row.kind} {row.phase}")
    return found


# -- the declarations themselves ------------------------------------------------------------


def test_fact_key_lists_name_declared_facts() -> None:
    assert set(get_args(FactKey)) == set(DECLARED)
    assert set(get_args(TextFact)) <= set(DECLARED)
    for ledger in LEDGERS:
        assert get_args(DECLARED[ledger])  # a list of entries
        assert reported_key(ledger) in DECLARED


def test_every_group_declares_its_keys_as_facts_does() -> None:
    """``as_facts`` casts a group to ``Facts``: sound only if every shared key agrees."""
    groups = [g for g in get_args(GroupFacts) if g is not Facts]
    assert {k for g in groups for k in get_type_hints(g)} == set(DECLARED)
    for group in groups:
        for key, hint in get_type_hints(group).items():
            assert hint == DECLARED[key], f"{group.__name__}.{key}"


def test_the_type_check_itself_rejects_what_it_should() -> None:
    good = {"branch": "hotfix/x", "pr_number": 3, "rollback_target": {"sha": "a" * 40}}
    assert record_problems(good, Facts, "facts") == []
    assert record_problems({"pr_numbr": 3}, Facts, "facts") == [
        "facts.pr_numbr: not declared in Facts"
    ]
    assert record_problems({"pr_number": "3"}, Facts, "facts")
    assert record_problems({"pr_number": True}, Facts, "facts")
    assert record_problems({"rollback_target": {"tag": None}}, Facts, "facts")  # no sha
    assert record_problems({"rollback_target": {"sha": "a", "shaa": 1}}, Facts, "facts")
    assert record_problems({"fix_commits": ["a" * 40]}, Facts, "facts")
    assert record_problems({"_durations": {"branch": None, "push": 0.5}}, Facts, "facts") == []


# -- real hotfixes ----------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with Sandbox(tmp_path / "world") as world:
        yield world


def _engine(sandbox: Sandbox) -> HotfixEngine:
    return HotfixEngine(sandbox.db, config_path=sandbox.info.config)


def _check(engine: HotfixEngine, hotfix_id: str) -> dict[str, Any]:
    hotfix = engine.get(hotfix_id)
    found = record_problems(hotfix.context, Facts, "facts")
    found += journal_problems(engine.journal(hotfix_id))
    assert found == [], "\n".join(found)
    return hotfix.context


def test_happy_path_and_a_manual_rollback_record_only_declared_facts(sandbox: Sandbox) -> None:
    with _engine(sandbox) as engine:
        hotfix = engine.start(
            ISSUE, "Fix token expiry check", repo=sandbox.work, cherry_pick=[sandbox.info.fix_sha]
        )
        outcome = engine.drive(hotfix.id)
        assert outcome.paused_gate == "deploy", outcome
        engine.approve(hotfix.id, "deploy", by="reviewer")  # a person's approval record
        outcome = engine.drive(hotfix.id)
        assert outcome.state == "done", outcome.error
        facts = _check(engine, hotfix.id)
        # The run covered the facts of every forward phase (so they were all checked).
        for key in ("work_tree", "fix_commits", "pr_labels", "ci", "deploy_dispatches"):
            assert facts.get(key), key
        for key in ("verify", "monitor", "merge_sha", "release_tag", "cleaned", "gates"):
            assert facts.get(key), key
        assert facts["deploy_approval"]["by"] == "reviewer"

        outcome = engine.rollback(hotfix.id, reason="drill")
        assert outcome.state == "rolled_back", outcome.error
        facts = _check(engine, hotfix.id)
        assert facts["rollback_revert"]["mode"] == "revert"  # merged: undone by a revert PR
        assert facts["rollback_dispatches"]
        assert facts["rollback_verify"]["healthy"] is True


def test_an_unhealthy_deploy_and_its_rollback_record_only_declared_facts(
    sandbox: Sandbox,
) -> None:
    production = sandbox.running.production
    with _engine(sandbox) as engine:
        hotfix = engine.start(
            ISSUE,
            "Fix token expiry check",
            repo=sandbox.work,
            cherry_pick=[sandbox.info.fix_sha],
            yes=True,
        )

        def fail_the_fix(event: Event) -> None:
            facts = event.payload.get("facts") if event.kind == "done" else None
            if isinstance(facts, dict) and facts.get("fix_sha"):
                production.set_mode("failing", for_version=str(facts["fix_sha"]))

        unsubscribe = engine.subscribe(fail_the_fix)
        try:
            outcome = engine.drive(hotfix.id)
        finally:
            unsubscribe()
        assert outcome.state == "rolled_back", outcome.error
        facts = _check(engine, hotfix.id)
        assert facts["verify"]["healthy"] is False  # saved before the rollback was asked for
        assert isinstance(facts["rollback_revert"], str)  # never merged: nothing to undo
        assert facts["deploy_approval"]["auto"] is True


# -- keys read from typed views, by a string literal -------------------------------------------

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of ``scope``, not descending into the functions and classes it defines."""
    todo = list(ast.iter_child_nodes(scope))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _SCOPES):
            todo.extend(ast.iter_child_nodes(node))


VIEW_FUNCTIONS = frozenset({"facts_of", "as_facts"})


def _is_view(node: ast.expr, bound: set[str]) -> bool:
    """``<x>.facts``, a call of a function returning ``Facts`` (``facts_of``, ``as_facts``,
    one of the module's own), or a name or attribute bound to one of them."""
    if isinstance(node, ast.Attribute) and node.attr == "facts":
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in VIEW_FUNCTIONS or f"{node.func.id}()" in bound
    return ast.unparse(node) in bound


def _annotated_facts(annotation: ast.expr | None) -> bool:
    return annotation is not None and ast.unparse(annotation) in ("Facts", "'Facts'")


def _bindings(scope: ast.AST, bound: set[str], *, only_self: bool = False) -> set[str]:
    """Names (and ``self.x`` attributes) ``scope`` binds to a typed view."""
    found: set[str] = set()
    for node in _own_nodes(scope):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign) and _is_view(node.value, bound | found):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and (
            _annotated_facts(node.annotation)
            or (node.value is not None and _is_view(node.value, bound | found))
        ):
            targets = [node.target]
        elif isinstance(node, ast.arg) and _annotated_facts(node.annotation) and not only_self:
            found.add(node.arg)
        names = {ast.unparse(t) for t in targets}
        found |= {n for n in names if n.startswith("self.")} if only_self else names
    return found


def _key(node: ast.AST, bound: set[str]) -> ast.expr | None:
    if isinstance(node, ast.Subscript) and _is_view(node.value, bound):
        return node.slice
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("get", "pop", "setdefault")
        and _is_view(node.func.value, bound)
        and node.args
    ):
        return node.args[0]
    if (
        isinstance(node, ast.Compare)
        and len(node.ops) == 1
        and isinstance(node.ops[0], ast.In | ast.NotIn)
        and _is_view(node.comparators[0], bound)
    ):
        return node.left
    return None


def literal_reads(tree: ast.AST, outer: frozenset[str] = frozenset()) -> list[tuple[int, str]]:
    """(line, key) of every string-literal key used on a typed facts view, scope by scope."""
    bound = set(outer)
    if isinstance(tree, ast.Module):  # the module's functions returning Facts: "name()"
        bound |= {
            f"{node.name}()"
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and _annotated_facts(node.returns)
        }
    if isinstance(tree, ast.ClassDef):  # self.x bound in one method is bound in all of them
        for method in _own_nodes(tree):
            if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
                bound |= _bindings(method, bound, only_self=True)
    elif isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef):
        for arg in [*tree.args.posonlyargs, *tree.args.args, *tree.args.kwonlyargs]:
            if _annotated_facts(arg.annotation):
                bound.add(arg.arg)
    bound |= _bindings(tree, bound)
    reads: list[tuple[int, str]] = []
    for node in _own_nodes(tree):
        if isinstance(node, _SCOPES):
            reads += literal_reads(node, frozenset(bound))
            continue
        key = _key(node, bound)
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            reads.append((getattr(node, "lineno", 0), key.value))
    return reads


def test_the_scan_finds_literal_reads_of_typed_views() -> None:
    source = (
        "def f(ctx, hotfix, other: Facts):\n"
        "    a = ctx.facts.get('branch')\n"
        "    facts = facts_of(hotfix)\n"
        "    b = facts['fix_sha']\n"
        "    c = 'merge_sha' in facts\n"
        "    d = other.get('pr_url', '')\n"
        "    e = {}.get('not_a_view')\n"
        "def g(facts):\n"
        "    return facts.get('another_scope')\n"
        "def h(row) -> Facts:\n"
        "    return row\n"
        "def i(row):\n"
        "    return h(row).get('from_a_function')\n"
        "class Plan:\n"
        "    def __init__(self, hotfix):\n"
        "        self.data: Facts = facts_of(hotfix)\n"
        "    def run(self):\n"
        "        return self.data.get('base_sha')\n"
    )
    assert sorted(k for _, k in literal_reads(ast.parse(source))) == [
        "base_sha",
        "branch",
        "fix_sha",
        "from_a_function",
        "merge_sha",
        "pr_url",
    ]


def test_every_key_read_from_a_typed_view_is_declared() -> None:
    package = Path(hotfix_fsm.__file__).parent
    undeclared = []
    seen = 0
    for path in sorted(package.rglob("*.py")):
        for line, key in literal_reads(ast.parse(path.read_text(encoding="utf-8"))):
            seen += 1
            if key not in DECLARED:
                undeclared.append(f"{path.relative_to(package.parent)}:{line}: {key!r}")
    assert undeclared == [], "\n".join(undeclared)
    assert seen > 50  # the scan sees the code's reads (it is not looking at nothing)
