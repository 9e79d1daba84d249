"""What each operation costs on the wire: transaction control and pings per call.

The drivers are spied on (the calls still reach the real database), so a
regression that brings back a BEGIN/ROLLBACK around a read, a ping per checkout
or an empty ROLLBACK on release shows up here, not only in benchmarks/.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import aiomysql
import aiosqlite
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from contextstore import NewMessage, Settings, Store, Viewer
from contextstore._dialects import dialect_for
from contextstore._dialects._drivers import aiosqlite as _aiosqlite

_CONTROL = re.compile(r"^\s*(BEGIN|START TRANSACTION|COMMIT|ROLLBACK)", re.IGNORECASE)
#: the statement the execution core pings with (``pool_pre_ping``)
_PING = re.compile(r"^\s*SELECT 1\s*$", re.IGNORECASE)
_COM_QUERY = 3
_COM_PING = 14


class Wire:
    """Transaction-control statements and pings the driver sent, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.hops = 0  # SQLite: calls run in aiosqlite's thread

    def record_sql(self, sql: Any) -> None:
        if _PING.match(str(sql)):
            self.events.append("PING")
            return
        match = _CONTROL.match(str(sql))
        if match:
            word = match.group(1).upper()
            self.events.append("BEGIN" if word == "START TRANSACTION" else word)

    def take(self) -> list[str]:
        events, self.events = self.events, []
        self.hops = 0
        return events


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    spy = Wire()

    # PostgreSQL: SQLAlchemy's adapter sends BEGIN/COMMIT/ROLLBACK through
    # asyncpg's Connection.execute; queries go through prepared statements
    pg_execute = asyncpg.connection.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        spy.record_sql(query)
        return await pg_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)

    # MySQL: every command aiomysql sends
    my_command = aiomysql.Connection._execute_command

    async def command(self: Any, kind: int, sql: Any) -> Any:
        if kind == _COM_PING:
            spy.events.append("PING")
        elif kind == _COM_QUERY:
            spy.record_sql(sql.decode() if isinstance(sql, bytes) else sql)
        return await my_command(self, kind, sql)

    monkeypatch.setattr(aiomysql.Connection, "_execute_command", command)

    # SQLite: statements through the one-hop cursor, commit/rollback calls
    cursor_execute = _aiosqlite._Cursor.execute

    async def sqlite_execute(self: Any, sql: str, parameters: Any = None) -> Any:
        spy.record_sql(sql)
        return await cursor_execute(self, sql, parameters)

    run_in_thread = _aiosqlite._Connection.run_in_thread

    # the two ways into the connection's thread (run_in_thread here, call
    # below): neither goes through the other, so each counts its own hops
    async def hop(self: Any, function: Any, **options: Any) -> Any:
        spy.hops += 1
        return await run_in_thread(self, function, **options)

    def driver_call(name: str) -> None:
        original = getattr(aiosqlite.Connection, name)

        async def call(self: Any) -> Any:
            spy.events.append(name.upper())
            return await original(self)

        monkeypatch.setattr(aiosqlite.Connection, name, call)

    # the execution core's SQLite wire runs statements on the sqlite3
    # connection inside one hop: SQLite's own trace sees what it executes
    wire_call = _aiosqlite._Connection.call

    async def traced_call(self: Any, function: Any, *, bounded: bool) -> Any:
        spy.hops += 1

        def traced(raw: sqlite3.Connection) -> Any:
            raw.set_trace_callback(spy.record_sql)
            try:
                return function(raw)
            finally:
                raw.set_trace_callback(None)

        return await wire_call(self, traced, bounded=bounded)

    monkeypatch.setattr(_aiosqlite._Connection, "call", traced_call)
    monkeypatch.setattr(_aiosqlite._Cursor, "execute", sqlite_execute)
    monkeypatch.setattr(_aiosqlite._Connection, "run_in_thread", hop)
    driver_call("commit")
    driver_call("rollback")
    return spy


@pytest.fixture
async def warm_store(empty_url: str, wire: Wire) -> Any:
    """A store with one session and message, and a pool already warmed up."""
    async with Store(Settings(database_url=empty_url, pool_size=1, max_overflow=0)) as store:
        await store.sessions.create(purpose="wire", created_by="a", session_id="s1")
        message = await store.messages.add("s1", sender="a", content="hello wire")
        wire.take()
        yield store, message


VIEWER = Viewer(agent_id="a")


async def test_reads_send_no_transaction_control_and_no_ping(
    warm_store: Any, wire: Wire, dialect_name: str
) -> None:
    store, message = warm_store
    for _ in range(5):
        assert await store.messages.get(message.id, viewer=VIEWER) == message
    page = await store.messages.list("s1", viewer=VIEWER, order="desc")
    assert page.items == [message]
    assert await store.memory.get("a", "missing") is None
    assert wire.events == []
    if dialect_name == "sqlite":
        # one thread hop per statement: 7 reads
        assert wire.hops == 7


async def test_single_inserts_commit_by_themselves(
    warm_store: Any, wire: Wire, dialect_name: str
) -> None:
    store, _ = warm_store
    await store.messages.add("s1", sender="a", content="one more")
    await store.audit.record("login", agent_id="a")
    hops = wire.hops
    assert wire.take() == []
    if dialect_name == "sqlite":
        assert hops == 2  # one INSERT each, nothing around them


def upsert_returns_row(store: Store) -> bool:
    """The capability memory.set's single-statement path depends on."""
    recipe = dialect_for(store.db.settings.effective_database_url)
    return recipe.upsert_returns_row(store.db.engine.dialect)


def test_upsert_returning_follows_the_server() -> None:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    recipe = dialect_for(make_url("sqlite://"))
    assert recipe.upsert_returns_row(sqlite.dialect()) == (sqlite3.sqlite_version_info >= (3, 35))
    old_sqlite = sqlite.dialect()
    old_sqlite.insert_returning = False  # what SQLAlchemy decides below SQLite 3.35
    assert not recipe.upsert_returns_row(old_sqlite)
    assert dialect_for(make_url("postgresql://h/db")).upsert_returns_row(postgresql.dialect())
    my = dialect_for(make_url("mysql://h/db"))
    mysql_proper = mysql.dialect()
    mysql_proper.insert_returning = False  # MySQL has no RETURNING at all
    assert not my.upsert_returns_row(mysql_proper)
    mariadb = mysql.dialect(is_mariadb=True)
    assert mariadb.insert_returning  # MariaDB >= 10.5 (lowered on connect if older)
    assert my.upsert_returns_row(mariadb)


async def test_memory_set_is_one_self_committing_statement(warm_store: Any, wire: Wire) -> None:
    store, _ = warm_store
    # every server the suite runs on has the capability: the test must not pass vacuously
    assert upsert_returns_row(store)
    first = await store.memory.set("a", "k", {"v": 1})
    hops = wire.hops
    assert wire.take() == []  # no BEGIN, no COMMIT: the statement commits itself
    again = await store.memory.set("a", "k", {"v": 2})
    assert wire.take() == []
    assert again.created_at == first.created_at
    if store.dialect == "sqlite":
        assert hops == 1  # one statement, one thread hop


async def test_memory_set_without_the_capability_is_one_transaction(
    warm_store: Any, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = warm_store
    recipe = dialect_for(store.db.settings.effective_database_url)
    monkeypatch.setattr(type(recipe), "upsert_returns_row", lambda self, sa_dialect: False)
    first = await store.memory.set("a", "k", {"v": 1})
    assert wire.take() == ["BEGIN", "COMMIT"]
    again = await store.memory.set("a", "k", {"v": 2})
    assert wire.take() == ["BEGIN", "COMMIT"]
    assert again.created_at == first.created_at
    assert again.value == {"v": 2}
    assert await store.memory.get("a", "k") == again


async def test_multi_statement_writes_are_one_transaction(warm_store: Any, wire: Wire) -> None:
    store, message = warm_store
    await store.memory.set("a", "k", {"v": 1}, overwrite=False)
    assert wire.take() == ["BEGIN", "COMMIT"]
    await store.messages.add_many("s1", [NewMessage(sender="a", content=f"m{i}") for i in range(3)])
    assert wire.take() == ["BEGIN", "COMMIT"]
    await store.messages.add("s1", sender="a", content="reply", parent_message_id=message.id)
    assert wire.take() == ["BEGIN", "COMMIT"]


async def test_a_failed_write_is_rolled_back(warm_store: Any, wire: Wire) -> None:
    from contextstore import ConflictError

    store, _ = warm_store
    await store.memory.set("a", "k", 1)
    wire.take()
    with pytest.raises(ConflictError):
        await store.memory.set("a", "k", 2, overwrite=False)
    assert wire.take() == ["BEGIN", "ROLLBACK"]
    entry = await store.memory.get("a", "k")
    assert entry is not None
    assert entry.value == 1


async def test_the_spy_sees_a_ping_when_pre_ping_is_asked_for(
    empty_url: str, wire: Wire, dialect_name: str
) -> None:
    # proves the spy works, and that the setting still turns pings on
    settings = Settings(database_url=empty_url, pool_size=1, max_overflow=0, pool_pre_ping=True)
    async with Store(settings) as store:
        await store.sessions.create(purpose="wire", created_by="a", session_id="s1")
        wire.take()
        assert await store.messages.get(1, viewer=VIEWER) is None
        events = wire.take()
    # one round trip, no transaction around it (MySQL: the protocol's ping)
    assert events == ["PING"]
