"""Scratch tables, a managed ConnectionManager and fake servers for the foundation tests.

The tables live on a local ``MetaData`` (not ``contextstore.schema``) so these
tests exercise the ConnectionManager path alone, whatever the schema becomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator, TypeEngine

from contextstore import ConnectionManager, Settings, Store, Viewer

#: a port nothing listens on: connections are refused at once.
CLOSED_PORT = 1
SENTINEL_PASSWORD = "S3ntinel-pw"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, microseconds kept, on every dialect.

    A stand-in for the project's own type, so these tests do not depend on it.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


meta = MetaData()

items = Table(
    "scratch_items",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("label", String(255)),
    Column("body", Text),
    Column("doc", JSON),
    Column("big", BigInteger),
    Column("at", UTCDateTime),
    Column("n", Integer),
)

parents = Table(
    "scratch_parents",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False, unique=True),
)

#: a column whose default SQLAlchemy computes in Python at execution time
defaulted = Table(
    "scratch_defaulted",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("label", String(100), nullable=False, default=lambda: "from python"),
)

children = Table(
    "scratch_children",
    meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, ForeignKey("scratch_parents.id"), nullable=False),
)


async def create_tables(db: ConnectionManager) -> None:
    """Create the scratch tables through the manager's own transaction."""
    async with db.transaction() as conn:
        await conn.run_sync(meta.create_all)


async def in_transaction(db: ConnectionManager, *statements: Executable) -> None:
    """Run ``statements`` in one ``db.transaction()``."""
    async with db.transaction() as conn:
        for statement in statements:
            await conn.execute(statement)


@asynccontextmanager
async def managed(url: str, **overrides: Any) -> AsyncIterator[ConnectionManager]:
    """A ConnectionManager on ``url`` that is always disposed."""
    db = ConnectionManager(Settings(database_url=url, **overrides))
    try:
        yield db
    finally:
        await db.dispose()


@dataclass
class SilentServer:
    """A TCP server that accepts connections and never sends a byte."""

    port: int
    #: set once a client has connected.
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def silent_server() -> AsyncIterator[SilentServer]:
    """Run a :class:`SilentServer` on 127.0.0.1 (a hung database, as far as clients can tell)."""
    transports: list[asyncio.BaseTransport] = []
    connected = asyncio.Event()

    class Silent(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)
            connected.set()

    server = await asyncio.get_running_loop().create_server(Silent, "127.0.0.1", 0)
    try:
        yield SilentServer(port=server.sockets[0].getsockname()[1], connected=connected)
    finally:
        server.close()
        for transport in transports:
            transport.close()
        await server.wait_closed()


def server_url(scheme: str, port: int, *, password: str = SENTINEL_PASSWORD) -> str:
    """A server URL on 127.0.0.1:``port`` whose password is the sentinel."""
    return f"{scheme}://contextstore:{password}@127.0.0.1:{port}/contextstore"


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still alive besides the current one (leaked probes, streams...)."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current and not task.done()}


async def assert_batch_left_nothing(store: Store, session_id: str) -> None:
    """A failed or cancelled ``add_many`` into ``session_id`` (empty before it)
    left no row, and the pool has every connection back."""
    admin = Viewer(agent_id="root", is_admin=True)
    assert await store.messages.count(session_id, viewer=admin) == 0
    stats = store.db.pool_stats()
    assert stats is not None
    assert stats.checked_out == 0
