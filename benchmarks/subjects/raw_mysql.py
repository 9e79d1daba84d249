"""The raw MySQL/MariaDB subject: aiomysql with hand-written SQL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
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


def _mariadb_returning(version: str) -> bool:
    """MariaDB 10.5+ has ``INSERT ... RETURNING`` (also with ON DUPLICATE KEY UPDATE)."""
    if "mariadb" not in version.lower():
        return False
    major, minor = (int(part) for part in version.split("-")[0].split(".")[:2])
    return (major, minor) >= (10, 5)


class RawMySQL(RawSubject):
    """aiomysql on one held connection in autocommit, utf8mb4 and UTC like core."""

    def __init__(self, url: URL) -> None:
        self._url = url
        self._conn: Any = None
        self._pool: Any = None
        self._sql = message_sql(lambda _n: "%s", ts="m.`timestamp`")
        columns = INSERT_COLUMNS.format(ts="`timestamp`")
        self._insert = (
            f"INSERT INTO messages ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        self._search = (
            f"SELECT {MESSAGE_COLUMNS}, "
            "MATCH (m.search_text) AGAINST (%s IN NATURAL LANGUAGE MODE) AS score "
            "FROM messages AS m "
            "WHERE MATCH (m.search_text) AGAINST (%s IN NATURAL LANGUAGE MODE) > 0 "
            f"AND {visibility_predicate('%s', '%s')} "
            f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
        )
        memory = MEMORY_COLUMNS.format(key="`key`")
        self._returning = False
        self._memory_returning = f" RETURNING {memory}"
        self._memory_set = (
            "INSERT INTO agent_memory (agent_id, session_id, `key`, value, metadata, "
            "created_at, updated_at, expires_at) VALUES (%s, NULL, %s, %s, %s, %s, %s, NULL) "
            "ON DUPLICATE KEY UPDATE value = VALUES(value), metadata = VALUES(metadata), "
            "updated_at = VALUES(updated_at), expires_at = VALUES(expires_at)"
        )
        self._memory_get = (
            f"SELECT {memory} FROM agent_memory WHERE agent_id = %s AND scope = %s "
            "AND `key` = %s AND (expires_at IS NULL OR expires_at > %s)"
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "host": self._url.host or "127.0.0.1",
            "port": self._url.port or 3306,
            "user": self._url.username or "root",
            "password": self._url.password or "",
            "db": self._url.database,
            "charset": "utf8mb4",
            "autocommit": True,
            "init_command": "SET time_zone = '+00:00'",
        }

    async def open(self) -> None:
        import aiomysql

        self._conn = await aiomysql.connect(**self._connect_kwargs())
        self._pool = await aiomysql.create_pool(
            minsize=POOL_SIZE, maxsize=POOL_SIZE, **self._connect_kwargs()
        )
        rows = await self._fetch(self._conn, "SELECT VERSION()", ())
        self.server_version = str(rows[0][0])
        self._returning = _mariadb_returning(self.server_version)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        pool, self._pool = self._pool, None
        if conn is not None:
            conn.close()
        if pool is not None:
            pool.close()
            await pool.wait_closed()

    @staticmethod
    async def _fetch(conn: Any, sql: str, params: Sequence[Any]) -> list[Any]:
        async with conn.cursor() as cursor:
            await cursor.execute(sql, params)
            return list(await cursor.fetchall())

    @staticmethod
    def _naive(moment: datetime) -> datetime:
        return moment.astimezone(UTC).replace(tzinfo=None)

    @staticmethod
    def _time(value: Any) -> datetime:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]

    def _row(self, session_id: str, item: MessageData, moment: datetime) -> tuple[Any, ...]:
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
        # autocommit: the single INSERT is its own transaction
        async with self._conn.cursor() as cursor:
            await cursor.execute(self._insert, self._row(session_id, item, self._naive(utcnow())))
            return int(cursor.lastrowid)

    async def _insert_many(self, rows: list[tuple[Any, ...]]) -> None:
        # executemany rewrites into multi-row INSERTs of <= 1 MB: several statements,
        # so one transaction around them
        conn = self._conn
        await conn.begin()
        try:
            async with conn.cursor() as cursor:
                await cursor.executemany(self._insert, rows)
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()

    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int:
        now = self._naive(utcnow())
        await self._insert_many([self._row(session_id, item, now) for item in items])
        return len(items)

    async def seed(self, session_id: str, items: Sequence[MessageData], start: datetime) -> None:
        step = timedelta(milliseconds=10)
        base = self._naive(start)
        rows = [self._row(session_id, item, base + n * step) for n, item in enumerate(items)]
        for offset in range(0, len(rows), 20_000):
            await self._insert_many(rows[offset : offset + 20_000])

    async def get(self, message_id: int) -> int | None:
        rows = await self._fetch(self._conn, self._sql["get"], (message_id, VIEWER_ID, VIEWER_TYPE))
        return self._message(rows[0])["id"] if rows else None

    async def list_newest(self, session_id: str) -> list[int]:
        rows = await self._fetch(
            self._conn, self._sql["newest"], (session_id, VIEWER_ID, VIEWER_TYPE)
        )
        return [self._message(row)["id"] for row in rows[:PAGE_SIZE]]

    async def page(self, session_id: str, position: PagePosition | None) -> list[int]:
        if position is None or position.after is None:
            rows = await self._fetch(
                self._conn, self._sql["first_page"], (session_id, VIEWER_ID, VIEWER_TYPE)
            )
        else:
            moment, last = position.after
            rows = await self._fetch(
                self._conn,
                self._sql["next_page"],
                (session_id, VIEWER_ID, VIEWER_TYPE, moment, moment, last),
            )
        return [self._message(row)["id"] for row in rows[:PAGE_SIZE]]

    async def search(self, query: str) -> list[int]:
        terms = " ".join(search_words(query))
        rows = await self._fetch(self._conn, self._search, (terms, terms, VIEWER_ID, VIEWER_TYPE))
        return [self._message(row)["id"] for row in rows]

    async def memory_set(self, key: str, value: Any) -> None:
        if self._returning:
            # MariaDB >= 10.5: the upsert returns the stored row, one autocommit statement
            await self._upsert_memory(key, value)
            return
        # MySQL has no RETURNING: upsert and read back in one transaction
        conn = self._conn
        await conn.begin()
        try:
            await self._upsert_memory(key, value)
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()

    async def _upsert_memory(self, key: str, value: Any) -> None:
        """The statements of ``memory_set`` without a transaction of their own.

        MariaDB 10.5+: one ``INSERT ... ON DUPLICATE KEY UPDATE ... RETURNING``;
        MySQL: the upsert, then the ``SELECT`` that reads the stored entry back.
        """
        now = self._naive(utcnow())
        params = (MEMORY_AGENT, key, json.dumps(value), "{}", now, now)
        if self._returning:
            rows = await self._fetch(self._conn, self._memory_set + self._memory_returning, params)
            self._entry(rows[0])
            return
        async with self._conn.cursor() as cursor:
            await cursor.execute(self._memory_set, params)
            await cursor.execute(self._memory_get, (MEMORY_AGENT, "", key, now))
            self._entry((await cursor.fetchall())[0])

    async def memory_get(self, key: str) -> Any:
        rows = await self._fetch(
            self._conn, self._memory_get, (MEMORY_AGENT, "", key, self._naive(utcnow()))
        )
        return self._entry(rows[0])["value"] if rows else None

    async def pooled_get(self, message_id: int) -> int | None:
        async with self._pool.acquire() as conn:
            rows = await self._fetch(conn, self._sql["get"], (message_id, VIEWER_ID, VIEWER_TYPE))
        return self._message(rows[0])["id"] if rows else None

    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        # the connection is in autocommit: BEGIN ... COMMIT makes the five calls one
        # transaction; add, get and memory_get send one statement each on self._conn,
        # memory.set's statements go without the transaction MySQL's path opens itself
        conn = self._conn
        await conn.begin()
        try:
            new_id = await self.add(session_id, item)
            await self.get(new_id)
            await self._upsert_memory(key, value)
            await self.memory_get(key)
            await self.get(message_id)
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()
        return new_id

    async def far_position(self, session_id: str, page_number: int) -> PagePosition:
        rows = await self._fetch(
            self._conn,
            self._sql["position"],
            (session_id, VIEWER_ID, VIEWER_TYPE, (page_number - 1) * PAGE_SIZE - 1),
        )
        return PagePosition(after=(rows[0][0], int(rows[0][1])))

    async def id_range(self, session_id: str) -> tuple[int, int]:
        rows = await self._fetch(self._conn, self._sql["range"], (session_id,))
        return int(rows[0][0]), int(rows[0][1])

    async def analyze(self) -> None:
        for table in ("messages", "agent_memory", "sessions"):
            await self._fetch(self._conn, f"ANALYZE TABLE {table}", ())
