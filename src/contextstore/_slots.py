"""The execution core's limit on connections in use: a counting semaphore for
many waiters, bounded by one timer, whose released slot can carry a connection."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

__all__ = ["Slots"]


class Slots:
    """A counting semaphore whose waits are bounded by one timer for all waiters.

    ``asyncio.Semaphore`` under ``asyncio.timeout`` arms and cancels a timer for
    every wait that finds no free slot: with many tasks queued on a small pool,
    a measurable share of each call. Here the waiters queue first in, first
    out with the same timeout, so their deadlines are in order and one timer,
    at the oldest waiter's deadline, serves them all. A released slot is
    handed to the oldest waiter directly (no newcomer can take it first);
    a waiter queued with :meth:`wait` may be handed something with its slot
    (:meth:`hand_over`).

    Args:
        capacity: slots held at once.
        timeout: seconds a wait may last before it raises ``TimeoutError``.
    """

    __slots__ = ("_free", "_timeout", "_timer", "_waiters")

    #: a deadline this close counts as passed (the loop's timers may fire early
    #: by its clock resolution)
    _SLACK = 0.001

    def __init__(self, capacity: int, timeout: float) -> None:
        self._free = capacity
        self._timeout = timeout
        #: the queued waits, oldest first: the future, its deadline, and
        #: whether it takes an item with its slot
        self._waiters: collections.deque[tuple[asyncio.Future[Any], float, bool]] = (
            collections.deque()
        )
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> bool:
        """Someone may be waiting for a slot (waits cancelled meanwhile included)."""
        return bool(self._waiters)

    def try_acquire(self) -> bool:
        """Take a slot if one is free and nobody waits for it (no await)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    def wait(self) -> asyncio.Future[Any]:
        """Queue for a slot (when :meth:`try_acquire` found none). The future's
        result is what came with the slot (:meth:`hand_over`; None: a bare
        slot); it fails with ``TimeoutError`` after ``timeout`` seconds.

        The caller awaits the future itself, with no coroutine of this class
        in between. If it is cancelled, what the future holds (a slot, and
        perhaps an item) is the caller's to pass on: see :meth:`handed`.
        """
        return self._queue(items=True)

    @staticmethod
    def handed(waiter: asyncio.Future[Any]) -> bool:
        """Whether a slot was handed to ``waiter`` (its result: the item)."""
        return waiter.done() and not waiter.cancelled() and waiter.exception() is None

    async def acquire(self) -> None:
        """Take a bare slot, waiting at most ``timeout`` seconds for one.

        Raises:
            TimeoutError: no slot became free in time.
        """
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter = self._queue(items=False)
        try:
            await waiter
        except asyncio.CancelledError:
            if self.handed(waiter):
                # the slot was handed over as the caller was cancelled: pass it on
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the oldest waiter, or to the free count."""
        waiters = self._waiters
        while waiters:
            waiter, _, _ = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    def hand_over(self, item: Any) -> bool:
        """Give a slot with ``item`` to the oldest waiter, if it waits for one
        through :meth:`wait`; False: the slot is still the caller's."""
        waiters = self._waiters
        while waiters:
            waiter, _, items = waiters[0]
            if waiter.done():
                waiters.popleft()
                continue
            if not items:
                return False
            waiters.popleft()
            waiter.set_result(item)
            return True
        return False

    def _queue(self, *, items: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiters.append((waiter, loop.time() + self._timeout, items))
        if self._timer is None:
            self._arm(loop)
        return waiter

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._waiters
        while waiters and waiters[0][0].done():
            waiters.popleft()
        self._timer = loop.call_at(waiters[0][1], self._expire, loop) if waiters else None

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        waiters = self._waiters
        passed = loop.time() + self._SLACK
        while waiters and (waiters[0][0].done() or waiters[0][1] <= passed):
            waiter, _, _ = waiters.popleft()
            if not waiter.done():
                waiter.set_exception(TimeoutError())
        self._arm(loop)
