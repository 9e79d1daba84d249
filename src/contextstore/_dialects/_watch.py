"""Deadlines of calls to a server, kept without a loop timer per call.

A driver's own timeout (asyncpg's ``command_timeout``, ``asyncio.timeout``
around a read) arms a timer when a call starts and cancels it when the call
ends. With asyncio's loop that costs several microseconds of every statement:
the timers of calls that already ended stay in the loop's heap until they
expire or are swept, so each new one is pushed into a heap of hundreds,
comparing ``TimerHandle`` objects in Python on the way.

A :class:`Watch`, one per event loop, keeps the deadlines instead: a call
writes its connection's deadline when it starts and removes it when it ends
(a dict entry, no timer). The watch holds one timer, armed for the earliest
deadline only while some call is outstanding; when it fires, it calls
``expire()`` on every connection whose call passed its deadline, and the
driver's shim ends that call (see ``_pgbound`` and ``_drivers/aiomysql``).
"""

from __future__ import annotations

import asyncio
import math
import weakref
from time import monotonic
from typing import Protocol

__all__ = ["Expirable", "Watch", "watch"]


class Expirable(Protocol):
    """A connection whose outstanding call a :class:`Watch` can end."""

    def expire(self) -> None:
        """End the outstanding call, which passed its deadline."""


class Watch:
    """The outstanding calls of one event loop, and the timer that ends the late ones."""

    __slots__ = ("_deadlines", "_loop", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weak: the watch is the value of a dict keyed by the loop
        self._loop = weakref.ref(loop)
        self._deadlines: dict[Expirable, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def enter(self, connection: Expirable, bound: float) -> bool:
        """Record a call of ``connection`` that must end within ``bound`` seconds;
        False when one is already recorded (a public method that another one
        calls: the outer call's deadline stands)."""
        deadlines = self._deadlines
        if connection in deadlines:
            return False
        deadline = monotonic() + bound
        deadlines[connection] = deadline
        if deadline < self._timer_at:
            self._arm(deadline)
        return True

    def leave(self, connection: Expirable) -> None:
        # the timer stays armed: it finds nothing due and is not re-armed
        # while nothing is outstanding, which costs one wake-up per bound
        # instead of a cancel per call
        self._deadlines.pop(connection, None)

    def outstanding(self) -> int:
        """How many calls are being watched (for tests)."""
        return len(self._deadlines)

    def _arm(self, at: float) -> None:
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_later(max(0.0, at - monotonic()), self._expire_due)
        self._timer_at = at

    def _expire_due(self) -> None:
        self._timer, self._timer_at = None, math.inf
        now = monotonic()
        due = [connection for connection, at in self._deadlines.items() if at <= now]
        for connection in due:
            del self._deadlines[connection]
            connection.expire()
        if self._deadlines:
            self._arm(min(self._deadlines.values()))


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watch] = weakref.WeakKeyDictionary()


def watch() -> Watch:
    """The running loop's watch (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _WATCHES.get(loop)
    if found is None:
        found = _WATCHES[loop] = Watch(loop)
    return found
