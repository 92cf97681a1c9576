"""Property test: the engine under crashes, failures and restarts from the database file.

Rules advance the hotfix, arm a crash at any boundary (including between effect and done),
inject transient and permanent failures, approve, and restart the engine from the file.
Invariants after every step: the state is legal, the journal is append-only and gapless,
no effect happened twice; at the end the run converges to the crash-free outcome.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hotfix_fsm.core import machine
from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import IllegalTransition, LeaseHeld
from hotfix_fsm.store import JournalEntry

from .world import Crash, World, make_engine, start

EFFECT_PHASES = sorted(machine.EFFECT_PHASES - {"approve_deploy"})
FAILABLE = sorted(p for p in EFFECT_PHASES if not p.startswith("rollback_"))


class EngineUnderCrashes(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # fsync on tmpfs is cheap, so hypothesis gets many more steps per second.
        shm = Path("/dev/shm")
        where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.tmp = Path(tempfile.mkdtemp(prefix="hotfix-stateful-", dir=where))
        self.db = self.tmp / "store.db"
        self.world = World()
        self.engine = make_engine(self.db, self.world)
        self.hotfix_id = ""
        self.seen: list[JournalEntry] = []
        self.crashes = 0

    def teardown(self) -> None:
        failpoints.set_hook(None)
        self.engine.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @initialize(yes=st.booleans())
    def start_hotfix(self, yes: bool) -> None:
        self.hotfix_id = start(self.engine, self.tmp, yes=yes)

    # -- rules ---------------------------------------------------------------------------

    @rule(phase=st.sampled_from(FAILABLE), kind=st.sampled_from(["transient", "permanent"]))
    def fail_next_effect(self, phase: str, kind: str) -> None:
        self.world.fail_next[phase] = kind

    @rule(
        crash=st.none()
        | st.tuples(st.sampled_from(EFFECT_PHASES), st.sampled_from(failpoints.POINTS))
    )
    def advance(self, crash: tuple[str, str] | None) -> None:
        """Drive; with ``crash``, the process dies at that boundary if it gets there."""
        armed = crash

        def hook(phase: str, point: str) -> None:
            if armed and (phase, point) == armed:
                raise Crash

        failpoints.set_hook(hook)
        try:
            self.engine.drive(self.hotfix_id, take_over=True)
        except Crash:
            self.crashes += 1
        finally:
            failpoints.set_hook(None)

    @rule()
    def restart_from_file(self) -> None:
        self.engine.close()
        self.engine = make_engine(self.db, self.world)

    @precondition(lambda self: bool(self.hotfix_id))
    @rule()
    def approve_deploy(self) -> None:
        # No fix sha yet, or already terminal: refusing is the right answer.
        with contextlib.suppress(IllegalTransition):
            self.engine.approve(self.hotfix_id, "deploy")

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def state_is_legal(self) -> None:
        if self.hotfix_id:
            assert self.engine.get(self.hotfix_id).state in machine.ALL_STATES

    @invariant()
    def journal_is_append_only_and_gapless(self) -> None:
        if not self.hotfix_id:
            return
        journal = self.engine.journal(self.hotfix_id)
        assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
        assert journal[: len(self.seen)] == self.seen
        self.seen = journal

    @invariant()
    def no_effect_happened_twice(self) -> None:
        repeated = {k: v for k, v in self.world.effects.items() if v > 1 and ":gate:" not in k}
        assert not repeated, repeated

    @invariant()
    def done_effects_match_the_world(self) -> None:
        if not self.hotfix_id:
            return
        for entry in self.engine.journal(self.hotfix_id):
            if (
                entry.kind == "done"
                and entry.phase
                and not entry.phase.startswith("gate:")
                and entry.phase != "approve_deploy"
            ):
                assert self.world.effects[f"{self.hotfix_id}:{entry.phase}"] >= 1, entry

    def converge(self) -> str:
        """Drive with no crashes and no injected failures until the hotfix ends."""
        self.world.fail_next.clear()
        state = ""
        for _ in range(20):
            try:
                outcome = self.engine.drive(self.hotfix_id, take_over=True)
            except LeaseHeld:  # pragma: no cover - take_over makes this impossible
                raise
            state = outcome.state
            if outcome.paused_gate == "deploy":
                self.engine.approve(self.hotfix_id, "deploy")
                continue
            if state in machine.TERMINAL:
                return state
        return state


class ConvergingEngine(EngineUnderCrashes):
    """After the random steps, the run must reach the crash-free outcome: done, once each."""

    def teardown(self) -> None:
        try:
            if self.hotfix_id:
                assert self.converge() == "done"
                for phase in EFFECT_PHASES:
                    if phase.startswith(("rollback_", "gate:")):
                        continue
                    assert self.world.effects[f"{self.hotfix_id}:{phase}"] == 1, phase
        finally:
            super().teardown()


TestEngineUnderCrashes = ConvergingEngine.TestCase
