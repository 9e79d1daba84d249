"""``Settings.slow_statement_ms``: a warning on ``contextstore.slow`` for every
statement slower than the threshold, with its text and duration and never its
parameters, on the driver path, on SQLAlchemy Connections and on a watched engine.

A statement is made slow the same way on every dialect: it waits for a lock a
concurrent transaction holds for :data:`HOLD` seconds (the row's lock on the
servers, the write lock on SQLite).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, select, update

from contextstore import NewMessage, Settings, Store, Viewer
from contextstore._execute import observed
from contextstore.schema import sessions

LOGGER = "contextstore.slow"
THRESHOLD_MS = 400.0
#: seconds the blocking transaction holds its lock: well past the threshold
HOLD = 1.2
#: a parameter value that must never reach the log
SECRET = "hunter2-SECRET-7f3a9c"
ADMIN = Viewer(agent_id="root", is_admin=True)


@pytest.fixture
async def store(empty_url: str) -> AsyncIterator[Store]:
    settings = Settings(database_url=empty_url, slow_statement_ms=THRESHOLD_MS)
    async with Store(settings) as connected:
        await connected.sessions.create(purpose="slow", created_by="a", session_id="s1")
        yield connected


def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def assert_no_secret(record: logging.LogRecord) -> None:
    assert SECRET not in record.getMessage()
    assert SECRET not in repr(record.args)
    assert SECRET not in repr(vars(record))


async def while_locked(store: Store, call: Callable[[], Awaitable[Any]]) -> None:
    """``call`` made while another transaction holds the lock of session s1 for HOLD s."""
    held = asyncio.Event()

    async def holder() -> None:
        async with store.transaction() as tx:
            await tx.sessions.update("s1", purpose="held")
            held.set()
            await asyncio.sleep(HOLD)

    task = asyncio.create_task(holder())
    try:
        await held.wait()
        await call()
    finally:
        await task


def watch_engine(store: Store) -> None:
    """A statement listener of someone else's: the core then runs on SQLAlchemy Connections."""

    def listener(*_args: Any) -> None:
        pass

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", listener)


async def test_the_settings_own_listeners_keep_the_driver_path(store: Store) -> None:
    # the slow log times the driver path itself: it must not make the engine
    # look observed (that would send every call through SQLAlchemy Connections)
    assert not observed(store.db.engine)
    watch_engine(store)
    assert observed(store.db.engine)


@pytest.mark.parametrize("watched", [False, True], ids=["driver-path", "watched-engine"])
async def test_a_slow_repository_statement_is_logged_once_without_parameters(
    store: Store, caplog: pytest.LogCaptureFixture, watched: bool
) -> None:
    if watched:
        watch_engine(store)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    await while_locked(store, lambda: store.sessions.update("s1", purpose=SECRET))
    (record,) = slow_records(caplog)
    assert record.levelno == logging.WARNING
    statement: str = record.statement  # type: ignore[attr-defined]
    duration: float = record.duration_ms  # type: ignore[attr-defined]
    assert duration > THRESHOLD_MS
    message = record.getMessage()
    assert statement in message
    assert f"{duration:.1f} ms" in message
    # the UPDATE itself, or on SQLite the BEGIN that waited for the write lock
    assert "sessions" in statement.lower() or "begin" in statement.lower()
    assert_no_secret(record)
    assert (await store.sessions.get("s1")).purpose == SECRET  # type: ignore[union-attr]


async def test_a_slow_store_db_statement_is_logged_once_without_parameters(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    stmt = update(sessions).where(sessions.c.id == "s1").values(purpose=SECRET)
    await while_locked(store, lambda: store.db.execute(stmt))
    (record,) = slow_records(caplog)
    statement: str = record.statement  # type: ignore[attr-defined]
    assert record.duration_ms > THRESHOLD_MS  # type: ignore[attr-defined]
    assert statement in record.getMessage()
    assert "sessions" in statement.lower() or "begin" in statement.lower()
    assert_no_secret(record)


@pytest.mark.parametrize("watched", [False, True], ids=["driver-path", "watched-engine"])
async def test_fast_statements_log_nothing(
    store: Store, caplog: pytest.LogCaptureFixture, watched: bool
) -> None:
    if watched:
        watch_engine(store)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    assert (await store.sessions.get("s1")) is not None
    await store.memory.set("agent", "k", {"token": SECRET})
    assert await store.db.fetch_all(select(sessions.c.id)) == [{"id": "s1"}]
    async with store.transaction() as tx:
        await tx.messages.add("s1", sender="a", content=SECRET)
        await tx.fetch_value(select(sessions.c.purpose))
    assert slow_records(caplog) == []


@pytest.mark.parametrize("watched", [False, True], ids=["driver-path", "watched-engine"])
async def test_every_kind_of_statement_is_logged_without_its_values(
    empty_url: str, caplog: pytest.LogCaptureFixture, watched: bool
) -> None:
    # a threshold of a microsecond logs every statement: none may carry a value,
    # bulk inserts included (COPY on PostgreSQL, values written into the text
    # of MySQL's multi-row INSERTs)
    settings = Settings(database_url=empty_url, slow_statement_ms=0.001)
    async with Store(settings) as store:
        if watched:
            watch_engine(store)
        await store.sessions.create(purpose="p", created_by="a", session_id="s1")
        caplog.set_level(logging.WARNING, logger=LOGGER)
        await store.sessions.update("s1", purpose=SECRET)
        await store.memory.set("agent", "k", {"token": SECRET})
        assert (await store.memory.get("agent", "k")).value == {"token": SECRET}  # type: ignore[union-attr]
        await store.messages.add("s1", sender="a", content=SECRET)
        items = [NewMessage(sender="a", content=f"{SECRET} {n}") for n in range(300)]
        async with store.transaction() as tx:
            added = await tx.messages.add_many("s1", items)
            await tx.execute(update(sessions).values(purpose=SECRET))
        assert [m.content for m in added] == [i.content for i in items]
        await store.db.fetch_all(select(sessions).where(sessions.c.purpose == SECRET))
        records = slow_records(caplog)
        texts = [r.statement for r in records]  # type: ignore[attr-defined]
        assert len(records) >= 10
        for record in records:
            assert_no_secret(record)
        assert any("messages" in text.lower() and "insert" in text.lower() for text in texts)
        assert any("agent_memory" in text.lower() for text in texts)
