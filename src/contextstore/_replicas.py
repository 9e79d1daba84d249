"""Read replicas: which server a single read outside a unit of work goes to.

Invariants:

* only single reads reach a replica (``write=False`` outside a unit of work,
  declared by the caller); writes, units of work, ``transaction()`` and
  streams stay on the primary, so a write never reaches a replica;
* **read your writes, per task**: every write (or unit of work, or
  transaction), once it has ended, marks the task's :class:`Fence` (made on
  the task's first write; tasks started after it share it). The first
  replica read after it asks the primary for its log position once (on
  PostgreSQL ``pg_current_wal_lsn()``, which is at or past the commit of
  every write acknowledged so far); a replica serves that task's reads only
  once it is known to have replayed that far (the replayed position it last
  reported, or one question on the same connection just before the read),
  and the primary serves them otherwise. A dialect without such positions
  sends a task that wrote to the primary; one whose replicas show a session
  its own writes by themselves (``replica_reads_own_writes``) needs no fence.
  The fence lives in a ``ContextVar``: tasks a task starts after its first
  write share its fence (their writes move it, so the task reads them too
  once they are done), other tasks are not slowed down by it;
* a replica that failed (or did not answer a probe within
  :data:`PROBE_TIMEOUT`) serves no read until a probe gets an answer from it
  again, one whose lag was last measured beyond :data:`MAX_LAG_MS` until it
  catches up; the read that found it failing goes to the primary: a
  replica's trouble never fails a read (the primary's answer, or error, is
  the read's), and only that one read waits for it. One attempt per
  replica, no retry loop there: the primary is the retry;
* every replica is probed (answer and lag) at most once per
  :data:`PROBE_SECONDS`, in a background task started by a read, and by
  ``health()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ContextStoreError, DatabaseUnavailableError, QueryTimeoutError
from .models import ReplicaHealth

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine

    from ._dialects import Dialect
    from ._execute import Executor
    from .connection import ConnectionManager

__all__ = ["MAX_LAG_MS", "PROBE_SECONDS", "PROBE_TIMEOUT", "Fence", "Replicas", "wrote"]

T = TypeVar("T")

#: replay lag beyond which a replica serves no read (ms).
MAX_LAG_MS = 5000.0
#: seconds between two probes of the replicas (their answer and lag).
PROBE_SECONDS = 1.0
#: seconds a background probe waits for a replica's answer.
PROBE_TIMEOUT = 5.0


class Fence:
    """The writes of one task so far: the log position they all lie behind,
    asked of the primary on the first replica read that needs it."""

    __slots__ = ("generation", "position")

    def __init__(self) -> None:
        self.position: int | None = None
        #: writes ended so far: a position asked for before the last of them
        #: ended is not kept
        self.generation = 0


_fence: ContextVar[Fence | None] = ContextVar("contextstore_fence", default=None)


def wrote() -> None:
    """Mark the current task as having written on the primary (call once the write
    has ended, whatever its outcome)."""
    fence = _fence.get()
    if fence is None:
        _fence.set(Fence())
    else:
        fence.generation += 1
        fence.position = None


class _Behind(Exception):
    """The replica has not replayed the task's writes yet: read on the primary."""


class Replica:
    """One replica: its own manager (engine and leases) and what is known of it."""

    def __init__(self, manager: ConnectionManager, url: str) -> None:
        self.manager = manager
        self.url = url
        #: failed: no read until a probe gets an answer again
        self.down = False
        self.error: str | None = None
        #: the replayed position last seen, and the lag last measured
        self.replayed: int | None = None
        self.lag_ms: float | None = None

    def usable(self) -> bool:
        return not self.down and (self.lag_ms is None or self.lag_ms <= MAX_LAG_MS)

    def failed(self, error: BaseException | str) -> None:
        self.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.down = True


class Replicas:
    """The replicas of one primary, and the routing of single reads over them.

    Args:
        primary: the manager of the primary (asked for its log position).
        urls: the replicas' URLs (``settings.effective_replica_urls``).
        build: makes a replica's manager from its URL.
    """

    def __init__(
        self,
        primary: ConnectionManager,
        urls: list[URL],
        build: Callable[[URL], ConnectionManager],
    ) -> None:
        self._primary = primary
        self._recipe: Dialect = primary.recipe
        self._replicas = [
            Replica(build(url), url.render_as_string(hide_password=True)) for url in urls
        ]
        self._turn = itertools.cycle(range(len(self._replicas)))
        self._probed = 0.0
        self._probe: asyncio.Task[None] | None = None

    # -- routing ----------------------------------------------------------

    async def read(
        self,
        work: Callable[[Any], Awaitable[T]],
        on_replica: Callable[[ConnectionManager, Callable[[Any], Awaitable[T]]], Awaitable[T]],
        position: Callable[[Any, str], Awaitable[Any]],
    ) -> tuple[bool, T | None]:
        """Run the read ``work`` on a replica that may serve it.

        Args:
            work: the read, given a connection or an executor.
            on_replica: runs work on a replica's manager (one attempt).
            position: reads the first row of a textual statement on that
                connection (or executor).

        Returns:
            ``(True, result)`` when a replica served it; ``(False, None)``:
            the caller reads on the primary.
        """
        now = time.monotonic()
        if now - self._probed > PROBE_SECONDS:
            self._start_probe(now)
        fence = _fence.get()
        needed: int | None = None
        if fence is not None and not self._recipe.replica_reads_own_writes:
            if self._recipe.primary_position_sql() is None:
                return False, None
            needed = fence.position
            if needed is None:
                generation = fence.generation
                needed = await self._primary_position()
                if needed is None:
                    return False, None
                if fence.generation == generation:
                    fence.position = needed
        for _ in range(len(self._replicas)):
            replica = self._replicas[next(self._turn)]
            if not replica.usable():
                continue
            if needed is not None and (replica.replayed is None or replica.replayed < needed):
                checked = self._checked(replica, needed, work, position)
            else:
                checked = work
            try:
                return True, await on_replica(replica.manager, checked)
            except _Behind:
                return False, None
            except ContextStoreError as exc:
                # the replica's trouble is not the read's: the primary answers.
                # Unreachable or hung (no answer in time): no read goes there
                # until a probe hears from it again
                if isinstance(exc, DatabaseUnavailableError | QueryTimeoutError):
                    replica.failed(exc)
                return False, None
        return False, None

    def _checked(
        self,
        replica: Replica,
        needed: int,
        work: Callable[[Any], Awaitable[T]],
        position: Callable[[Any, str], Awaitable[Any]],
    ) -> Callable[[Any], Awaitable[T]]:
        """``work`` preceded, on the same connection, by the replayed position's check."""
        sql = self._recipe.replica_position_sql()
        recipe = self._recipe

        async def checked(conn: Any) -> T:
            if sql is None:
                raise _Behind
            row = await position(conn, sql)
            replayed = recipe.log_position(row[0] if row else None)
            if replayed is not None and (replica.replayed is None or replayed > replica.replayed):
                replica.replayed = replayed
            if replayed is None or replayed < needed:
                raise _Behind
            return await work(conn)

        return checked

    async def _primary_position(self) -> int | None:
        sql = self._recipe.primary_position_sql()
        if sql is None:
            return None

        async def ask(executor: Executor) -> Any:
            rows = await executor.send(sql)
            return rows[0][0] if rows else None

        return self._recipe.log_position(await self._primary.on_primary(ask))

    # -- lag --------------------------------------------------------------

    def _start_probe(self, now: float) -> None:
        self._probed = now
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._measure_all())

    async def _measure_all(self) -> None:
        primary: int | None = None
        # without the primary's position the replicas are still probed
        with contextlib.suppress(Exception):
            primary = await asyncio.wait_for(self._primary_position(), PROBE_TIMEOUT)
        await asyncio.gather(
            *(self._bounded(replica, primary) for replica in self._replicas),
            return_exceptions=True,
        )

    async def _bounded(self, replica: Replica, primary: int | None) -> None:
        try:
            await asyncio.wait_for(self._measure(replica, primary), PROBE_TIMEOUT)
        except TimeoutError:
            replica.failed(f"no answer from the replica within {PROBE_TIMEOUT:g} s")

    async def _measure(self, replica: Replica, primary: int | None) -> float | None:
        """Replay position and lag of ``replica``; raises what the replica raised."""
        sql = self._recipe.replica_position_sql()

        async def ask(executor: Executor) -> Any:
            if sql is None:
                # no position to read: a round trip says the replica answers
                await executor.send(self._recipe.server_version_sql())
                return None
            rows = await executor.send(sql)
            return rows[0] if rows else None

        try:
            row = await replica.manager.perform(ask, write=False)
        except ContextStoreError as exc:
            replica.failed(exc)
            raise
        replayed = self._recipe.log_position(row[0] if row else None)
        if replayed is not None:
            replica.replayed = max(replica.replayed or 0, replayed)
        lag = None if row is None or row[1] is None else max(0.0, float(row[1]))
        if lag is not None and primary is not None and replayed is not None and replayed >= primary:
            lag = 0.0
        replica.lag_ms = lag
        replica.error = None
        replica.down = False
        return lag

    async def health(self, timeout: float) -> list[ReplicaHealth]:
        """Each replica's state, measured now within ``timeout``; never raises."""
        primary: int | None = None
        with contextlib.suppress(Exception):
            primary = await asyncio.wait_for(self._primary_position(), timeout)

        async def one(replica: Replica) -> ReplicaHealth:
            start = time.perf_counter()
            error: str | None = None
            lag: float | None = None
            try:
                lag = await asyncio.wait_for(self._measure(replica, primary), timeout)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                error = f"no answer from the replica within {timeout:g} s"
                replica.failed(error)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            if error is None and lag is not None and lag > MAX_LAG_MS:
                error = (
                    f"replication lag {lag:.0f} ms beyond {MAX_LAG_MS:.0f} ms: not used for reads"
                )
            return ReplicaHealth(
                url=replica.url,
                ok=error is None,
                latency_ms=round((time.perf_counter() - start) * 1000, 3),
                lag_ms=None if lag is None else round(lag, 3),
                error=error,
            )

        return list(await asyncio.gather(*(one(replica) for replica in self._replicas)))

    def engines(self) -> list[AsyncEngine]:
        """The replicas' engines, in the order of ``replica_urls``."""
        return [replica.manager.engine for replica in self._replicas]

    async def close(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.cancel()
            with contextlib.suppress(BaseException):
                await probe
        for replica in self._replicas:
            await replica.manager.dispose()
