"""What a phase is: an idempotency key, a probe of the world, and one effect.

The runner calls, for the phase of the current state:

1. ``prepare(ctx)`` → a dict stored in the *intent* row (for example a correlation id), so
   a probe after a crash can look for exactly this attempt's effect (``ctx.intent``).
2. ``run(ctx)`` → the effect; returns facts merged into the hotfix context.
   ``ctx.facts`` is the hotfix's recorded facts, typed (``phases.facts.Facts``).
3. after a crash between intent and done: ``probe(ctx)`` → ``Probe.done(facts)`` (the effect
   happened: adopt it), ``Probe.not_done()`` (redo it) or ``Probe.unknown(why)`` (pause for a
   human).

Phases raise ``TransientError`` (retried with backoff), ``PermanentError`` (the hotfix fails
at this phase, resumable), ``RollbackRequired`` or ``NeedsHuman`` (a durable pause).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, Unpack, cast, runtime_checkable

if TYPE_CHECKING:
    from hotfix_fsm.config import Config
    from hotfix_fsm.core.retry import RetryPolicy
    from hotfix_fsm.phases.facts import Facts
    from hotfix_fsm.phases.services import Services
    from hotfix_fsm.store import Hotfix, JournalEntry


@dataclass(frozen=True)
class Probe:
    status: Literal["done", "not_done", "unknown"]
    facts: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def done(cls, facts: Mapping[str, Any] | None = None) -> Probe:
        """The effect happened: adopt ``facts`` (a dict, or a typed one such as ``PushFacts``)."""
        return cls("done", dict(facts or {}))

    @classmethod
    def not_done(cls, reason: str = "") -> Probe:
        return cls("not_done", {}, reason)

    @classmethod
    def unknown(cls, reason: str) -> Probe:
        return cls("unknown", {}, reason)


@runtime_checkable
class Phase(Protocol):
    """A phase implementation; ``name`` is the trigger it implements (see ``machine``)."""

    name: str

    def key(self, ctx: PhaseContext) -> str: ...

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]: ...

    def probe(self, ctx: PhaseContext) -> Probe: ...

    def run(self, ctx: PhaseContext) -> dict[str, Any]: ...


class BasePhase:
    """Defaults: key = hotfix id + phase; nothing to prepare; a probe that cannot tell.

    ``retry`` may name the phase's own ``RetryPolicy`` (which errors are transient, how many
    attempts, backoff); None takes the driver's default from ``retry_limit``.
    """

    name: str = ""
    retry: RetryPolicy | None = None

    def key(self, ctx: PhaseContext) -> str:
        return f"{ctx.hotfix.id}:{self.name}"

    def prepare(self, ctx: PhaseContext) -> dict[str, Any]:
        return {}

    def probe(self, ctx: PhaseContext) -> Probe:
        return Probe.unknown(f"phase {self.name} has no probe; check its effect by hand")

    def run(self, ctx: PhaseContext) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class Recorder(Protocol):
    """The runner side a context writes through (fenced by the driver's lease)."""

    def record(self, ctx: PhaseContext, kind: str, payload: dict[str, Any]) -> None: ...

    def save_facts(self, ctx: PhaseContext, facts: dict[str, Any]) -> None: ...

    def journal(self, hotfix_id: str, **filters: Any) -> list[JournalEntry]: ...

    def emit_progress(self, ctx: PhaseContext, message: str, fields: dict[str, Any]) -> None: ...


@dataclass
class PhaseContext:
    """Everything a phase may use.

    ``data`` is the hotfix's recorded facts (a mutable copy, a plain dict); ``facts`` is the
    same dict typed as ``Facts``, so mypy checks every key name and value type.
    """

    hotfix: Hotfix
    phase: str
    attempt: int
    config: Config
    services: Services
    data: dict[str, Any]
    recorder: Recorder
    intent: dict[str, Any] = field(default_factory=dict)
    stop_event: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    # Called after every wait: the driver confirms it still holds the hotfix (a process
    # frozen past its lease wakes here and stops before it sends anything).
    fence: Callable[[], None] | None = None
    # While probing an in-doubt intent another driver wrote (another machine, or a process
    # that was killed or froze): that driver, for probes that want to say whose effect they
    # looked for. The journal's probe row records it as ``intent_of``.
    intent_by: str | None = None

    @property
    def facts(self) -> Facts:
        """The recorded facts, typed: the very dict ``data`` is (no copy; writes show in both)."""
        return cast("Facts", self.data)

    @property
    def options(self) -> dict[str, Any]:
        return self.hotfix.options

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        """Journal a measurement, note or alert now (durable before returning)."""
        self.recorder.record(self, kind, payload)

    def save(self, **facts: Unpack[Facts]) -> None:
        """Persist facts now (for example the rollback target, before the deploy).

        Keywords are checked against ``Facts``; a plug-in's own facts are saved from a
        ``dict[str, Any]`` (``ctx.save(**extra)``).
        """
        self.data.update(facts)
        self.recorder.save_facts(self, {**facts})

    def journal(self, **filters: Any) -> list[JournalEntry]:
        return self.recorder.journal(self.hotfix.id, **filters)

    def progress(self, message: str, **fields: Any) -> None:
        """Tell watchers what is being waited for (not journaled)."""
        self.recorder.emit_progress(self, message, fields)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; returns early (raising) if the driver must stop."""
        from hotfix_fsm.errors import LeaseLost

        if self.stop_event.wait(max(0.0, seconds)):
            raise LeaseLost(
                "this driver lost its lease while waiting; it sent nothing more and wrote "
                "nothing more — another driver continues",
                hotfix_id=self.hotfix.id,
                phase=self.phase,
                hint=f"run `hotfix status {self.hotfix.id}` to see who drives it now",
            )
        if self.fence is not None:
            self.fence()

    def wait_until(
        self,
        check: Callable[[], tuple[bool, str]],
        *,
        timeout: float,
        interval: float,
        what: str,
        max_interval: float | None = None,
    ) -> None:
        """Poll ``check`` until it returns (True, _) or ``timeout`` passes.

        ``check`` returns (satisfied, status text); the status is shown as progress. The
        first check runs at once, so a condition already true costs no wait. Raises
        ``TransientError`` on timeout with the last status.
        """
        from hotfix_fsm.errors import TransientError

        start = self.clock()
        delay = interval
        while True:
            ok, status = check()
            elapsed = self.clock() - start
            if ok:
                return
            self.progress(f"waiting for {what}: {status}", elapsed=round(elapsed, 1))
            if elapsed >= timeout:
                raise TransientError(
                    f"timed out after {timeout:.0f}s waiting for {what} (last: {status})",
                    hotfix_id=self.hotfix.id,
                    phase=self.phase,
                )
            self.wait(min(delay, max(0.0, timeout - elapsed)))
            if max_interval:
                delay = min(delay * 1.5, max_interval)
