"""The GhApi objects of the GitHub client: built lean, kept for reuse, one TLS context.

ghapi builds a callable for every operation of GitHub's description when a ``GhApi`` is made;
``build_ghapi`` builds one with only the operations the client calls (``OPERATIONS``). A
closed client's GhApi is kept (``give_api``) for the next client of the same repository and
token in this process (``take_api``), and the CA bundle is loaded once (``ssl_context``).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

# Building a GhApi makes a callable of every operation in GitHub's description (1,225 of
# them: 0.4 s and 4 MB on a busy 2-core machine), so it is built with the operations below
# only, and a closed client's GhApi is kept for the next client of the same repository and
# token in this process (tooling that drives many hotfixes, the tests). Connections are not
# kept. A test checks that every ``api.<group>.<name>`` call in the package is listed here.
OPERATIONS = frozenset(
    {
        ("actions", "create_workflow_dispatch"),
        ("actions", "get_pending_deployments_for_run"),
        ("actions", "get_reviews_for_run"),
        ("actions", "get_workflow_run"),
        ("actions", "list_jobs_for_workflow_run"),
        ("actions", "list_workflow_runs"),
        ("actions", "review_pending_deployments_for_run"),
        ("checks", "list_for_ref"),
        ("git", "delete_ref"),
        ("git", "get_ref"),
        ("issues", "add_labels"),
        ("issues", "create_label"),
        ("issues", "get_label"),
        ("pulls", "create"),
        ("pulls", "get"),
        ("pulls", "list"),
        ("pulls", "list_reviews"),
        ("pulls", "merge"),
        ("pulls", "update"),
        ("repos", "get"),
        ("repos", "get_branch"),
        ("repos", "get_branch_protection"),
        ("repos", "get_branch_rules"),
        ("repos", "get_combined_status_for_ref"),
    }
)
_api_pool: dict[tuple[str, str, str], list[Any]] = {}
_pool_lock = threading.Lock()
_build_lock = threading.Lock()
_ssl: list[Any] = []


def _has_operations(api: Any) -> bool:
    return all(hasattr(getattr(api, group, None), name) for group, name in OPERATIONS)


def build_ghapi(**kwargs: Any) -> Any:
    """A ``GhApi`` holding only ``OPERATIONS``; the whole one if this ghapi cannot do that.

    GhApi makes its operations from the parsed description ``ghapi.core.pspec``; for the
    build, that name holds a copy listing only ours.
    """
    import ghapi.core
    from ghapi.all import GhApi

    with _build_lock:
        whole = getattr(ghapi.core, "pspec", None)
        if whole is not None and isinstance(getattr(whole, "ops", None), list):
            ours = copy.copy(whole)
            ours.ops = [o for o in whole.ops if (o.group, o.name) in OPERATIONS]
            ghapi.core.pspec = ours
            try:
                api = GhApi(**kwargs)  # type: ignore[no-untyped-call]
            finally:
                ghapi.core.pspec = whole
            if _has_operations(api):
                return api
        return GhApi(**kwargs)  # type: ignore[no-untyped-call]


def take_api(key: tuple[str, str, str], api_url: str) -> Any:
    with _pool_lock:
        free = _api_pool.get(key)
        api = free.pop() if free else None
    if api is None or api.gh_host == api_url:
        return api
    # Same repository and token on another host (a new rehearsal server): point every
    # operation at it, if this ghapi keeps its base URL where we expect.
    if not all(hasattr(op, "base_url") for op in api.ops):
        return None
    api.gh_host = api_url
    for op in api.ops:
        op.base_url = api_url
    return api


def give_api(key: tuple[str, str, str], api: Any) -> None:
    with _pool_lock:
        free = _api_pool.setdefault(key, [])
        if len(free) < 4:
            free.append(api)


def ssl_context() -> Any:
    """One default TLS context per process (loading the CA bundle is slow)."""
    with _pool_lock:
        if not _ssl:
            import httpx2

            _ssl.append(httpx2.create_ssl_context())
        return _ssl[0]


__all__ = ["OPERATIONS", "build_ghapi", "give_api", "ssl_context", "take_api"]
