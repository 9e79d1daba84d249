"""The SQLAlchemy ORM subject: what a typical ORM async service runs for each operation.

Declarative classes over the very tables contextstore's migrations create
(``__table__ = schema.messages``, ``schema.agent_memory``), one
``AsyncSession`` per call from ``async_sessionmaker(engine,
expire_on_commit=False)``, on a plain ``create_async_engine``:

* reads are ORM ``select(Message)`` / ``select(Memory)`` statements with the
  visibility predicate as an ORM expression, loading mapped objects; the
  session's implicit transaction ends when it closes (the pool's rollback on
  return), as in any ``async with sessionmaker() as session`` service;
* full-text search has no ORM construct: the raw subjects' SQL (FTS5 MATCH,
  ``to_tsquery``, MATCH ... AGAINST) as ``text()``, loaded into ``Message``
  objects with ``select(Message).from_statement(...)``;
* ``add`` and ``add_many`` are ``session.add`` / ``session.add_all`` and
  ``commit`` (the unit of work flushes the INSERTs and fetches the new ids);
* ``memory.set`` is the ORM "upsert": the dialect's ``insert(Memory)`` with
  ON CONFLICT / ON DUPLICATE KEY UPDATE, ``RETURNING`` the entity where the
  server has it, then ``commit``.
* the unit of work is one session and ``async with session.begin()``:
  ``session.add`` and ``flush`` (for the new id), the reads and the upsert
  above in that session, one COMMIT when the block ends.

The engine gets only what a service needs to read and write these tables
correctly (utf8mb4 and a UTC session on MySQL/MariaDB; on SQLite the PRAGMAs
the raw and core subjects use: WAL, foreign keys, ``synchronous=NORMAL``, a
busy timeout); none of core's tuning (one thread hop per statement on SQLite,
reads without BEGIN, statements built once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, event, or_, select, text
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property

from contextstore import schema
from contextstore._facts import search_text, search_words

from ..corpus import VIEWER_ID, VIEWER_TYPE, MessageData, utcnow
from ..plan import MEMORY_AGENT, PAGE_SIZE, POOL_SIZE, SEARCH_LIMIT
from .base import PagePosition, Subject
from .raw import MESSAGE_COLUMNS, visibility_predicate

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class Base(DeclarativeBase):
    """The ORM's own registry; the tables are contextstore's."""


class Message(Base):
    __table__ = schema.messages

    id: Mapped[int]
    session_id: Mapped[str]
    sender: Mapped[str]
    sender_type: Mapped[str]
    content: Mapped[str]
    visibility: Mapped[str]
    message_type: Mapped[str]
    # ``metadata`` is reserved on declarative classes
    metadata_: Mapped[dict[str, Any]] = column_property(schema.messages.c.metadata)
    parent_message_id: Mapped[int | None]
    timestamp: Mapped[datetime]
    client_token: Mapped[str | None]
    search_text: Mapped[str | None]


class Memory(Base):
    __table__ = schema.agent_memory

    id: Mapped[int]
    agent_id: Mapped[str]
    session_id: Mapped[str | None]
    key: Mapped[str]
    value: Mapped[Any]
    metadata_: Mapped[dict[str, Any]] = column_property(schema.agent_memory.c.metadata)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    scope: Mapped[str]


def visible() -> ColumnElement[bool]:
    """The visibility rule of the raw SQL, as an ORM expression over ``Message``."""
    return or_(
        Message.visibility == "public",
        Message.sender == VIEWER_ID,
        and_(Message.visibility == "agent_only", Message.sender_type == VIEWER_TYPE),
    )


#: the message columns the raw subjects select, and the one they leave out
_SEARCH_COLUMNS = f"{MESSAGE_COLUMNS}, m.client_token"
_VISIBLE_SQL = visibility_predicate(":viewer", ":viewer_type")
#: the raw subjects' search statements, with named parameters for ``text()``
_SEARCH_SQL = {
    "sqlite": (
        f"SELECT {_SEARCH_COLUMNS}, -bm25(messages_fts) AS score FROM messages AS m "
        "JOIN messages_fts ON messages_fts.rowid = m.id "
        f"WHERE messages_fts MATCH :query AND {_VISIBLE_SQL} "
        f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
    ),
    "postgresql": (
        f"SELECT {_SEARCH_COLUMNS}, ts_rank(m.search_vector, q) AS score "
        "FROM messages AS m, to_tsquery('simple', :query) AS q "
        f"WHERE m.search_vector @@ q AND {_VISIBLE_SQL} "
        f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
    ),
    "mysql": (
        f"SELECT {_SEARCH_COLUMNS}, "
        "MATCH (m.search_text) AGAINST (:query IN NATURAL LANGUAGE MODE) AS score "
        "FROM messages AS m "
        "WHERE MATCH (m.search_text) AGAINST (:query IN NATURAL LANGUAGE MODE) > 0 "
        f"AND {_VISIBLE_SQL} "
        f"ORDER BY score DESC, m.id DESC LIMIT {SEARCH_LIMIT}"
    ),
}
_UPSERT_UPDATES = ("value", "metadata", "updated_at", "expires_at")


def search_query(dialect: str, query: str) -> str:
    """The terms of ``query`` (contextstore's normalisation, which ``search_text``
    holds) in the dialect's query syntax, as the raw subjects write it."""
    terms = search_words(query)
    if dialect == "sqlite":
        return " OR ".join(f'"{term}"' for term in terms)
    if dialect == "postgresql":
        return " | ".join(f"'{term}'" for term in terms)
    return " ".join(terms)


class OrmSubject(Subject):
    """SQLAlchemy ORM async: mapped classes, an ``AsyncSession`` per call."""

    name = "orm"

    def __init__(self, url: URL) -> None:
        self._url = url
        self._dialect = url.get_backend_name()
        if self._dialect == "mariadb":
            self._dialect = "mysql"
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._returning = True
        self._search = select(Message).from_statement(text(_SEARCH_SQL[self._dialect]))

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._sessions is None:
            raise RuntimeError("orm is not open")
        return self._sessions

    async def open(self) -> None:
        if self._dialect == "sqlite":
            # a file database: SQLAlchemy's default pool for aiosqlite
            engine = create_async_engine(self._url)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            connect_args: dict[str, Any] = {}
            if self._dialect == "mysql":
                # DATETIME columns hold UTC wall time (see contextstore's UTCDateTime)
                connect_args = {"charset": "utf8mb4", "init_command": "SET time_zone = '+00:00'"}
            engine = create_async_engine(
                self._url, pool_size=POOL_SIZE, max_overflow=0, connect_args=connect_args
            )
        async with engine.connect():
            pass  # the first connection tells the dialect the server version
        # MariaDB 10.5+ (and SQLite, PostgreSQL) return the upserted row; MySQL cannot
        self._returning = engine.dialect.insert_returning
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._sessions = None
        if engine is not None:
            await engine.dispose()

    @staticmethod
    def _message(session_id: str, item: MessageData) -> Message:
        return Message(
            session_id=session_id,
            sender=item.sender,
            sender_type=item.sender_type,
            content=item.content,
            visibility=item.visibility,
            message_type=item.message_type,
            metadata_=item.metadata,
            timestamp=utcnow(),
            search_text=search_text(item.content),
        )

    async def add(self, session_id: str, item: MessageData) -> int:
        async with self.sessions() as session:
            message = self._message(session_id, item)
            session.add(message)
            await session.commit()
            # the flush fetched the new id (RETURNING or lastrowid); with
            # expire_on_commit=False it is still loaded, no refresh query needed
            return message.id

    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int:
        async with self.sessions() as session:
            messages = [self._message(session_id, item) for item in items]
            session.add_all(messages)
            await session.commit()
            return len(messages)

    @staticmethod
    async def _get(session: AsyncSession, message_id: int) -> Message | None:
        statement = select(Message).where(Message.id == message_id, visible())
        return (await session.scalars(statement)).first()

    async def get(self, message_id: int) -> int | None:
        async with self.sessions() as session:
            message = await self._get(session, message_id)
            return None if message is None else message.id

    async def list_newest(self, session_id: str) -> list[int]:
        statement = (
            select(Message)
            .where(Message.session_id == session_id, visible())
            .order_by(Message.timestamp.desc(), Message.id.desc())
            .limit(PAGE_SIZE + 1)
        )
        async with self.sessions() as session:
            messages = (await session.scalars(statement)).all()
            return [message.id for message in messages[:PAGE_SIZE]]

    async def page(self, session_id: str, position: PagePosition | None) -> list[int]:
        statement = select(Message).where(Message.session_id == session_id, visible())
        if position is not None and position.after is not None:
            moment, last = position.after
            # the raw subjects' keyset predicate: the time bound is an index bound
            statement = statement.where(
                Message.timestamp >= moment,
                or_(Message.timestamp > moment, Message.id > last),
            )
        statement = statement.order_by(Message.timestamp, Message.id).limit(PAGE_SIZE + 1)
        async with self.sessions() as session:
            messages = (await session.scalars(statement)).all()
            return [message.id for message in messages[:PAGE_SIZE]]

    async def search(self, query: str) -> list[int]:
        params = {
            "query": search_query(self._dialect, query),
            "viewer": VIEWER_ID,
            "viewer_type": VIEWER_TYPE,
        }
        async with self.sessions() as session:
            messages = (await session.scalars(self._search, params)).all()
            return [message.id for message in messages]

    async def memory_set(self, key: str, value: Any) -> None:
        async with self.sessions() as session:
            await self._upsert(session, key, value)
            await session.commit()

    async def _upsert(self, session: AsyncSession, key: str, value: Any) -> None:
        """The ORM upsert of ``memory_set`` in ``session``'s transaction (not committed)."""
        now = utcnow()
        values = {
            "agent_id": MEMORY_AGENT,
            "session_id": None,
            "key": key,
            "value": value,
            "metadata_": {},
            "created_at": now,
            "updated_at": now,
            "expires_at": None,
        }
        table = schema.agent_memory
        if self._dialect == "mysql":
            my_insert = mysql_insert(Memory).values(values)
            statement: Any = my_insert.on_duplicate_key_update(
                {table.c[name]: my_insert.inserted[name] for name in _UPSERT_UPDATES}
            )
        else:
            insert = sqlite_insert if self._dialect == "sqlite" else postgresql_insert
            stmt = insert(Memory).values(values)
            statement = stmt.on_conflict_do_update(
                index_elements=[table.c.agent_id, table.c.scope, table.c.key],
                set_={table.c[name]: stmt.excluded[name] for name in _UPSERT_UPDATES},
            )
        # the stored entry is loaded as a Memory object, as a caller would use it
        if self._returning:
            (await session.scalars(statement.returning(Memory))).one()
        else:
            # MySQL has no RETURNING: upsert, then read the entry back
            await session.execute(statement)
            (await session.scalars(self._memory_select(key, now))).one()

    @staticmethod
    def _memory_select(key: str, now: datetime) -> Any:
        return select(Memory).where(
            Memory.agent_id == MEMORY_AGENT,
            Memory.scope == "",
            Memory.key == key,
            or_(Memory.expires_at.is_(None), Memory.expires_at > now),
        )

    @classmethod
    async def _memory_get(cls, session: AsyncSession, key: str) -> Any:
        entry = (await session.scalars(cls._memory_select(key, utcnow()))).first()
        return None if entry is None else entry.value

    async def memory_get(self, key: str) -> Any:
        async with self.sessions() as session:
            return await self._memory_get(session, key)

    async def pooled_get(self, message_id: int) -> int | None:
        # every call takes a session, and so a connection, from the engine's pool
        return await self.get(message_id)

    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        # one session, one transaction: what the single-call methods do, committed once
        async with self.sessions() as session, session.begin():
            message = self._message(session_id, item)
            session.add(message)
            await session.flush()  # the INSERT, which fetches the new id
            await self._get(session, message.id)
            await self._upsert(session, key, value)
            await self._memory_get(session, key)
            await self._get(session, message_id)
            return message.id

    async def far_position(self, session_id: str, page_number: int) -> PagePosition:
        """The (time, id) of the last visible row before page ``page_number`` (untimed)."""
        statement = (
            select(Message.timestamp, Message.id)
            .where(Message.session_id == session_id, visible())
            .order_by(Message.timestamp, Message.id)
            .offset((page_number - 1) * PAGE_SIZE - 1)
            .limit(1)
        )
        async with self.sessions() as session:
            moment, last = (await session.execute(statement)).one()
        return PagePosition(after=(moment, int(last)))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in (
            "PRAGMA busy_timeout=30000",
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            cursor.execute(pragma)
    finally:
        cursor.close()
