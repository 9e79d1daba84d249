"""ConnectionManager on every dialect: round trips, transactions, streams, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, event, func, insert, literal, select, update

from contextstore import ConnectionManager, ContextStoreError, Settings

from ._scratch import create_tables, items, managed

TEXTS = [
    "emoji 😀🚀👩‍👩‍👧 and \N{MUSICAL SYMBOL G CLEF} \U0001d518\U0001d52b\U0001d526",
    "quotes ' \" ` '' \"\" and a backslash \\ and \\\\ and \\n (not a newline)",
    "percent %s %(name)s %% ; -- /* */ and a real\nnewline\tand tab",
    "Ünïcödé 日本語 العربية עברית",
]
DOC = {
    "ключ": ["値", {"emoji": "🎉", "nested": {"list": [1, 2.5, None, True, False]}}],
    "quote": "\"'\\",
    "big": 2**62,
    "empty": {},
}
BIGS = [2**62, -(2**62), 2**63 - 1, -(2**63)]
INSTANTS = [
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(1999, 12, 31, 19, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5))),
]


def _rows() -> list[dict[str, Any]]:
    return [
        {"label": f"row-{i}", "body": body, "doc": DOC, "big": big, "at": at, "n": i}
        for i, (body, big, at) in enumerate(zip(TEXTS, BIGS, INSTANTS + INSTANTS[:1], strict=True))
    ]


def _check_row(row: Any, expected: dict[str, Any]) -> None:
    assert row["label"] == expected["label"]
    assert row["body"] == expected["body"]
    assert row["doc"] == expected["doc"]
    assert row["big"] == expected["big"]
    assert type(row["big"]) is int
    at = row["at"]
    assert at.tzinfo is not None
    assert at.utcoffset() == timedelta(0)
    assert at == expected["at"]  # the same instant
    assert at.microsecond == expected["at"].microsecond


async def test_round_trip_through_every_call(empty_url: str) -> None:
    rows = _rows()
    async with managed(empty_url) as db:
        await create_tables(db)

        assert await db.execute(insert(items).values(rows[0])) == 1
        assert await db.execute_many(insert(items), rows[1:3]) == 2
        async with db.transaction() as conn:
            await conn.execute(insert(items).values(rows[3]))
            inside = (await conn.execute(select(items.c.body).where(items.c.n == 3))).scalar()
        assert inside == rows[3]["body"]

        fetched = await db.fetch_all(select(items).order_by(items.c.n))
        assert len(fetched) == len(rows)
        for row, expected in zip(fetched, rows, strict=True):
            _check_row(row, expected)

        for expected in rows:
            one = await db.fetch_one(select(items).where(items.c.body == expected["body"]))
            assert one is not None
            _check_row(one, expected)
            big = await db.fetch_value(select(items.c.big).where(items.c.big == expected["big"]))
            assert big == expected["big"]
            at = await db.fetch_value(select(items.c.at).where(items.c.n == expected["n"]))
            assert at == expected["at"]
            assert at.tzinfo is not None

        streamed = [row async for row in db.stream(select(items).order_by(items.c.n))]
        assert len(streamed) == len(rows)
        for row, expected in zip(streamed, rows, strict=True):
            _check_row(row, expected)


async def test_empty_results(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        assert await db.fetch_all(select(items)) == []
        assert await db.fetch_one(select(items)) is None
        assert await db.fetch_value(select(items.c.id)) is None
        assert [row async for row in db.stream(select(items))] == []
        assert await db.execute_many(insert(items), []) == 0
        assert await db.fetch_value(select(func.count()).select_from(items)) == 0


async def test_execute_returns_rows_affected_and_takes_params(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        rows = [{"label": f"r{i}", "n": i % 3} for i in range(9)]
        assert await db.execute_many(insert(items), rows) == 9
        stmt = update(items).where(items.c.n == bindparam("which")).values(label="changed")
        assert await db.execute(stmt, {"which": 1}) == 3
        assert await db.execute(stmt, {"which": 7}) == 0
        changed = await db.fetch_value(
            select(func.count()).select_from(items).where(items.c.label == "changed")
        )
        assert changed == 3


async def test_transaction_commits_on_exit_and_rolls_back_on_error(empty_url: str) -> None:
    class Boom(Exception):
        pass

    async with managed(empty_url) as db:
        await create_tables(db)
        async with db.transaction() as conn:
            await conn.execute(insert(items).values(label="kept"))

        async def insert_then_fail() -> None:
            async with db.transaction() as conn:
                await conn.execute(insert(items).values(label="dropped"))
                raise Boom  # not a database error: passes through untranslated

        with pytest.raises(Boom):
            await insert_then_fail()
        labels = await db.fetch_all(select(items.c.label))
        assert [row["label"] for row in labels] == ["kept"]
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_fetch_of_a_returning_write_is_committed(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        # not a plain SELECT, so it runs as a write and is committed
        stmt = insert(items).values(label="x").returning(items.c.label)
        if not db.engine.dialect.insert_returning:
            pytest.skip("this dialect has no INSERT ... RETURNING")
        assert await db.fetch_value(stmt) == "x"
        assert await db.fetch_value(select(func.count()).select_from(items)) == 1


# -- streams ---------------------------------------------------------------


async def _fill(db: ConnectionManager, count: int) -> None:
    await db.execute_many(insert(items), [{"n": i, "label": f"r{i}"} for i in range(count)])


async def test_stream_reads_everything_through_a_server_side_cursor(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        await _fill(db, 5_000)
        seen: list[tuple[bool, Any]] = []

        @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
        def record(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: Any) -> None:
            if "scratch_items" in stmt and not many:
                # SQLAlchemy decides server-side from the stream_results option
                seen.append((context._is_server_side, context.execution_options.get("yield_per")))

        numbers = [
            row["n"] async for row in db.stream(select(items).order_by(items.c.n), batch_size=250)
        ]
        assert numbers == list(range(5_000))
        assert seen == [(True, 250)]
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_stream_gives_its_connection_back_when_closed_early(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        await _fill(db, 1_000)
        taken = []
        async with contextlib.aclosing(
            db.stream(select(items).order_by(items.c.n), batch_size=10)
        ) as rows:
            async for row in rows:
                taken.append(row["n"])
                if len(taken) == 25:
                    stats = db.pool_stats()
                    assert stats is not None
                    assert stats.checked_out == 1
                    break
        assert taken == list(range(25))
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
        assert await db.fetch_value(select(func.count()).select_from(items)) == 1_000


async def test_stream_gives_its_connection_back_when_the_consumer_is_cancelled(
    empty_url: str,
) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        await _fill(db, 1_000)
        first_row = asyncio.Event()
        received: list[int] = []

        async def consume() -> None:
            stream = db.stream(select(items).order_by(items.c.n), batch_size=1)
            async with contextlib.aclosing(stream) as rows:
                async for row in rows:
                    received.append(row["n"])
                    first_row.set()
                    await asyncio.Event().wait()  # stuck in the body until cancelled

        task = asyncio.create_task(consume())
        await first_row.wait()
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert received == [0]
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
        assert await db.fetch_value(select(literal(7))) == 7


async def test_stream_gives_its_connection_back_when_cancelled_inside_a_fetch(
    empty_url: str,
) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        # wide rows (about 2 MB in all), so the driver cannot have them all buffered
        wide = "w" * 2_000
        await db.execute_many(insert(items), [{"n": i, "body": wide} for i in range(1_000)])
        first_row = asyncio.Event()
        received: list[int] = []

        async def consume() -> None:
            # no aclosing and no await in the body: the task can only be
            # cancelled while it waits inside the stream, for the next rows
            async for row in db.stream(select(items).order_by(items.c.n), batch_size=1):
                received.append(row["n"])
                first_row.set()

        task = asyncio.create_task(consume())
        await first_row.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert 0 < len(received) < 1_000  # it really was cancelled mid-stream
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
        assert await db.fetch_value(select(func.count()).select_from(items)) == 1_000


# -- lifecycle -------------------------------------------------------------


async def test_a_disposed_manager_fails_clearly(sqlite_empty_url: str) -> None:
    db = ConnectionManager(Settings(database_url=sqlite_empty_url))
    assert await db.fetch_value(select(literal(1))) == 1
    await db.dispose()
    await db.dispose()  # idempotent
    assert db.pool_stats() is None
    assert "closed" in repr(db)
    with pytest.raises(ContextStoreError, match="closed"):
        await db.fetch_value(select(literal(1)))
    with pytest.raises(ContextStoreError, match="closed"):
        async with db.transaction():
            pass
    with pytest.raises(ContextStoreError, match="closed"):
        _ = db.engine
    report = await db.health_check(timeout=1.0)
    assert report.ok is False
    assert report.error is not None
    assert "closed" in report.error


async def test_dialect_names(sqlite_empty_url: str) -> None:
    for url, name in [
        (sqlite_empty_url, "sqlite"),
        ("postgresql://u@127.0.0.1/db", "postgresql"),
        ("mariadb://u@127.0.0.1/db", "mysql"),
    ]:
        db = ConnectionManager(Settings(database_url=url))
        assert db.dialect == name
        await db.dispose()  # never connected: only drops the engine object
