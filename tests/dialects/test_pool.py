"""The connection pool on every dialect: its counters, exhaustion, recovery."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import event, literal, select

from contextstore import DatabaseUnavailableError, PoolExhaustedError, PoolStats
from contextstore._execute import Query

from ._scratch import managed

POOL_TIMEOUT = 0.5
#: scheduling slack on top of pool_timeout (no retry may stretch the wait).
MARGIN = 1.5


async def test_pool_stats_count_idle_busy_and_overflow(empty_url: str) -> None:
    async with managed(empty_url, pool_size=1, max_overflow=2) as db:
        assert db.pool_stats() == PoolStats(size=1, checked_in=0, checked_out=0, overflow=0)
        async with AsyncExitStack() as held:
            for _ in range(3):
                await held.enter_async_context(db.engine.connect())
            # the pool's one connection and both overflow connections are out
            assert db.pool_stats() == PoolStats(size=1, checked_in=0, checked_out=3, overflow=2)
        # the overflow connections are closed on return, the pooled one kept
        assert db.pool_stats() == PoolStats(size=1, checked_in=1, checked_out=0, overflow=0)
        async with db.engine.connect():
            assert db.pool_stats() == PoolStats(size=1, checked_in=0, checked_out=1, overflow=0)


async def test_pool_exhaustion_raises_within_pool_timeout(empty_url: str) -> None:
    async with managed(empty_url, pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT) as db:
        async with db.transaction():
            stats = db.pool_stats()
            assert stats is not None
            assert stats.checked_out == 1
            for call in (
                lambda: db.fetch_value(select(literal(1))),
                lambda: db.execute(select(literal(1))),
            ):
                started = time.perf_counter()
                with pytest.raises(PoolExhaustedError) as caught:
                    await call()
                elapsed = time.perf_counter() - started
                assert POOL_TIMEOUT * 0.9 <= elapsed < POOL_TIMEOUT + MARGIN
                assert isinstance(caught.value, DatabaseUnavailableError)
                assert caught.value.may_have_committed is False
                assert type(caught.value.__cause__).__module__.startswith("sqlalchemy")
            with pytest.raises(PoolExhaustedError):
                async with db.transaction():
                    pass
            with pytest.raises(PoolExhaustedError):
                async for _row in db.stream(select(literal(1))):
                    pass
        # usable again once the holder gives its connection back
        assert await db.fetch_value(select(literal(42))) == 42
        assert db.pool_stats() == PoolStats(size=1, checked_in=1, checked_out=0, overflow=0)


async def test_in_memory_sqlite_has_no_pool_stats() -> None:
    async with managed("sqlite://") as db:
        assert await db.fetch_value(select(literal(1))) == 1
        assert db.pool_stats() is None


async def test_a_held_connection_past_pool_recycle_is_replaced(empty_url: str) -> None:
    """The execution core keeps a connection between calls; once it is older than
    ``pool_recycle`` the next call gives it back to the pool, which replaces it."""
    recycle = 0.3
    one, two = Query(select(literal(1))), Query(select(literal(2)))
    async with managed(empty_url, pool_size=1, max_overflow=0, pool_recycle=recycle) as db:
        pool = db.engine.sync_engine.pool
        seen: dict[str, int] = {"connect": 0, "checkout": 0}

        def count(name: str) -> None:
            def counted(*_args: object) -> None:
                seen[name] += 1

            event.listen(pool, name, counted)

        count("connect")
        count("checkout")
        for _ in range(3):
            assert await db.read_value(one) == 1
        # one connection, checked out once, held for the next calls
        assert seen == {"connect": 1, "checkout": 1}
        await asyncio.sleep(recycle * 1.5)
        for _ in range(3):
            assert await db.read_value(two) == 2
        # the first call after the recycle age gave it back: a new connection
        assert seen == {"connect": 2, "checkout": 2}
        # a connection held idle between calls counts as checked in
        assert db.pool_stats() == PoolStats(size=1, checked_in=1, checked_out=0, overflow=0)


@pytest.mark.parametrize("pre_ping", [False, True], ids=["handed-over", "pre-ping"])
async def test_calls_queued_on_a_busy_pool_all_run_on_its_connections(
    empty_url: str, pre_ping: bool
) -> None:
    """More calls than connections: each connection a call is done with goes to
    a queued call (handed over with its slot, or, to be pinged first, through
    the idle ones). None is lost, and no connection is opened beyond the pool."""
    query = Query(select(literal(7)))
    async with managed(
        empty_url, pool_size=2, max_overflow=0, pool_timeout=10.0, pool_pre_ping=pre_ping
    ) as db:
        connects = 0

        def connected(*_args: object) -> None:
            nonlocal connects
            connects += 1

        event.listen(db.engine.sync_engine.pool, "connect", connected)
        for _ in range(3):
            assert await asyncio.gather(*(db.read_value(query) for _ in range(40))) == [7] * 40
        assert connects == 2
        assert db.pool_stats() == PoolStats(size=2, checked_in=2, checked_out=0, overflow=0)


async def test_a_call_cancelled_as_a_connection_is_handed_to_it_passes_it_on(
    empty_url: str,
) -> None:
    async with managed(empty_url, pool_size=1, max_overflow=0, pool_timeout=POOL_TIMEOUT) as db:
        leases = db._leases
        lease = await leases.acquire()
        waiting = asyncio.create_task(leases.acquire())
        await asyncio.sleep(0)  # queued for the one slot
        await leases.release(lease, reusable=True)  # handed to ``waiting`` ...
        waiting.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # neither the slot nor the connection leaked: the next call has both at once
        again = await asyncio.wait_for(leases.acquire(), POOL_TIMEOUT / 2)
        assert again is lease
        await leases.release(again, reusable=True)
        assert db.pool_stats() == PoolStats(size=1, checked_in=1, checked_out=0, overflow=0)
