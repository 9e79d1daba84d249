"""add_many by each driver's bulk path: every record gets the id of its own row,
and MariaDB's batches stay under the server's max_allowed_packet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, literal_column, select

from contextstore import NewMessage, Settings, Store, Viewer
from contextstore.schema import messages

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
