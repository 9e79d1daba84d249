"""The raw PostgreSQL subject: asyncpg with hand-written SQL, COPY for bulk inserts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from contextstore._facts import search_text, search_words

from ..corpus import VIEWER_ID, VIEWER_TYPE, MessageData, utcnow
from ..plan import MEMORY_AGENT, PAGE_SIZE, POOL_SIZE, SEARCH_LIMIT
from .base import PagePosition
from .raw import (
    INSERT_COLUMNS,
    MEMORY_COLUMNS,
    MESSAGE_COLUMNS,
    RawSubject,
    message_sql,
    visibility_predicate,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class RawPostgreSQL(RawSubject):
    """asyncpg on one held connection (its statement cache on, as by default)."""

    def __init__(self, url: URL) -> None:
        self._url = url
        self._conn: Any = None
        self._pool: Any = None
        self._sql = message_sql(lambda n: f"${n}")
        columns = INSERT_COLUMNS.format(ts="timestamp")
        self._insert = (
            f"INSERT INTO messages ({columns}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id"
        )
        self._copy_columns = [*columns.replace(" ", "").split(",")]
        self._search = (
            f"SELECT {MESSAGE_COLUMNS}, ts_rank(m.search_vector, q) AS score "
            "FROM messages AS m, to_tsquery('simple', $1) AS q "
            f"WHERE m.search_vector @@ q AND {visibility_predicate('$2', '$3')} "
            f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
        )
        memory = MEMORY_COLUMNS.format(key="key")
        self._memory_set = (
            "INSERT INTO agent_memory (agent_id, session_id, key, value, metadata, "
            "created_at, updated_at, expires_at) VALUES ($1, NULL, $2, $3, $4, $5, $5, NULL) "
            "ON CONFLICT (agent_id, scope, key) DO UPDATE SET value = excluded.value, "
            "metadata = excluded.metadata, updated_at = excluded.updated_at, "
            f"expires_at = excluded.expires_at RETURNING {memory}"
        )
        self._memory_get = (
            f"SELECT {memory} FROM agent_memory WHERE agent_id = $1 AND scope = $2 AND key = $3 "
            "AND (expires_at IS NULL OR expires_at > $4)"
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "host": self._url.host or "127.0.0.1",
            "port": self._url.port or 5432,
            "user": self._url.username,
            "password": self._url.password,
            "database": self._url.database,
            "server_settings": {"application_name": "contextstore-bench-raw"},
        }

    async def open(self) -> None:
        import asyncpg

        self._conn = await asyncpg.connect(**self._connect_kwargs())
        self._pool = await asyncpg.create_pool(
            min_size=POOL_SIZE, max_size=POOL_SIZE, **self._connect_kwargs()
        )
        self.server_version = str(await self._conn.fetchval("SELECT version()"))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        pool, self._pool = self._pool, None
        if conn is not None:
            await conn.close()
        if pool is not None:
            await pool.close()

    @staticmethod
    def _row(session_id: str, item: MessageData, moment: datetime) -> tuple[Any, ...]:
        return (
            session_id,
            item.sender,
            item.sender_type,
            item.content,
            item.visibility,
            item.message_type,
            json.dumps(item.metadata),
            moment,
            search_text(item.content),
        )

    async def add(self, session_id: str, item: MessageData) -> int:
        # one statement outside a transaction block is its own transaction
        return int(await self._conn.fetchval(self._insert, *self._row(session_id, item, utcnow())))

    async def _copy(self, rows: list[tuple[Any, ...]]) -> None:
        # COPY is one statement: atomic without an explicit transaction
        await self._conn.copy_records_to_table("messages", records=rows, columns=self._copy_columns)

    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int:
        now = utcnow()
        await self._copy([self._row(session_id, item, now) for item in items])
        return len(items)

    async def seed(self, session_id: str, items: Sequence[MessageData], start: datetime) -> None:
        step = timedelta(milliseconds=10)
        await self._copy(
            [self._row(session_id, item, start + n * step) for n, item in enumerate(items)]
        )

    async def get(self, message_id: int) -> int | None:
        row = await self._conn.fetchrow(self._sql["get"], message_id, VIEWER_ID, VIEWER_TYPE)
        return None if row is None else self._message(row)["id"]

    async def list_newest(self, session_id: str) -> list[int]:
        rows = await self._conn.fetch(self._sql["newest"], session_id, VIEWER_ID, VIEWER_TYPE)
        return [self._message(row)["id"] for row in rows[:PAGE_SIZE]]

    async def page(self, session_id: str, position: PagePosition | None) -> list[int]:
        if position is None or position.after is None:
            rows = await self._conn.fetch(
                self._sql["first_page"], session_id, VIEWER_ID, VIEWER_TYPE
            )
        else:
            moment, last = position.after
            rows = await self._conn.fetch(
                self._sql["next_page"], session_id, VIEWER_ID, VIEWER_TYPE, moment, moment, last
            )
        return [self._message(row)["id"] for row in rows[:PAGE_SIZE]]

    async def search(self, query: str) -> list[int]:
        tsquery = " | ".join(f"'{term}'" for term in search_words(query))
        rows = await self._conn.fetch(self._search, tsquery, VIEWER_ID, VIEWER_TYPE)
        return [self._message(row)["id"] for row in rows]

    async def memory_set(self, key: str, value: Any) -> None:
        self._entry(
            await self._conn.fetchrow(
                self._memory_set, MEMORY_AGENT, key, json.dumps(value), "{}", utcnow()
            )
        )

    async def memory_get(self, key: str) -> Any:
        row = await self._conn.fetchrow(self._memory_get, MEMORY_AGENT, "", key, utcnow())
        return None if row is None else self._entry(row)["value"]

    async def pooled_get(self, message_id: int) -> int | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql["get"], message_id, VIEWER_ID, VIEWER_TYPE)
        return None if row is None else self._message(row)["id"]

    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        # the single-call methods run on self._conn and never commit themselves: inside
        # a transaction block they send the same statements, committed once at the end
        async with self._conn.transaction():
            new_id = await self.add(session_id, item)
            await self.get(new_id)
            await self.memory_set(key, value)
            await self.memory_get(key)
            await self.get(message_id)
        return new_id

    async def far_position(self, session_id: str, page_number: int) -> PagePosition:
        row = await self._conn.fetchrow(
            self._sql["position"],
            session_id,
            VIEWER_ID,
            VIEWER_TYPE,
            (page_number - 1) * PAGE_SIZE - 1,
        )
        return PagePosition(after=(row[0], int(row[1])))

    async def id_range(self, session_id: str) -> tuple[int, int]:
        row = await self._conn.fetchrow(self._sql["range"], session_id)
        return int(row[0]), int(row[1])

    async def analyze(self) -> None:
        # also sets the visibility map, so autovacuum does not start in the middle of reads
        await self._conn.execute("VACUUM ANALYZE")
