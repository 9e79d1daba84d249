"""The execution core: repository calls on held driver connections, watched engines on
SQLAlchemy Connections, and the pool's limits shared by both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, literal, select

from contextstore import PoolStats, Settings, Store, Viewer

VIEWER = Viewer(agent_id="a")


@pytest.fixture
async def store(empty_url: str) -> AsyncIterator[Store]:
    settings = Settings(database_url=empty_url, pool_size=2, max_overflow=1, pool_timeout=5)
    async with Store(settings) as connected:
        await connected.sessions.create(purpose="core", created_by="a", session_id="s1")
        yield connected


class Checkouts:
    """Connections taken out of SQLAlchemy's pool (a pool event: it watches no statement)."""

    def __init__(self, store: Store) -> None:
        self.count = 0
        event.listen(store.db.engine.sync_engine, "checkout", self.seen)

    def seen(self, *_args: Any) -> None:
        self.count += 1


async def test_repository_calls_do_not_check_a_connection_out_per_call(store: Store) -> None:
    message = await store.messages.add("s1", sender="a", content="hello core")
    checkouts = Checkouts(store)
    for _ in range(20):
        assert await store.messages.get(message.id, viewer=VIEWER) == message
        assert (await store.messages.list("s1", viewer=VIEWER)).items == [message]
        await store.memory.set("a", "k", {"n": 1})
        assert (await store.memory.get("a", "k")).value == {"n": 1}  # type: ignore[union-attr]
    # 80 calls, one after the other, on the connection the core already holds
    assert checkouts.count == 0
    assert store.db.pool_stats() == PoolStats(size=2, checked_in=1, checked_out=0, overflow=0)


async def test_a_statement_listener_sees_every_repository_statement(store: Store) -> None:
    message = await store.messages.add("s1", sender="a", content="watched")
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql)

    sync_engine = store.db.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    try:
        assert await store.messages.get(message.id, viewer=VIEWER) == message
        added = await store.messages.add("s1", sender="a", content="while watched")
        assert (await store.messages.list("s1", viewer=VIEWER)).items == [message, added]
        await store.memory.set("a", "k", 1)
        assert (await store.memory.get("a", "k")).value == 1  # type: ignore[union-attr]
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
    selects = [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]
    inserts = [sql for sql in seen if sql.lstrip().upper().startswith("INSERT")]
    assert len(selects) >= 3  # get, list, memory.get
    assert len(inserts) >= 2  # add, memory.set's upsert
    count = len(seen)
    assert await store.messages.get(message.id, viewer=VIEWER) == message
    assert len(seen) == count  # detached: nothing more reaches it


async def test_the_core_and_own_statements_share_the_pool_limit(store: Store) -> None:
    # 3 connections in all (pool_size 2 + max_overflow 1): 12 concurrent
    # repository calls and own statements queue for them, none fails
    message = await store.messages.add("s1", sender="a", content="shared")

    async def repository_call() -> None:
        assert await store.messages.get(message.id, viewer=VIEWER) == message

    async def own_statement() -> None:
        assert await store.db.fetch_value(select(literal(7))) == 7

    async def own_transaction() -> None:
        async with store.db.transaction() as conn:
            assert (await conn.execute(select(literal(8)))).scalar() == 8
            await asyncio.sleep(0.01)

    calls = [repository_call, own_statement, own_transaction] * 4
    await asyncio.gather(*(call() for call in calls))
    stats = store.db.pool_stats()
    assert stats is not None
    assert stats.checked_out == 0
    assert stats.checked_in + stats.checked_out <= 3


async def test_a_cancelled_call_leaves_no_connection_checked_out(store: Store) -> None:
    message = await store.messages.add("s1", sender="a", content="cancel me")
    for delay in (0, 0.0005, 0.001, 0.002, 0.005):
        task = asyncio.ensure_future(store.messages.get(message.id, viewer=VIEWER))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.2)  # a discarded connection is closed in the background
    stats = store.db.pool_stats()
    assert stats is not None
    assert stats.checked_out == 0
    assert await store.messages.get(message.id, viewer=VIEWER) == message
