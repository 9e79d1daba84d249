"""add_many by each driver's bulk path: every record gets the id of its own row,
and MariaDB's batches stay under the server's max_allowed_packet."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, literal_column, select

from contextstore import NewMessage, Settings, Store, Viewer
from contextstore.schema import messages

from ._scratch import assert_batch_left_nothing

ADMIN = Viewer(agent_id="admin", is_admin=True)


@pytest.fixture
async def store(empty_url: str) -> AsyncIterator[Store]:
    async with Store(Settings(database_url=empty_url)) as connected:
        await connected.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        yield connected


@pytest.mark.parametrize("count", [3, 250], ids=["few", "bulk-path"])
async def test_every_record_carries_the_id_of_its_own_row(store: Store, count: int) -> None:
    # 250 rows: past PostgreSQL's COPY threshold; SQLite's executemany at any size
    items = [
        NewMessage(sender=f"agent-{n % 5}", content=f"row {n} é ☃", metadata={"n": n})
        for n in range(count)
    ]
    records = await store.messages.add_many("s1", items)
    assert [r.content for r in records] == [i.content for i in items]
    assert len({r.id for r in records}) == count
    stored = {
        row["id"]: (row["content"], row["metadata"])
        for row in await store.db.fetch_all(
            select(messages.c.id, messages.c.content, messages.c.metadata)
        )
    }
    assert {r.id: (r.content, r.metadata) for r in records} == stored
    for record in records[:: max(1, count // 10)]:
        assert await store.messages.get(record.id, viewer=ADMIN) == record


@pytest.mark.mysql
async def test_mariadb_cuts_a_batch_larger_than_max_allowed_packet(mysql_empty_url: str) -> None:
    async with Store(Settings(database_url=mysql_empty_url)) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        packet = int(await store.db.fetch_value(select(literal_column("@@max_allowed_packet"))))
        # together well past one packet: one statement would be refused by the server
        size = 60_000
        count = packet // size + packet // (2 * size)
        inserts: list[str] = []

        def record(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
            if sql.lstrip().upper().startswith("INSERT INTO"):
                inserts.append(sql)

        event.listen(store.db.engine.sync_engine, "before_cursor_execute", record)
        items = [
            NewMessage(sender="a", content=f"{n:06d}" + "x" * (size - 6)) for n in range(count)
        ]
        records = await store.messages.add_many("s1", items)
        # the rows hold more than one packet, and the server took them all: the
        # batch was cut into several statements...
        assert sum(len(i.content) for i in items) > packet
        assert len(inserts) >= 2
        # ...that commit together, each record with its own row
        assert [r.content for r in records] == [i.content for i in items]
        rows = await store.db.fetch_all(
            select(messages.c.id, messages.c.content).order_by(messages.c.id)
        )
        assert [(row["id"], row["content"]) for row in rows] == [(r.id, r.content) for r in records]


@pytest.mark.mysql
async def test_mariadb_ids_follow_auto_increment_increment(mysql_empty_url: str) -> None:
    # a multi-row INSERT draws consecutive ids in steps of auto_increment_increment
    # (what a Galera node or a multi-primary setup uses): the records say the
    # ids their rows got, not first + n
    from sqlalchemy import text

    async with Store(Settings(database_url=mysql_empty_url)) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        items = [NewMessage(sender="a", content=f"row {n}") for n in range(40)]
        async with store.transaction() as tx:
            await tx.execute(text("SET SESSION auto_increment_increment = 3"))
            try:
                records = await tx.messages.add_many("s1", items)
            finally:
                await tx.execute(text("SET SESSION auto_increment_increment = 1"))
        ids = [r.id for r in records]
        assert [b - a for a, b in itertools.pairwise(ids)] == [3] * 39
        rows = await store.db.fetch_all(
            select(messages.c.id, messages.c.content).order_by(messages.c.id)
        )
        assert [(row["id"], row["content"]) for row in rows] == [(r.id, r.content) for r in records]


@pytest.mark.mysql
async def test_mariadb_returning_path_gives_each_row_its_id(mysql_empty_url: str) -> None:
    # innodb_autoinc_lock_mode 2 (Galera's) sends the ids back instead: the same
    # statements a server in that mode gets, on this server
    from contextstore._dialects import dialect_for
    from contextstore._dialects._base import returning_ids
    from contextstore._facts import search_text
    from contextstore.repositories.messages import _INSERT_ROW

    async with Store(Settings(database_url=mysql_empty_url)) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        recipe = dialect_for(store.db.engine.url)
        form = _INSERT_ROW.form(store.db.engine.dialect)
        now = datetime.now(UTC)
        rows = [
            {
                "session_id": "s1",
                "sender": "a",
                "sender_type": "generic",
                "content": f"row {n}",
                "visibility": "public",
                "message_type": "agent_response",
                "metadata": {},
                "parent_message_id": None,
                "timestamp": now,
                "client_token": f"{'ab' * 12}{n:08x}",
                "search_text": search_text(f"row {n}"),
            }
            for n in range(30)
        ]
        values = form.args_many(rows, {})

        async def work(executor: Any) -> list[int]:
            batches = [values[:7], values[7:]]
            return await returning_ids(executor, messages, form.names, batches)

        ids = await store.db.perform(work)
        assert recipe.name == "mysql"
        stored = {
            row["id"]: row["client_token"]
            for row in await store.db.fetch_all(select(messages.c.id, messages.c.client_token))
        }
        assert {
            row_id: row["client_token"] for row_id, row in zip(ids, rows, strict=True)
        } == stored


_AWKWARD = ["100% %s %% %(x)s", 'it\'s "quoted"', "back\\slash \\' \\\\", "é ☃ 日本 \U0001f680"]


@pytest.mark.mysql
@pytest.mark.parametrize("watched", [False, True], ids=["driver", "watched-engine"])
async def test_mariadb_statements_built_ahead_keep_every_value(
    mysql_empty_url: str, watched: bool
) -> None:
    # each statement's text is built with the driver's escaping while the one
    # before runs; on a watched engine it goes through SQLAlchemy, which
    # %-formats every statement: values with % and quotes must arrive as given
    from contextstore._dialects.mysql import _FIRST_ROWS, _PIPELINE_ROWS

    count = 2 * _PIPELINE_ROWS + 234
    async with Store(Settings(database_url=mysql_empty_url)) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        inserts: list[str] = []
        if watched:

            def record(_conn: Any, _cursor: Any, sql: str, *_rest: Any) -> None:
                if sql.lstrip().upper().startswith("INSERT INTO"):
                    inserts.append(sql)

            event.listen(store.db.engine.sync_engine, "before_cursor_execute", record)
        items = [
            NewMessage(
                sender=f"agent-{n % 4}",
                sender_type=f"type %{n % 3}",
                content=f"{n}: {_AWKWARD[n % len(_AWKWARD)]}",
                metadata={"text": _AWKWARD[(n + 1) % len(_AWKWARD)], "n": n},
            )
            for n in range(count)
        ]
        records = await store.messages.add_many("s1", items)
        if watched:
            # a small first statement, then full ones: 100 + 250 + 250 + 134 rows
            rest = count - _FIRST_ROWS - 2 * _PIPELINE_ROWS
            sizes = [sql.count("), (") + 1 for sql in inserts]
            assert sizes == [_FIRST_ROWS, _PIPELINE_ROWS, _PIPELINE_ROWS, rest]
        assert [(r.content, r.sender_type, r.metadata) for r in records] == [
            (i.content, i.sender_type, i.metadata) for i in items
        ]
        rows = await store.db.fetch_all(
            select(
                messages.c.id, messages.c.content, messages.c.sender_type, messages.c.metadata
            ).order_by(messages.c.id)
        )
        assert [tuple(row.values()) for row in rows] == [
            (r.id, r.content, r.sender_type, r.metadata) for r in records
        ]


@pytest.mark.mysql
async def test_mariadb_cancelled_between_statements_writes_nothing_and_leaks_nothing(
    mysql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from contextstore._dialects import mysql

    monkeypatch.setattr(mysql, "_FIRST_ROWS", 20)
    monkeypatch.setattr(mysql, "_PIPELINE_ROWS", 20)
    sent = 0
    halfway = asyncio.Event()
    real_insert = mysql.AiomysqlWire.insert

    async def counting_insert(self: Any, sql: str, args: Any) -> int:
        nonlocal sent
        sent += 1
        if sent == 5:
            halfway.set()
        return await real_insert(self, sql, args)

    monkeypatch.setattr(mysql.AiomysqlWire, "insert", counting_insert)
    items = [NewMessage(sender="a", content=f"row {n}") for n in range(2000)]
    async with Store(Settings(database_url=mysql_empty_url)) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        task = asyncio.create_task(store.messages.add_many("s1", items))
        await asyncio.wait_for(halfway.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sent < 2000 // 20  # stopped between statements, not after the last
        await assert_batch_left_nothing(store, "s1")
        records = await store.messages.add_many("s1", items[:100])
        assert await store.messages.count("s1", viewer=ADMIN) == len(records) == 100


@pytest.mark.mysql
async def test_mariadb_a_statement_that_cannot_be_built_leaves_the_connection_in_step(
    mysql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the next statement's text fails while the one before is on the server:
    # that one is answered first, nothing of the batch stays, and the pooled
    # connection serves the next calls normally
    import aiomysql

    from contextstore import ContextStoreError
    from contextstore._dialects import mysql

    monkeypatch.setattr(mysql, "_FIRST_ROWS", 20)
    monkeypatch.setattr(mysql, "_PIPELINE_ROWS", 20)
    real_literal = aiomysql.Connection.literal

    def failing_literal(self: Any, value: Any) -> Any:
        if value == "row 50":
            raise TypeError("cannot escape this value")
        return real_literal(self, value)

    monkeypatch.setattr(aiomysql.Connection, "literal", failing_literal)
    items = [NewMessage(sender="a", content=f"row {n}") for n in range(100)]
    settings = Settings(database_url=mysql_empty_url, pool_size=1, max_overflow=0)
    async with Store(settings) as store:
        await store.sessions.create(purpose="bulk", created_by="a", session_id="s1")
        connection_id = select(literal_column("CONNECTION_ID()"))
        before = await store.db.fetch_value(connection_id)
        with pytest.raises((ContextStoreError, TypeError)):
            await store.messages.add_many("s1", items)
        # the same server connection, still usable: it was not left mid-reply
        assert await store.db.fetch_value(connection_id) == before
        await assert_batch_left_nothing(store, "s1")
        monkeypatch.setattr(aiomysql.Connection, "literal", real_literal)
        records = await store.messages.add_many("s1", items)
        assert [r.content for r in records] == [i.content for i in items]
        assert await store.messages.count("s1", viewer=ADMIN) == 100
