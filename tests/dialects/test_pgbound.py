"""asyncpg calls bounded by the loop's watch instead of a timer each
(``contextstore/_dialects/_pgbound.py``), against the real server.

A call is made to wait by a lock: another connection holds ``ACCESS
EXCLUSIVE`` on the table each call touches, and the server's own
``statement_timeout`` is off, so only the client's bound can end the wait.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from asyncpg.cursor import Cursor
from asyncpg.prepared_stmt import PreparedStatement

from contextstore._dialects import _pgbound
from contextstore._dialects._pgbound import BoundedConnection, bounded_connection_class

pytestmark = pytest.mark.postgresql

BOUND = 0.4


async def connect(url: str, bound: float = BOUND) -> BoundedConnection:
    connection: BoundedConnection = await asyncpg.connect(
        url.replace("postgresql+asyncpg://", "postgresql://", 1),
        connection_class=bounded_connection_class(bound),
        server_settings={"statement_timeout": "0"},
    )
    return connection


Lock = Callable[[], Awaitable[None]]


@pytest.fixture
async def locked(postgresql_empty_url: str) -> AsyncIterator[tuple[str, Lock]]:
    """The URL and ``lock()``: table ``t`` (one row) locked by another connection
    from then until the end of the test."""
    holder = await asyncpg.connect(postgresql_empty_url.replace("+asyncpg", ""))
    transaction = holder.transaction()

    async def lock() -> None:
        await transaction.start()
        await holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")

    try:
        await holder.execute("CREATE TABLE t (n integer)")
        await holder.execute("INSERT INTO t VALUES (1)")
        yield postgresql_empty_url, lock
    finally:
        await holder.close()


async def _prepared_fetch(connection: BoundedConnection, lock: Lock) -> Any:
    # SQLAlchemy's path: a prepared statement's fetch (asyncpg's prepare keeps
    # the table's lock until the next statement: a sleep instead of the lock)
    statement = await connection.prepare("SELECT pg_sleep($1)")
    return await statement.fetch(5)


async def _cursor_fetch(connection: BoundedConnection, lock: Lock) -> Any:
    # SQLAlchemy's streams: a cursor of a prepared statement, in a
    # transaction; the query runs at the first fetch
    await connection.execute("BEGIN")
    statement = await connection.prepare("SELECT pg_sleep(5) FROM generate_series(1, 3)")
    cursor = await statement.cursor()
    return await cursor.fetch(10)


def _after_lock(
    call: Callable[[BoundedConnection], Awaitable[Any]],
) -> Callable[[BoundedConnection, Lock], Awaitable[Any]]:
    async def locked_then_call(connection: BoundedConnection, lock: Lock) -> Any:
        await lock()
        return await call(connection)

    return locked_then_call


CALLS: dict[str, Callable[[BoundedConnection, Lock], Awaitable[Any]]] = {
    "fetch": _after_lock(lambda c: c.fetch("SELECT n FROM t")),
    "fetchrow": _after_lock(lambda c: c.fetchrow("SELECT n FROM t")),
    "fetchval": _after_lock(lambda c: c.fetchval("SELECT n FROM t")),
    "execute": _after_lock(lambda c: c.execute("UPDATE t SET n = 2")),
    "execute with arguments": _after_lock(lambda c: c.execute("UPDATE t SET n = $1", 2)),
    "executemany": _after_lock(lambda c: c.executemany("INSERT INTO t VALUES ($1)", [(1,), (2,)])),
    "copy_records_to_table": _after_lock(
        lambda c: c.copy_records_to_table("t", records=[(1,), (2,)])
    ),
    "prepare": _after_lock(lambda c: c.prepare("SELECT n FROM t")),
    "prepared statement": _prepared_fetch,
    "cursor": _cursor_fetch,
}


@pytest.mark.parametrize("call", list(CALLS), ids=list(CALLS))
async def test_a_call_past_its_bound_raises_timeout_and_closes_the_connection(
    locked: tuple[str, Lock], call: str
) -> None:
    url, lock = locked
    connection = await connect(url)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=f"no answer within {BOUND:g} s"):
            # wait_for's own TimeoutError (no such message) if the bound failed
            await asyncio.wait_for(CALLS[call](connection, lock), BOUND + 3)
        waited = time.monotonic() - started
        assert BOUND <= waited < BOUND + 1.0
        assert connection.is_closed()
        assert connection.expired
        assert connection.watch.outstanding() == 0
    finally:
        connection.terminate()


async def test_a_call_that_answers_in_time_is_untouched(postgresql_empty_url: str) -> None:
    connection = await connect(postgresql_empty_url, bound=5.0)
    try:
        assert await connection.fetchval("SELECT pg_sleep(0.2)::text || 'ok'") == "ok"
        statement = await connection.prepare("SELECT $1::int + 1")
        assert await statement.fetchval(41) == 42
        async with connection.transaction():
            cursor = await statement.cursor(1)
            assert [tuple(row) for row in await cursor.fetch(5)] == [(2,)]
            assert [row[0] async for row in statement.cursor(2)] == [3]
        assert not connection.expired
        assert not connection.is_closed()
        assert connection.watch.outstanding() == 0
    finally:
        await connection.close()


async def test_a_call_on_a_connection_closed_earlier_is_no_timeout(
    postgresql_empty_url: str,
) -> None:
    # the watch closed the connection as its last call's answer arrived (that
    # call returned): the next call fails as on any closed connection
    connection = await connect(postgresql_empty_url)
    connection.expire()
    with pytest.raises(asyncpg.InterfaceError, match="closed"):
        await connection.fetchval("SELECT 1")
    assert connection.watch.outstanding() == 0


async def test_calls_arm_no_timer_each(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    armed = 0
    real_call_later = loop.call_later

    def counting(*args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        nonlocal armed
        armed += 1
        return real_call_later(*args, **kwargs)

    bounded = await connect(postgresql_empty_url, bound=30.0)
    plain = await asyncpg.connect(
        postgresql_empty_url.replace("+asyncpg", ""), command_timeout=30.0
    )
    try:
        # the first call arms the watch's timer, and asyncpg's statement cache
        # one per new statement (its entries expire after 300 s): not counted
        await bounded.fetchval("SELECT 1")
        await plain.fetchval("SELECT 1")
        monkeypatch.setattr(loop, "call_later", counting)
        for _ in range(100):
            await bounded.fetchval("SELECT 1")
        bounded_armed, armed = armed, 0
        for _ in range(100):
            await plain.fetchval("SELECT 1")
        # no timer, against asyncpg's timer per call
        assert bounded_armed == 0
        assert armed >= 100
    finally:
        monkeypatch.undo()
        await bounded.close()
        await plain.close()


async def test_a_shorter_bound_is_kept_while_a_longer_call_waits(
    locked: tuple[str, Lock],
) -> None:
    url, lock = locked
    patient = await connect(url, bound=30.0)
    hasty = await connect(url, bound=BOUND)
    await lock()
    try:
        waiting = asyncio.create_task(patient.fetch("SELECT n FROM t"))
        await asyncio.sleep(0.1)  # the watch's timer is armed for 30 s now
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await hasty.fetch("SELECT n FROM t")
        assert time.monotonic() - started < BOUND + 1.0
        assert not waiting.done()  # its own deadline is far
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # a cancelled call is no longer watched
        assert patient.watch.outstanding() == 0
        assert not patient.expired
    finally:
        patient.terminate()
        hasty.terminate()


def _server_calls(cls: type) -> set[str]:
    return {
        name
        for name, member in vars(cls).items()
        # asyncpg's statements and cursors wrap theirs in a validity check
        if not name.startswith("_") and inspect.iscoroutinefunction(inspect.unwrap(member))
    }


def test_every_asyncpg_call_that_waits_on_the_server_is_watched() -> None:
    """A coroutine method asyncpg adds is noticed here: it must be watched (or
    shown not to wait on the server) before it can be relied on."""
    assert _server_calls(asyncpg.Connection) == {*_pgbound._CONNECTION_CALLS, "prepare"}
    assert _server_calls(PreparedStatement) == {
        name for name in vars(_pgbound._Statement) if not name.startswith("_")
    } - {"cursor"}
    assert _server_calls(Cursor) == {
        name for name in vars(_pgbound._CursorProxy) if not name.startswith("_")
    }


def test_one_class_per_bound() -> None:
    assert bounded_connection_class(2.5) is bounded_connection_class(2.5)
    assert bounded_connection_class(2.5).bound == 2.5
    assert bounded_connection_class(32.0).bound == 32.0
    assert issubclass(bounded_connection_class(2.5), asyncpg.Connection)
