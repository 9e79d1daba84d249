"""SQLite only: per-connection PRAGMAs, BEGIN IMMEDIATE for writes, concurrent writers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, literal, select, text
from sqlalchemy.engine import make_url

from contextstore import (
    ConnectionManager,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
)
from contextstore._dialects import WRITE_INTENT

from ._scratch import children, create_tables, in_transaction, items, managed, parents

pytestmark = pytest.mark.sqlite


async def test_every_pooled_connection_gets_the_pragmas(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url, pool_size=3) as db, AsyncExitStack() as held:
        conns = [await held.enter_async_context(db.engine.connect()) for _ in range(3)]
        for conn in conns:
            # engine connections default to write intent (BEGIN IMMEDIATE):
            # three of them at once would queue for the lock
            await conn.execution_options(**{WRITE_INTENT: False})
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
            # synchronous 1 is NORMAL
            assert pragmas == {
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": 30_000,
                "synchronous": 1,
            }


async def test_in_memory_database_is_shared_and_enforces_foreign_keys() -> None:
    async with managed("sqlite://") as db:
        await create_tables(db)  # one transaction ...
        await db.execute(insert(parents).values(id=1, name="p"))  # ... seen by the next call
        assert await db.fetch_value(select(parents.c.name)) == "p"
        assert await db.fetch_value(text("PRAGMA foreign_keys")) == 1
        with pytest.raises(NotFoundError):
            await db.execute(insert(children).values(parent_id=2))


async def test_uri_memory_database_is_one_shared_connection() -> None:
    async with managed("sqlite:///file:scratch?mode=memory&uri=true") as db:
        await create_tables(db)
        await db.execute(insert(parents).values(id=1, name="p"))
        assert await db.fetch_value(select(parents.c.name)) == "p"
        assert db.pool_stats() is None  # StaticPool


class _Statements:
    """Statements the engine sends to the driver, BEGINs included."""

    def __init__(self, db: ConnectionManager) -> None:
        self.sent: list[str] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, stmt: str, *args: Any) -> None:
        self.sent.append(stmt.split()[0].upper() + (" IMMEDIATE" if "IMMEDIATE" in stmt else ""))

    def take(self) -> list[str]:
        sent, self.sent = self.sent, []
        return sent


async def test_writes_begin_immediate_and_reads_stay_in_autocommit(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url) as db:
        await create_tables(db)
        seen = _Statements(db)

        await db.execute(insert(items).values(n=1))
        assert seen.take() == ["BEGIN IMMEDIATE", "INSERT"]
        await db.execute_many(insert(items), [{"n": 2}, {"n": 3}])
        assert seen.take()[0] == "BEGIN IMMEDIATE"
        async with db.transaction() as conn:
            await conn.execute(select(items.c.n))
        assert seen.take() == ["BEGIN IMMEDIATE", "SELECT"]

        assert await db.fetch_value(select(func.count()).select_from(items)) == 3
        assert await db.fetch_one(select(items.c.n)) is not None
        assert len(await db.fetch_all(select(items.c.n))) == 3
        assert [row async for row in db.stream(select(items.c.n))] != []
        assert seen.take() == ["SELECT"] * 4  # no BEGIN: autocommit reads


async def test_a_transaction_holds_the_write_lock_from_its_start(sqlite_empty_url: str) -> None:
    path = make_url(sqlite_empty_url).database
    assert path is not None
    async with managed(sqlite_empty_url) as db:
        await create_tables(db)
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            async with db.transaction() as conn:
                await conn.execute(select(literal(1)))  # a read: the lock is taken anyway
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    other.execute("BEGIN IMMEDIATE")
            other.execute("BEGIN IMMEDIATE")  # released at commit
            other.execute("ROLLBACK")
        finally:
            other.close()


async def _write_rows(db: ConnectionManager, writer: int, count: int) -> None:
    for n in range(count):
        await db.execute(insert(items).values(label=f"w{writer}", n=n))
    async with db.transaction() as conn:
        for n in range(count, 2 * count):
            # read-then-write inside one transaction: the classic lock-upgrade deadlock
            await conn.execute(select(func.count()).select_from(items))
            await conn.execute(insert(items).values(label=f"w{writer}", n=n))


async def _count_per_writer(db: ConnectionManager) -> dict[str, int]:
    rows = await db.fetch_all(
        select(items.c.label, func.count().label("c")).group_by(items.c.label)
    )
    return {row["label"]: row["c"] for row in rows}


async def test_twenty_concurrent_writers_on_one_file(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url) as db:
        await create_tables(db)
        await asyncio.gather(*(_write_rows(db, writer, 5) for writer in range(20)))
        assert await _count_per_writer(db) == {f"w{writer}": 10 for writer in range(20)}
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_two_managers_write_the_same_file_concurrently(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url) as first, managed(sqlite_empty_url) as second:
        await create_tables(first)
        await asyncio.gather(
            *(_write_rows(first if writer % 2 else second, writer, 5) for writer in range(20))
        )
        expected = {f"w{writer}": 10 for writer in range(20)}
        assert await _count_per_writer(first) == expected
        assert await _count_per_writer(second) == expected


#: counts to 10**9 inside SQLite: seconds of work, long past any test's statement_timeout
_LONG_QUERY = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT count(*) FROM c"
)


async def test_statement_timeout_raises_query_timeout(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url, statement_timeout=0.3) as db:
        with pytest.raises(QueryTimeoutError) as caught:
            await db.fetch_value(_LONG_QUERY)
        orig = getattr(caught.value.__cause__, "orig", None)
        assert isinstance(orig, sqlite3.OperationalError)
        assert orig.sqlite_errorcode == 9  # SQLITE_INTERRUPT: the statement was stopped
        # the interrupted connection went back to the pool and still works
        assert await db.fetch_value(text("SELECT 41 + 1")) == 42
        assert db.pool_stats() is not None
        assert db.pool_stats().checked_out == 0  # type: ignore[union-attr]


async def test_statement_timeout_rolls_back_the_write_it_interrupts(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url, statement_timeout=0.3) as db:
        await create_tables(db)
        await db.execute(insert(parents).values(id=9, name="kept"))
        slow_insert = text(
            "INSERT INTO scratch_parents (id, name) "
            "SELECT 2, 'slow' FROM (SELECT count(*) FROM (WITH RECURSIVE "
            "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
            "SELECT x FROM c))"
        )
        with pytest.raises(QueryTimeoutError):
            await in_transaction(db, insert(parents).values(id=1, name="before"), slow_insert)
        assert await db.fetch_value(select(func.count()).select_from(parents)) == 1
        assert await db.fetch_value(select(parents.c.name)) == "kept"


async def test_no_statement_timeout_lets_a_statement_finish(sqlite_empty_url: str) -> None:
    counting = text(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
        "SELECT count(*) FROM c"
    )
    async with managed(sqlite_empty_url, statement_timeout=None) as db:
        assert await db.fetch_value(counting) == 300000


async def test_a_textual_select_is_a_read_and_takes_no_write_lock(sqlite_empty_url: str) -> None:
    async with managed(sqlite_empty_url) as db:
        await create_tables(db)
        path = make_url(sqlite_empty_url).database
        assert path is not None
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            # a read needs no lock: it answers now, not after the 30 s busy timeout
            assert await asyncio.wait_for(db.fetch_value(text("SELECT 41 + 1")), 5) == 42
            assert await asyncio.wait_for(db.fetch_all(text("  select 1 as one")), 5) == [
                {"one": 1}
            ]
        finally:
            holder.execute("ROLLBACK")
            holder.close()


async def test_a_file_that_cannot_be_opened_leaves_no_worker_thread(tmp_path: Path) -> None:
    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if "connection_worker" in (t.name or "")]

    before = set(workers())
    async with managed(f"sqlite:///{tmp_path}") as db:  # a directory, not a file
        with pytest.raises(
            DatabaseUnavailableError, match=r"^cannot reach the database$"
        ) as caught:
            await db.fetch_value(text("SELECT 1"))
        assert "unable to open" in str(caught.value.__cause__)
    # the failed connection's worker thread has ended before the call returned
    assert [t for t in workers() if t not in before and t.is_alive()] == []
