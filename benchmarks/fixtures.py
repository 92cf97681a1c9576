"""Realistic hotfix histories for the benchmarks, written through the real store.

``happy_journal`` yields the journal rows a hotfix leaves on the happy path (intent, done and
transition rows per phase, gate rows, monitor measurements) so that ``status`` and ``resume``
read the same amount of history a real incident leaves behind (about 65 rows).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Row = tuple[str, str | None, int, str | None, dict[str, Any]]  # kind, phase, attempt, key, payload


def fake_sha(*parts: object) -> str:
    return hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def happy_journal(hotfix_id: str, *, until: str = "done", monitor_rounds: int = 7) -> Iterator[Row]:
    """Journal rows of a happy-path hotfix from ``created`` up to state ``until``."""
    from hotfix_fsm.core import machine

    fix = fake_sha(hotfix_id, "fix")
    facts: dict[str, dict[str, Any]] = {
        "branch": {"branch": f"hotfix/{hotfix_id}", "base_sha": fake_sha(hotfix_id, "base")},
        "commit_fix": {"fix_sha": fix, "fix_commits": [{"sha": fix, "subject": "Fix it"}]},
        "push": {"pushed_sha": fix, "branch": f"hotfix/{hotfix_id}", "remote": "origin"},
        "open_pr": {"pr_number": 17, "pr_url": "https://github.example/acme/shop/pull/17"},
        "wait_ci": {"ci": {"state": "success", "checks": ["ci/test"]}},
        "approve_deploy": {"deploy_approval": {"by": "oncall", "sha": fix}},
        "deploy": {"deploy_run_id": 42, "deployed_sha": fix, "deploy_correlation_id": "c0ffee"},
        "verify": {"verify": {"status": 200, "version": fix}},
        "monitor": {"monitor": {"rounds": monitor_rounds, "verdict": "healthy"}},
        "merge": {"merge_sha": fake_sha(hotfix_id, "merge")},
        "tag": {"release_tag": "v1.0.1"},
        "backport": {"backport_pr_number": 18, "backport_status": "open"},
        "cleanup": {"cleaned": {"remote_branch": True, "local_branch": True}},
    }
    for phase, source, dest in machine.FORWARD:
        if source == until:
            return
        if phase in machine.BOOKKEEPING_PHASES or phase == "finish_gates":
            if phase == "finish_gates":
                for gate in machine.GATES:
                    key = f"{gate}:{fix}"
                    yield ("intent", f"gate:{gate}", 1, key, {"sha": fix})
                    yield ("done", f"gate:{gate}", 1, key, {"gate": gate, "exit_code": 0})
            yield ("transition", phase, 0, None, {"from": source, "to": dest})
            continue
        key = f"{hotfix_id}:{phase}"
        yield ("intent", phase, 1, key, {})
        if phase == "monitor":
            for i in range(monitor_rounds):
                yield ("measurement", phase, 1, None, {"round": i + 1, "error_rate": 0.1})
        yield ("done", phase, 1, key, {"facts": facts.get(phase, {})})
        yield ("transition", phase, 1, None, {"from": source, "to": dest})


def make_hotfix(
    db: Path, hotfix_id: str, *, until: str = "done", repo: Path | None = None
) -> dict[str, Any]:
    """Create ``hotfix_id`` in the store at ``db`` with a happy-path journal up to ``until``."""
    from hotfix_fsm.config import load_config, locate_config, pin_config
    from hotfix_fsm.core import machine
    from hotfix_fsm.store import Entry, new_owner, open_store

    work_tree = repo or db.parent
    # Pinned as ``hotfix start`` pins it (``HotfixEngine.config_pin``): every hotfix since
    # configuration pinning has it, and resuming one without it logs a warning first.
    pin = pin_config(load_config(work_tree), locate_config(work_tree))
    store = open_store(db)
    try:
        context: dict[str, Any] = {"timestamp": time.strftime("%Y%m%d-%H%M%S")}
        store.create(
            hotfix_id=hotfix_id,
            issue=hotfix_id.split("-20", 1)[0],
            description="benchmark hotfix",
            repo=str(work_tree),
            graph_hash=machine.graph_hash(),
            options={"fix_mode": "manual", "yes": True, "severity": "critical", "config": pin},
            context=context,
        )
        lease = store.acquire_lease(hotfix_id, new_owner(), ttl=60)
        state = "created"
        for kind, phase, attempt, key, payload in happy_journal(hotfix_id, until=until):
            changes: dict[str, Any] = {}
            if kind == "transition":
                state = str(payload["to"])
                changes["state"] = state
            if kind == "done" and isinstance(payload.get("facts"), dict):
                context.update(payload["facts"])
                changes["context"] = dict(context)
            store.checkpoint(lease, [Entry(kind, phase, attempt, key, payload)], **changes)
        store.release_lease(lease)
        return {"state": state, "rows": store.get(hotfix_id).last_seq, "context": context}
    finally:
        store.engine.dispose()
