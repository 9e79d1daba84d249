"""A service's own Core statements inside a unit of work (core backend, every dialect)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from contextstore import Settings, Store

from ._scratch import create_tables, defaulted, parents


class Boom(Exception):
    pass


async def test_own_statements_share_the_units_transaction(empty_url: str) -> None:
    async with Store(Settings(database_url=empty_url)) as store:
        await create_tables(store.db)
        count = select(func.count()).select_from(parents)
        with pytest.raises(Boom):  # noqa: PT012 - the block is the unit of work under test
            async with store.transaction() as tx:
                await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
                await tx.execute(insert(parents).values(id=1, name="mine"))
                await tx.execute_many(
                    insert(parents), [{"id": 2, "name": "a"}, {"id": 3, "name": "b"}]
                )
                assert await tx.fetch_value(count) == 3
                assert [
                    row["name"]
                    for row in await tx.fetch_all(select(parents.c.name).order_by(parents.c.id))
                ] == ["mine", "a", "b"]
                row = await tx.fetch_one(select(parents.c.name).where(parents.c.id == 1))
                assert row is not None
                assert row["name"] == "mine"
                raise Boom
        # rolled back together: the service's rows and contextstore's session
        assert await store.db.fetch_value(count) == 0
        assert await store.sessions.get("s1") is None

        async with store.transaction() as tx:
            await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
            await tx.execute(insert(parents).values(id=1, name="mine"))
        assert await store.db.fetch_value(count) == 1
        assert await store.sessions.get("s1") is not None


async def test_own_statements_get_python_defaults_and_savepoints_in_a_unit(
    empty_url: str,
) -> None:
    async with Store(Settings(database_url=empty_url)) as store:
        await create_tables(store.db)
        async with store.transaction() as tx:
            # the column's default is computed in Python: SQLAlchemy's execution
            # context must run for the caller's own statement inside the unit
            await tx.execute(insert(defaulted).values(id=1))
            with pytest.raises(Boom):  # noqa: PT012 - the savepoint block is under test
                async with tx.savepoint():
                    await tx.execute(insert(defaulted).values(id=2, label="undone"))
                    raise Boom
            await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
            rows = await tx.fetch_all(select(defaulted).order_by(defaulted.c.id))
            assert [(row["id"], row["label"]) for row in rows] == [(1, "from python")]
        rows = await store.db.fetch_all(select(defaulted))
        assert [(row["id"], row["label"]) for row in rows] == [(1, "from python")]
        assert await store.sessions.get("s1") is not None


async def test_an_own_statement_first_in_a_unit_is_inside_its_transaction(
    empty_url: str,
) -> None:
    # the unit's BEGIN may be held back until its first statement (SQLite's
    # BEGIN IMMEDIATE): a first statement of the caller's own must not run
    # before it, outside the transaction
    async with Store(Settings(database_url=empty_url)) as store:
        await create_tables(store.db)
        count = select(func.count()).select_from(parents)
        with pytest.raises(Boom):  # noqa: PT012 - the block is the unit of work under test
            async with store.transaction() as tx:
                await tx.execute(insert(parents).values(id=1, name="first"))
                await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
                assert await tx.fetch_value(count) == 1
                raise Boom
        assert await store.db.fetch_value(count) == 0
        assert await store.sessions.get("s1") is None

        async with store.transaction() as tx:
            assert await tx.fetch_value(count) == 0
            await tx.execute(insert(parents).values(id=1, name="kept"))
        assert await store.db.fetch_value(count) == 1
