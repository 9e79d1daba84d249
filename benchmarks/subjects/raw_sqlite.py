"""The raw SQLite subject: aiosqlite with hand-written SQL."""

from __future__ import annotations

import asyncio
import itertools
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
    import aiosqlite


def sqlite_time(moment: datetime) -> str:
    """SQLAlchemy's DATETIME text on SQLite (naive UTC, six fraction digits)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class RawSQLite(RawSubject):
    """aiosqlite with the same PRAGMAs as core: WAL, foreign keys, synchronous=NORMAL.

    Reads use ``execute_fetchall`` (one thread hop per statement).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: aiosqlite.Connection | None = None
        self._pool: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []
        q = "?"
        self._sql = message_sql(lambda _n: q)
        columns = INSERT_COLUMNS.format(ts="timestamp")
        self._insert = f"INSERT INTO messages ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        self._search = (
            f"SELECT {MESSAGE_COLUMNS}, -bm25(messages_fts) AS score FROM messages AS m "
            "JOIN messages_fts ON messages_fts.rowid = m.id "
            f"WHERE messages_fts MATCH ? AND {visibility_predicate('?', '?')} "
            f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
        )
        memory = MEMORY_COLUMNS.format(key="key")
        self._memory_set = (
            "INSERT INTO agent_memory (agent_id, session_id, key, value, metadata, "
            "created_at, updated_at, expires_at) VALUES (?, NULL, ?, ?, ?, ?, ?, NULL) "
            "ON CONFLICT (agent_id, scope, key) DO UPDATE SET value = excluded.value, "
            "metadata = excluded.metadata, updated_at = excluded.updated_at, "
            f"expires_at = excluded.expires_at RETURNING {memory}"
        )
        self._memory_get = (
            f"SELECT {memory} FROM agent_memory WHERE agent_id = ? AND scope = ? AND key = ? "
            "AND (expires_at IS NULL OR expires_at > ?)"
        )

    async def _connect(self) -> aiosqlite.Connection:
        import aiosqlite

        conn = await aiosqlite.connect(self._path, isolation_level=None)
        for pragma in (
            "PRAGMA busy_timeout=30000",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            await conn.execute_fetchall(pragma)
        self._all.append(conn)
        return conn

    @staticmethod
    def _time(value: Any) -> datetime:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("raw sqlite is not open")
        return self._conn

    async def open(self) -> None:
        import sqlite3

        self._conn = await self._connect()
        for _ in range(POOL_SIZE):
            self._pool.put_nowait(await self._connect())
        self.server_version = f"SQLite {sqlite3.sqlite_version}"

    async def close(self) -> None:
        conns, self._all = self._all, []
        self._conn = None
        for conn in conns:
            await conn.close()

    def _row(self, session_id: str, item: MessageData, moment: str) -> tuple[Any, ...]:
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
        # one statement in autocommit is its own transaction
        rows = await self.conn.execute_fetchall(
            self._insert + " RETURNING id", self._row(session_id, item, sqlite_time(utcnow()))
        )
        return int(next(iter(rows))[0])

    async def _insert_many(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self.conn
        await conn.execute_fetchall("BEGIN IMMEDIATE")
        try:
            await conn.executemany(self._insert, rows)
        except BaseException:
            await conn.execute_fetchall("ROLLBACK")
            raise
        await conn.execute_fetchall("COMMIT")

    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int:
        now = sqlite_time(utcnow())
        await self._insert_many([self._row(session_id, item, now) for item in items])
        return len(items)

    async def seed(self, session_id: str, items: Sequence[MessageData], start: datetime) -> None:
        step = timedelta(milliseconds=10)
        rows = [
            self._row(session_id, item, sqlite_time(start + n * step))
            for n, item in enumerate(items)
        ]
        for offset in range(0, len(rows), 20_000):
            await self._insert_many(rows[offset : offset + 20_000])

    async def get(self, message_id: int) -> int | None:
        rows = list(
            await self.conn.execute_fetchall(self._sql["get"], (message_id, VIEWER_ID, VIEWER_TYPE))
        )
        return self._message(rows[0])["id"] if rows else None

    async def list_newest(self, session_id: str) -> list[int]:
        rows = await self.conn.execute_fetchall(
            self._sql["newest"], (session_id, VIEWER_ID, VIEWER_TYPE)
        )
        return [self._message(row)["id"] for row in itertools.islice(rows, PAGE_SIZE)]

    async def page(self, session_id: str, position: PagePosition | None) -> list[int]:
        if position is None or position.after is None:
            rows = await self.conn.execute_fetchall(
                self._sql["first_page"], (session_id, VIEWER_ID, VIEWER_TYPE)
            )
        else:
            moment, last = position.after
            rows = await self.conn.execute_fetchall(
                self._sql["next_page"],
                (session_id, VIEWER_ID, VIEWER_TYPE, moment, moment, last),
            )
        return [self._message(row)["id"] for row in itertools.islice(rows, PAGE_SIZE)]

    async def search(self, query: str) -> list[int]:
        match = " OR ".join(f'"{term}"' for term in search_words(query))
        rows = await self.conn.execute_fetchall(self._search, (match, VIEWER_ID, VIEWER_TYPE))
        return [self._message(row)["id"] for row in rows]

    async def memory_set(self, key: str, value: Any) -> None:
        now = sqlite_time(utcnow())
        rows = await self.conn.execute_fetchall(
            self._memory_set, (MEMORY_AGENT, key, json.dumps(value), "{}", now, now)
        )
        self._entry(next(iter(rows)))

    async def memory_get(self, key: str) -> Any:
        rows = list(
            await self.conn.execute_fetchall(
                self._memory_get, (MEMORY_AGENT, "", key, sqlite_time(utcnow()))
            )
        )
        return self._entry(rows[0])["value"] if rows else None

    async def pooled_get(self, message_id: int) -> int | None:
        conn = await self._pool.get()
        try:
            rows = list(
                await conn.execute_fetchall(self._sql["get"], (message_id, VIEWER_ID, VIEWER_TYPE))
            )
        finally:
            self._pool.put_nowait(conn)
        return self._message(rows[0])["id"] if rows else None

    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        # the single-call methods run one statement each on self.conn, in autocommit
        # until a BEGIN: between BEGIN IMMEDIATE and COMMIT they are one transaction
        conn = self.conn
        await conn.execute_fetchall("BEGIN IMMEDIATE")
        try:
            new_id = await self.add(session_id, item)
            await self.get(new_id)
            await self.memory_set(key, value)
            await self.memory_get(key)
            await self.get(message_id)
        except BaseException:
            await conn.execute_fetchall("ROLLBACK")
            raise
        await conn.execute_fetchall("COMMIT")
        return new_id

    async def far_position(self, session_id: str, page_number: int) -> PagePosition:
        rows = list(
            await self.conn.execute_fetchall(
                self._sql["position"],
                (session_id, VIEWER_ID, VIEWER_TYPE, (page_number - 1) * PAGE_SIZE - 1),
            )
        )
        return PagePosition(after=(rows[0][0], int(rows[0][1])))

    async def id_range(self, session_id: str) -> tuple[int, int]:
        rows = list(await self.conn.execute_fetchall(self._sql["range"], (session_id,)))
        return int(rows[0][0]), int(rows[0][1])

    async def analyze(self) -> None:
        await self.conn.execute_fetchall("ANALYZE")

    async def settle(self) -> None:
        # the full-text index merged into one segment: FTS5 merges a level's
        # segments once enough have piled up, and the batch that tips it over
        # pays for merging the segments the batches before it wrote (in the
        # full run always the same batch, as the order of writes is fixed:
        # core's 20k batch of the fourth round, 0.6 s more in SQLite's thread)
        await self.conn.execute_fetchall(
            "INSERT INTO messages_fts(messages_fts) VALUES ('optimize')"
        )
        # the WAL copied into the database file and emptied: otherwise the
        # batch whose COMMIT crosses wal_autocheckpoint's 1,000 pages pays for
        # copying the pages the batch before it wrote, whichever subject wrote them
        await self.conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
