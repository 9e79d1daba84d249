"""Errors produced by real servers come out as contextstore errors, original chained.

Statement timeouts are dialect-specific (SQLite has no server-side limit) and
live in test_postgresql.py / test_mysql.py; pool exhaustion in test_pool.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, literal, select, text

from contextstore import (
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    ValidationError,
)

from ._scratch import (
    CLOSED_PORT,
    children,
    create_tables,
    in_transaction,
    managed,
    parents,
    server_url,
)


def assert_translated(error: BaseException) -> None:
    """A contextstore error, with the driver/SQLAlchemy error chained as its cause."""
    assert type(error).__module__ == "contextstore.errors"
    assert error.__cause__ is not None
    assert type(error.__cause__).__module__.split(".")[0] != "contextstore"


async def test_unique_violation_is_a_conflict(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        await db.execute(insert(parents).values(id=1, name="taken"))
        with pytest.raises(ConflictError) as caught:
            await db.execute(insert(parents).values(id=2, name="taken"))
        assert_translated(caught.value)
        assert isinstance(caught.value.__cause__, sa_exc.IntegrityError)
        with pytest.raises(ConflictError):  # primary key too
            await db.execute(insert(parents).values(id=1, name="other"))
        with pytest.raises(ConflictError):  # inside a batch: nothing of it lands
            await db.execute_many(
                insert(parents), [{"id": 5, "name": "five"}, {"id": 6, "name": "taken"}]
            )
        with pytest.raises(ConflictError):
            await in_transaction(
                db,
                insert(parents).values(id=7, name="seven"),
                insert(parents).values(id=8, name="taken"),
            )
        ids = [row["id"] for row in await db.fetch_all(select(parents.c.id))]
        assert ids == [1]
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_foreign_key_violation_on_write_is_not_found(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        await db.execute(insert(parents).values(id=1, name="parent"))
        await db.execute(insert(children).values(parent_id=1))
        with pytest.raises(NotFoundError) as caught:
            await db.execute(insert(children).values(parent_id=404))
        assert_translated(caught.value)
        assert isinstance(caught.value, LookupError)
        with pytest.raises(NotFoundError):
            await in_transaction(
                db,
                insert(children).values(parent_id=1),
                insert(children).values(parent_id=405),
            )
        assert await db.fetch_all(select(children.c.parent_id)) == [{"parent_id": 1}]


async def test_not_null_violation_is_a_validation_error(empty_url: str) -> None:
    async with managed(empty_url) as db:
        await create_tables(db)
        with pytest.raises(ValidationError) as caught:
            await db.execute(insert(parents).values(id=1, name=None))
        assert_translated(caught.value)
        assert isinstance(caught.value, ValueError)


async def test_unclassified_errors_are_still_contextstore_errors(empty_url: str) -> None:
    async with managed(empty_url) as db:
        with pytest.raises(ContextStoreError) as caught:
            await db.fetch_all(text("SELECT * FROM no_such_table"))
        assert type(caught.value) is ContextStoreError
        assert_translated(caught.value)
        with pytest.raises(ContextStoreError) as caught:
            async with db.transaction() as conn:
                await conn.execute(text("THIS IS NOT SQL"))
        assert_translated(caught.value)
        assert await db.fetch_value(select(literal(1))) == 1


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_closed_port_is_unavailable_and_nothing_committed(scheme: str) -> None:
    async with managed(server_url(scheme, CLOSED_PORT), connect_timeout=2) as db:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.execute(text("SELECT 1"))
        assert caught.value.may_have_committed is False
        assert_translated(caught.value)
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.fetch_value(select(literal(1)))
        assert caught.value.may_have_committed is False
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with db.transaction():
                pass
        assert caught.value.may_have_committed is False
        assert_translated(caught.value)
        with pytest.raises(DatabaseUnavailableError):
            async for _row in db.stream(select(literal(1))):
                pass
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_unopenable_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'contextstore.db'}"
    async with managed(url) as db:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.execute(text("SELECT 1"))
        assert caught.value.may_have_committed is False
        assert_translated(caught.value)
    # aiosqlite stops the worker thread of a failed connect without waiting for
    # it; let it finish while this test's event loop is still open
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=5)
            assert not thread.is_alive()
