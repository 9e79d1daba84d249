"""A call cancelled while its connection is being set up leaves no connection open.

Before the pool hands a new connection out, its ``connect`` events run on it:
the dialect's first-connect initialisation (a few queries), asyncpg's type
codecs, contextstore's own session statements; several round trips in which a
cancellation may land (a caller's timeout, ``store.close()`` cancelling a
replica probe that is opening its first connection). SQLAlchemy before 2.0.53
strands a connection whose connect events were interrupted: nothing closes it,
its server session stays open until the garbage collector finds its socket
(an unclosed-socket ``ResourceWarning``). This is why ``pyproject.toml``
requires 2.0.53, and the CI runs this suite on that lowest version too.

Each step below makes a fresh manager (a fresh pool: its first connection runs
every connect event), starts one read and cancels it a little later than the
step before (5 % later: the steps fall all over the connection's set-up,
whatever the host's speed), until the read finishes first; then no session is
left on the server and no warning was raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from contextstore import ConnectionManager, Settings
from tests._servers import Server

pytestmark = pytest.mark.asyncio

#: the first step cancels the read after this long (seconds); each next step
#: waits 5 % longer, and this much more
STEP = 0.0001
#: a read that takes longer than this to finish fails the test (seconds)
LONGEST = 30.0
#: seconds a closed connection's server session may take to go
SETTLE = 10.0


async def _select_one(conn: AsyncConnection) -> Any:
    return (await conn.execute(text("SELECT 1"))).scalar()


async def _sessions(server: Server, database: str) -> int:
    """Sessions the server holds on ``database`` (counted from the admin database)."""
    if server.dialect == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
        driver = "postgresql+asyncpg"
    else:
        sql = "SELECT count(*) FROM information_schema.processlist WHERE db = :db"
        driver = "mysql+aiomysql"
    engine = create_async_engine(server.admin_url.set(drivername=driver), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql), {"db": database})).scalar_one())
    finally:
        await engine.dispose()


async def test_a_read_cancelled_while_connecting_leaves_no_connection(
    empty_url: str, dialect_name: str, servers: dict[str, Server]
) -> None:
    settings = Settings(database_url=empty_url)
    cancelled = 0
    delay = 0.0
    while True:
        manager = ConnectionManager(settings)
        try:
            read = asyncio.ensure_future(manager.run(_select_one, write=False))
            await asyncio.sleep(delay)
            if not read.cancel():
                assert await read == 1
                break
            with contextlib.suppress(asyncio.CancelledError):
                await read
            cancelled += 1
        finally:
            await manager.dispose()
        delay = delay * 1.05 + STEP
        assert delay < LONGEST, f"the read did not finish within {LONGEST:g} s"
    assert cancelled > 0, "no cancellation took effect"

    if dialect_name in servers:
        server = servers[dialect_name]
        database = str(make_url(empty_url).database)
        deadline = time.monotonic() + SETTLE
        left = await _sessions(server, database)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            left = await _sessions(server, database)
        assert left == 0, f"{left} server sessions left after {cancelled} cancelled reads"
    # a connection left for the garbage collector warns here (an error under
    # the suite's filterwarnings), in this test
    gc.collect()
