"""aiomysql calls bounded by the loop's watch (``contextstore/_dialects/_drivers/aiomysql.py``),
against the real server.

A call is made to wait by the server itself (``SLEEP``, or a row that sleeps
in the middle of an unbuffered result); the server's own
``max_statement_time`` is off, so only the client's bound can end the wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiomysql.cursors import SSCursor
from pymysql.err import OperationalError
from sqlalchemy.engine import make_url

from contextstore._dialects._drivers.aiomysql import (
    CR_SERVER_LOST,
    READ_TIMEOUT_ARG,
    connect_within_timeout,
)

pytestmark = pytest.mark.mysql

BOUND = 0.4
#: a call past its bound must end within this (the watch's timer, a loop turn)
LATE = BOUND + 0.6
#: how long the server sleeps: far past the bound
SLEEP = 4


@pytest.fixture
async def connect(mysql_empty_url: str) -> AsyncIterator[Any]:
    """``connect(bound)``: a connection made as the engine makes them."""
    url = make_url(mysql_empty_url)
    made: list[Any] = []

    async def connect(bound: float | None = BOUND) -> Any:
        connection = await connect_within_timeout(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username or "root",
            password=url.password or "",
            db=url.database,
            connect_timeout=5,
            autocommit=True,
            init_command="SET max_statement_time = 0",
            **{READ_TIMEOUT_ARG: bound},
        )
        made.append(connection)
        return connection

    try:
        yield connect
    finally:
        for connection in made:
            connection.close()


def _assert_hung(error: OperationalError, started: float) -> None:
    waited = time.monotonic() - started
    assert error.args[0] == CR_SERVER_LOST, error
    assert f"no reply within {BOUND:g} s" in str(error.args[1])
    # what the dialect classifies as a hung connection (ErrorKind.HUNG)
    assert isinstance(error.__cause__, TimeoutError)
    assert BOUND * 0.9 <= waited < LATE, waited


async def test_a_statement_past_its_bound_fails_as_a_hung_connection(connect: Any) -> None:
    connection = await connect()
    started = time.monotonic()
    with pytest.raises(OperationalError) as caught:
        async with connection.cursor() as cursor:
            await cursor.execute(f"SELECT SLEEP({SLEEP})")
    _assert_hung(caught.value, started)
    assert connection.closed
    assert connection.watch.outstanding() == 0


async def test_the_rows_of_an_unbuffered_cursor_are_bounded(connect: Any) -> None:
    """The rows after ``execute``: the server sends the first rows, then sleeps."""
    connection = await connect()
    # 4 KB rows fill the server's network buffer (16 KB) long before row 300
    sql = f"SELECT seq, REPEAT('x', 4000), SLEEP(IF(seq = 300, {SLEEP}, 0)) FROM seq_1_to_400"
    cursor = await connection.cursor(SSCursor)
    await cursor.execute(sql)
    first = await cursor.fetchone()
    assert first is not None
    assert first[0] == 1
    started = time.monotonic()
    with pytest.raises(OperationalError) as caught:
        await cursor.fetchall()
    _assert_hung(caught.value, started)
    assert connection.closed
    assert connection.watch.outstanding() == 0


async def test_calls_within_their_bound_are_untouched(connect: Any) -> None:
    connection = await connect()
    for _ in range(3):
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT SLEEP(0.1), 42")
            assert (await cursor.fetchone())[1] == 42
        await connection.begin()
        await connection.commit()
        await connection.ping(False)
    cursor = await connection.cursor(SSCursor)
    await cursor.execute("SELECT seq FROM seq_1_to_1000")
    assert [row[0] for row in await cursor.fetchmany(10)] == list(range(1, 11))
    await cursor.close()  # reads the rest of the result, watched, within the bound
    await asyncio.sleep(BOUND * 1.5)  # past the first deadlines: the timer finds nothing due
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT 1")
        assert await cursor.fetchone() == (1,)
    assert not connection.closed
    assert not connection.expired
    assert connection.watch.outstanding() == 0


async def test_the_callers_cancellation_stays_a_cancellation(connect: Any) -> None:
    connection = await connect(bound=30)

    async def sleep() -> None:
        async with connection.cursor() as cursor:
            await cursor.execute(f"SELECT SLEEP({SLEEP})")

    task = asyncio.create_task(sleep())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not connection.expired
    assert connection.watch.outstanding() == 0


async def test_a_cancellation_as_the_bound_passes_stays_a_cancellation(connect: Any) -> None:
    """The watch and the caller cancel the same call: the caller's cancellation wins."""
    connection = await connect()

    async def sleep() -> None:
        async with connection.cursor() as cursor:
            await cursor.execute(f"SELECT SLEEP({SLEEP})")

    task = asyncio.create_task(sleep())
    # cancel from inside the watch's own expiry, before the task runs again
    expire = connection.expire

    def expire_and_cancel() -> None:
        expire()
        task.cancel()

    connection.expire = expire_and_cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.expired
    assert connection.closed
    assert connection.watch.outstanding() == 0


async def test_unbounded_connections_are_not_watched(connect: Any) -> None:
    connection = await connect(bound=None)
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT SLEEP(0.1)")
    cursor = await connection.cursor(SSCursor)
    assert type(cursor) is SSCursor  # not the watched subclass
    await cursor.close()
    assert connection.watch.outstanding() == 0
