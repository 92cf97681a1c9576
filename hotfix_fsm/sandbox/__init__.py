"""The rehearsal world: a local GitHub REST API server and a local production app.

The public entry points, for tooling's own tests and drills::

    from hotfix_fsm.sandbox import temporary_sandbox

    with temporary_sandbox() as world:     # a bare origin, a work tree, both servers
        engine = HotfixEngine(db, config_path=world.info.config)
        engine.start("INC-1", "Fix it", repo=world.info.work, cherry_pick=[world.info.fix_sha])

``build_sandbox(DIR)`` writes a world to a directory and ``serve_sandbox(DIR)`` serves it
(both context-managed servers run in threads of this process); ``effects_of(DIR)`` lists what
the world recorded (PRs, dispatches, deploys, ref updates). They load on first use, so
importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotfix_fsm.core.lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:
    from hotfix_fsm.sandbox.serve import (
        RunningSandbox,
        effects_of,
        serve_sandbox,
        temporary_sandbox,
    )
    from hotfix_fsm.sandbox.world import SandboxInfo, build_sandbox, load_info

_LAZY = {
    "RunningSandbox": "hotfix_fsm.sandbox.serve",
    "SandboxInfo": "hotfix_fsm.sandbox.world",
    "build_sandbox": "hotfix_fsm.sandbox.world",
    "effects_of": "hotfix_fsm.sandbox.serve",
    "load_info": "hotfix_fsm.sandbox.world",
    "serve_sandbox": "hotfix_fsm.sandbox.serve",
    "temporary_sandbox": "hotfix_fsm.sandbox.serve",
}


__getattr__ = _lazy_exports(__name__, _LAZY)


__all__ = [
    "RunningSandbox",
    "SandboxInfo",
    "build_sandbox",
    "effects_of",
    "load_info",
    "serve_sandbox",
    "temporary_sandbox",
]
