"""The driver's hold on a hotfix: heartbeat, fenced renewal, and the check before effects.

A lease is a row-level claim (owner, expiry) with a fencing token that every checkpoint is
conditional on. That fences *writes*. To fence *effects* as well, a driver confirms its lease
with a fenced renewal right before each attempt of an effect (``confirm``), and trusts
nothing it has not confirmed within the lease lifetime by its own monotonic clock: a
process frozen by SIGSTOP or a suspended laptop wakes with a stale confirmation, renews
first, and stops there if another driver took over meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hotfix_fsm.durable import failpoints
from hotfix_fsm.errors import HotfixError, LeaseLost, TransientError
from hotfix_fsm.log import get_logger
from hotfix_fsm.store import Lease, Store

log = get_logger(__name__)


class LeaseGuard:
    """One driver's lease on one hotfix, confirmed before every effect.

    Args:
        store: where the lease lives.
        lease: the lease ``Store.acquire_lease`` granted.
        clock: a monotonic clock (tests pass a fake one).
    """

    fences = True  # its writes are conditional on the lease (see ``BesideGuard``)

    def __init__(
        self, store: Store, lease: Lease, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.lease = lease
        self.clock = clock
        self.lost = threading.Event()
        self._confirmed_at = clock()  # acquiring is a fenced write
        self._lock = threading.Lock()

    @property
    def hotfix_id(self) -> str:
        return self.lease.hotfix_id

    def _lost(self, why: str) -> LeaseLost:
        self.lost.set()
        return LeaseLost(
            f"this driver lost its lease on the hotfix ({why}); it sent nothing more and "
            "wrote nothing more — another driver continues",
            hotfix_id=self.lease.hotfix_id,
            hint=f"run `hotfix status {self.lease.hotfix_id}` to see who drives it now",
        )

    def noted_write(self, started: float) -> None:
        """A fenced checkpoint that began at ``started`` (monotonic) succeeded."""
        with self._lock:
            self._confirmed_at = max(self._confirmed_at, started)

    def stale(self) -> bool:
        """True when nothing confirmed the lease within its lifetime (by this clock)."""
        return self.clock() - self._confirmed_at > self.lease.ttl

    def renew(self) -> bool:
        """A fenced renewal; False (and ``lost`` set) when another driver holds the hotfix."""
        started = self.clock()
        if not self.store.renew_lease(self.lease):
            self.lost.set()
            return False
        self.noted_write(started)
        return True

    def confirm(self) -> None:
        """Before an effect: renew under the fence, then check the renewal is still fresh.

        Raises ``LeaseLost`` when another driver holds the hotfix or the renewal itself took
        longer than the lease lives (the process froze during it), and ``TransientError``
        when the store cannot answer (the effect waits; nothing is sent unconfirmed).
        """
        if self.lost.is_set():
            raise self._lost("it was taken over")
        try:
            renewed = self.renew()
        except HotfixError as exc:
            raise TransientError(
                f"cannot confirm the lease before acting: {exc.message}",
                hotfix_id=self.lease.hotfix_id,
                hint="the store must be reachable to act; the step retries",
            ) from exc
        if not renewed:
            raise self._lost("another driver took it over")
        if self.stale():
            raise self._lost("this process was frozen while confirming it")

    def check(self) -> None:
        """Cheap check after a wait: lost → raise; stale by the clock → confirm first."""
        if self.lost.is_set():
            raise self._lost("it was taken over")
        if self.stale():
            self.confirm()

    def heartbeat(self, stop: threading.Event) -> None:
        """Renew every third of the lifetime until ``stop``; a lost lease stops the driver."""
        writing = threading.Lock()
        forget = failpoints.hold_during_freeze(writing)
        try:
            self._beat(stop, writing)
        finally:
            forget()

    def _beat(self, stop: threading.Event, writing: threading.Lock) -> None:
        while not stop.wait(self.lease.ttl / 3):
            try:
                with writing:
                    renewed = self.renew()
                if not renewed:
                    log.warning("lease_lost", hotfix=self.lease.hotfix_id)
                    return
            except HotfixError:
                log.warning("lease_renew_failed", hotfix=self.lease.hotfix_id, exc_info=True)


class BesideGuard(LeaseGuard):
    """A person's act beside the driver, through the step protocol without the lease.

    ``hotfix approve ID deploy`` approving an environment's pending deployment is the
    person's own act on GitHub (their token, their login — as on github.com), taken from
    any terminal while a driver may be following the run. It does not move the hotfix, so
    it holds no lease: its intent and done rows are unfenced records like an approval's,
    and the effect is once-only by the world's own rule (GitHub approves a pending
    deployment once; the probe looks before anything is sent).
    """

    fences = False

    def __init__(self, store: Store, hotfix_id: str, owner: str) -> None:
        super().__init__(store, Lease(hotfix_id, owner, -1, float("inf")))

    def renew(self) -> bool:
        return True

    def confirm(self) -> None:
        return None

    def check(self) -> None:
        return None

    def heartbeat(self, stop: threading.Event) -> None:  # pragma: no cover - never driven
        return None
