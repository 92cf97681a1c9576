"""The GitHub client's GhApi is built with only the operations it calls: the list and the
calls agree, and the lean client has every one of them."""

from __future__ import annotations

import re
from pathlib import Path

from hotfix_fsm.adapters import github
from hotfix_fsm.adapters.github_ghapi import OPERATIONS, build_ghapi


def test_every_operation_called_is_listed_and_every_listed_one_is_called() -> None:
    package = Path(github.__file__).resolve().parents[1]
    called = {
        found
        for module in package.rglob("*.py")
        for found in re.findall(
            r"\.api\.([a-z_]+)\.([a-z_]+)\b", module.read_text(encoding="utf-8")
        )
    }
    assert called == OPERATIONS


def test_the_lean_client_has_the_operations_and_nothing_else() -> None:
    api = build_ghapi(owner="acme", repo="shop", token="t0ken", gh_host="http://127.0.0.1:9")
    for group, name in OPERATIONS:
        assert callable(getattr(getattr(api, group), name)), (group, name)
    assert {(op.group, op.name) for op in api.ops} == OPERATIONS
    assert not hasattr(api, "gists")
