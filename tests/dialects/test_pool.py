"""The connection pool on every dialect: its counters, exhaustion, recovery."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import literal, select

from contextstore import DatabaseUnavailableError, PoolExhaustedError, PoolStats

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
