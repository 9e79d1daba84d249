"""What the database is asked: statements per call, compiled-cache hits, query plans.

Statements are counted with SQLAlchemy's ``before_cursor_execute`` event (the
calls still reach the real database). Plans are read with each server's
EXPLAIN of the exact statement a far ``messages.list`` page sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from contextstore import NewMessage, Settings, Store, Viewer, _cursor
from contextstore.schema import messages

ADMIN = Viewer(agent_id="root", is_admin=True)


class Statements:
    """Every statement SQLAlchemy sent, with the compiled object it came from."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, bool]] = []

    def take(self) -> list[tuple[str, Any, bool]]:
        sent, self.sent = self.sent, []
        return sent

    def inserts(self, table: str) -> int:
        return sum(
            1
            for sql, _, _ in self.sent
            if sql.lstrip().upper().startswith(f"INSERT INTO {table.upper()}")
        )


@pytest.fixture
async def store(empty_url: str) -> AsyncIterator[Store]:
    async with Store(Settings(database_url=empty_url, pool_size=1, max_overflow=0)) as connected:
        await connected.sessions.create(purpose="statements", created_by="a", session_id="s1")
        yield connected


@pytest.fixture
def statements(store: Store) -> Statements:
    spy = Statements()

    @event.listens_for(store.db.engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        spy.sent.append((sql, getattr(context, "compiled", None), many))

    return spy


async def test_add_many_batches_its_inserts(store: Store, statements: Statements) -> None:
    # below PostgreSQL's COPY threshold, so every dialect goes through INSERT
    count = 150
    batch = [NewMessage(sender=f"a{i % 4}", content=f"row {i}") for i in range(count)]
    added = await store.messages.add_many("s1", batch)
    inserts = statements.inserts("messages")
    assert 1 <= inserts <= 2, f"{inserts} INSERT statements for {count} rows"
    # ids were matched to rows by token: each returned message is the stored row
    assert [m.content for m in added] == [f"row {i}" for i in range(count)]
    assert len({m.id for m in added}) == count
    stored = {
        row["content"]: row["id"]
        for row in await store.db.fetch_all(select(messages.c.id, messages.c.content))
    }
    assert {m.content: m.id for m in added} == stored
    page = await store.messages.list("s1", viewer=ADMIN, limit=1000)
    assert page.items == added  # one timestamp for the batch: input order is id order


async def test_memory_set_compiles_its_upsert_once(store: Store, statements: Statements) -> None:
    await store.memory.set("a", "k", 1)
    await store.memory.set("a", "k", 2)
    await store.memory.set("b", "other", {"x": 1}, ttl=30)
    upserts = [c for sql, c, _ in statements.take() if sql.lstrip().startswith("INSERT")]
    assert len(upserts) == 3
    assert upserts[0] is upserts[1] is upserts[2]  # one compiled form, from the cache


# -- keyset plans ----------------------------------------------------------

ROWS = 400


async def seeded(store: Store) -> tuple[datetime, int]:
    """``ROWS`` messages of s1 with distinct timestamps (plus another session's),
    and the keyset position in the middle of s1."""
    await store.sessions.create(purpose="other", created_by="a", session_id="s2")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "session_id": session_id,
            "sender": "a",
            "sender_type": "generic",
            "content": "x",
            "visibility": "public",
            "message_type": "m",
            "metadata": {},
            "parent_message_id": None,
            "timestamp": base + timedelta(milliseconds=i),
        }
        for session_id in ("s2", "s1")
        for i in range(ROWS)
    ]
    await store.db.execute_many(insert(messages), rows)
    page = await store.messages.list("s1", viewer=ADMIN, limit=ROWS // 2)
    middle = page.items[-1]
    return middle.timestamp, middle.id


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_far_page_reads_an_index_range(store: Store, order: str) -> None:
    captured: dict[str, Any] = {}

    @event.listens_for(store.db.engine.sync_engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if sql.lstrip().upper().startswith("SELECT") and "LIMIT" in sql.upper():
            captured["sql"], captured["params"] = sql, params

    position = await seeded(store)
    cursor = _cursor.encode("messages", _cursor.scope("s1", order, None), position)
    captured.clear()
    page = await store.messages.list("s1", viewer=Viewer(agent_id="a"), cursor=cursor, order=order)
    expected_first = position[1] + (1 if order == "asc" else -1)
    assert page.items[0].id == expected_first
    sql, params = captured["sql"], captured["params"]
    async with store.db.engine.connect() as conn:
        prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        if store.dialect == "postgresql":
            # a table this small would be read whole: ask what the index scan is bounded by
            await conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            await conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        result = await conn.exec_driver_sql(prefix + sql, params)
        plan = [{key: str(value) for key, value in row.items()} for row in result.mappings()]
        await conn.rollback()
    text = "\n".join(" | ".join(row.values()) for row in plan)
    index = "ix_messages_session_id_timestamp_id"
    bound = ">" if order == "asc" else "<"
    if store.dialect == "sqlite":
        assert f"USING INDEX {index} (session_id=? AND timestamp{bound}?)" in text, text
    elif store.dialect == "postgresql":
        assert f"Index Scan{' Backward' if order == 'desc' else ''} using {index}" in text, text
        (cond,) = [line for line in text.splitlines() if "Index Cond" in line]
        assert '"timestamp" ' + bound + "=" in cond, text  # the time bound is an index bound
    else:
        # MariaDB: FORCE INDEX from the recipe, else ``ref`` on session_id alone
        assert (plan[0]["type"], plan[0]["key"]) == ("range", index), text
