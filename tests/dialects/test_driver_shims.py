"""Canaries for the quarantined driver shims: each fails when upstream changes
what a shim works around or relies on.

contextstore reaches into drivers' private names in three places only:

* ``contextstore/_dialects/_drivers/aiosqlite.py`` (one-hop cursors, the
  execution core's SQLite wire): aiosqlite's ``Connection._conn``,
  ``_execute``, ``_running``, ``_connection`` and ``_thread``;
* ``contextstore/_dialects/_drivers/aiomysql.py`` (a bound on the handshake):
  aiomysql's ``Connection._connect``;
* ``contextstore/legacy/_db.py`` ``_worker_stopped``: aiosqlite's ``_thread``.

Two kinds of test guard them. The ``*_still_*`` tests fail when upstream fixes
the reason a shim exists: the shim named in the failure can then go, or be
revisited. The ``*_private_names_*`` tests fail when upstream renames or
reshapes a private name a shim uses, so an upgrade breaks a test named after
the shim instead of the data path. Tests may touch private names; the data
path may not (outside the shims).
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiomysql
import aiosqlite
import pytest
import sqlalchemy
from aiomysql.cursors import SSCursor
from pymysql.err import OperationalError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from contextstore._dialects._drivers.aiomysql import WATCHED_CONNECTION_CALLS, WATCHED_CURSOR_CALLS
from tests._servers import Server

SQLITE_SHIM = "contextstore/_dialects/_drivers/aiosqlite.py"
MYSQL_SHIM = "contextstore/_dialects/_drivers/aiomysql.py"
LEGACY_SHIM = "contextstore/legacy/_db.py::_worker_stopped"

# --------------------------------------------------------------------------
# aiosqlite: the core shim (one hop per statement) and legacy's _worker_stopped
# --------------------------------------------------------------------------

#: aiosqlite.Connection's public names in 0.22, the lowest release the shims
#: support (up to 0.21 the connection *is* its worker thread, with no
#: ``_thread``); 0.22 keeps the thread in the private ``_thread``.
AIOSQLITE_CONNECTION_PUBLIC_NAMES = frozenset(
    [
        "backup",
        "close",
        "commit",
        "create_function",
        "cursor",
        "enable_load_extension",
        "execute",
        "execute_fetchall",
        "execute_insert",
        "executemany",
        "executescript",
        "in_transaction",
        "interrupt",
        "isolation_level",
        "iterdump",
        "load_extension",
        "rollback",
        "row_factory",
        "set_authorizer",
        "set_progress_handler",
        "set_trace_callback",
        "stop",
        "text_factory",
        "total_changes",
    ]
)
#: the aiosqlite module's public names (0.22).
AIOSQLITE_MODULE_PUBLIC_NAMES = frozenset(
    [
        "Connection",
        "Cursor",
        "DatabaseError",
        "Error",
        "IntegrityError",
        "NotSupportedError",
        "OperationalError",
        "ProgrammingError",
        "Row",
        "Warning",
        "connect",
        "context",
        "core",
        "cursor",
        "paramstyle",
        "register_adapter",
        "register_converter",
        "sqlite_version",
        "sqlite_version_info",
    ]
)
#: the parameters of ``aiosqlite.connect`` (0.22): none for the
#: worker thread (the shim makes it a daemon through ``_thread``).
AIOSQLITE_CONNECT_PARAMETERS = ("database", "iter_chunk_size", "loop", "kwargs")


def _public_names(obj: object) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


async def _hops_of_one_select(
    monkeypatch: pytest.MonkeyPatch, **engine_options: Any
) -> list[tuple[str, int]]:
    """The worker-thread hops of one SELECT executed and fetched on a SQLite
    engine, with the thread each ran in: each hop is a function aiosqlite
    queues for its worker (``Connection._execute``)."""
    hops: list[tuple[str, int]] = []
    submit: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute
    counting = False

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not counting:
            return await submit(self, fn, *args, **kwargs)

        def run(*inner_args: Any, **inner_kwargs: Any) -> Any:
            hops.append((getattr(fn, "__name__", repr(fn)), threading.get_ident()))
            return fn(*inner_args, **inner_kwargs)

        return await submit(self, run, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    engine = create_async_engine("sqlite+aiosqlite://", **engine_options)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 0"))  # the first-connect queries
            counting = True
            result = await connection.execute(text("SELECT 1 UNION ALL SELECT 2"))
            rows = result.fetchall()
            counting = False
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [(1,), (2,)]
    # the counter sees aiosqlite's hops at all (else see the private-names test),
    # and they ran in one thread, not the event loop's
    assert hops, "no hop counted: aiosqlite no longer queues work through Connection._execute"
    assert len({thread for _, thread in hops}) == 1, hops
    assert hops[0][1] != threading.get_ident(), hops
    return hops


@pytest.mark.sqlite
async def test_sqlalchemy_aiosqlite_adapter_still_makes_several_hops_per_select(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SQLAlchemy's own aiosqlite adapter (a plain ``create_async_engine``, no
    shim) still makes several worker-thread hops for one SELECT executed and
    fetched (create the cursor, execute, fetch, close).

    Fails when it makes one: then revisit contextstore/_dialects/_drivers/aiosqlite.py,
    whose one-hop cursors (``_Cursor``, ``_CursorHandle``, ``_Connection.cursor``)
    exist only to save those hops.
    """
    hops = await _hops_of_one_select(monkeypatch)
    assert len(hops) > 1, (
        f"SQLAlchemy {sqlalchemy.__version__}'s aiosqlite adapter now makes one thread "
        f"hop per SELECT ({hops}): revisit (likely remove) the one-hop cursors of "
        f"{SQLITE_SHIM}"
    )


@pytest.mark.sqlite
async def test_hop_counter_sees_a_one_hop_select(monkeypatch: pytest.MonkeyPatch) -> None:
    """The canary above can fail: through the shim's one-hop connection the same
    count is one (so a one-hop adapter upstream would be seen)."""
    from contextstore._dialects._drivers.aiosqlite import connect as one_hop_connect

    hops = await _hops_of_one_select(monkeypatch, async_creator=lambda: one_hop_connect(":memory:"))
    assert len(hops) == 1, hops


@pytest.mark.sqlite
def test_aiosqlite_still_has_no_public_way_into_its_worker_thread() -> None:
    """aiosqlite offers no public API to run a function in its worker thread, nor
    a public handle on that thread (or a way to make it a daemon).

    Fails when a public name appears on ``aiosqlite.Connection`` or the
    ``aiosqlite`` module, or a parameter on ``aiosqlite.connect``: if it runs a
    callable in the worker thread or reaches the thread, replace the private
    names in contextstore/_dialects/_drivers/aiosqlite.py (``_execute``,
    ``_conn``, ``_thread``...) and legacy/_db.py's ``_worker_stopped``
    (``_thread``); then record the new names here.
    """
    new = _public_names(aiosqlite.Connection) - AIOSQLITE_CONNECTION_PUBLIC_NAMES
    assert not new, (
        f"aiosqlite {aiosqlite.__version__}: new public names on Connection {sorted(new)} "
        f"(known for 0.22): review {SQLITE_SHIM} and {LEGACY_SHIM}"
    )
    new_module = _public_names(aiosqlite) - AIOSQLITE_MODULE_PUBLIC_NAMES
    assert not new_module, (
        f"aiosqlite {aiosqlite.__version__}: new public names in the module "
        f"{sorted(new_module)}: review {SQLITE_SHIM} and {LEGACY_SHIM}"
    )
    parameters = tuple(inspect.signature(aiosqlite.connect).parameters)
    assert parameters == AIOSQLITE_CONNECT_PARAMETERS, (
        f"aiosqlite {aiosqlite.__version__}: aiosqlite.connect{parameters}: review "
        f"{SQLITE_SHIM} (it makes the worker a daemon through _thread)"
    )


@pytest.mark.sqlite
async def test_aiosqlite_private_names_the_shims_use() -> None:
    """The names contextstore/_dialects/_drivers/aiosqlite.py and
    legacy/_db.py's ``_worker_stopped`` use exist, with the kind they expect.

    Fails when aiosqlite renames or reshapes one: fix the shim before an
    upgrade (the data path would fail with an AttributeError or worse).
    """
    # _Connection(open_database, 64): the constructor takes (connector, iter_chunk_size)
    parameters = list(inspect.signature(aiosqlite.Connection.__init__).parameters)
    assert parameters[:3] == ["self", "connector", "iter_chunk_size"], parameters
    # _conn: a property giving the sqlite3 connection (raising when closed)
    assert isinstance(inspect.getattr_static(aiosqlite.Connection, "_conn"), property)
    # _execute(function): awaited, runs function() in the worker thread
    assert inspect.iscoroutinefunction(aiosqlite.Connection._execute)

    connection = aiosqlite.connect(":memory:")
    # _thread: the worker thread, not started before the connection is awaited,
    # so the shim can make it a daemon (aiosqlite < 0.22 has no _thread: the
    # connection was the thread itself)
    worker = getattr(connection, "_thread", None)
    assert isinstance(worker, threading.Thread), (
        f"aiosqlite {aiosqlite.__version__} has no Connection._thread: "
        f"fix {SQLITE_SHIM} (connect, _opened) and {LEGACY_SHIM}"
    )
    assert not worker.is_alive()
    worker.daemon = True
    async with connection:
        assert worker.is_alive()
        # _running and _connection: what _Cursor._close_open_cursor looks at
        assert connection._running is True
        raw = connection._connection
        assert isinstance(raw, sqlite3.Connection)
        assert connection._conn is raw
        # the shim's hop: a function of no arguments, run in the worker thread
        hop: Callable[[Callable[[], Any]], Awaitable[Any]] = connection._execute
        assert await hop(threading.get_ident) == worker.ident
        assert worker.ident != threading.get_ident()
        assert await hop(lambda: raw.execute("SELECT 41 + 1").fetchall()) == [(42,)]
    assert connection._running is False
    assert connection._connection is None
    with pytest.raises(ValueError, match="no active connection"):
        connection._conn  # noqa: B018 - the property raises once closed
    await asyncio.to_thread(worker.join, 5.0)
    assert not worker.is_alive()


@pytest.mark.sqlite
async def test_aiosqlite_private_thread_of_a_failed_open(tmp_path: Path) -> None:
    """A connection that fails to open still has its worker in ``_thread``, and
    that thread stops by itself: what core's ``_opened`` (in
    contextstore/_dialects/_drivers/aiosqlite.py) joins and legacy/_db.py's
    ``_worker_stopped`` waits for.

    Fails when aiosqlite moves or renames the thread (``_worker_stopped`` would
    silently wait for nothing).
    """
    connection = aiosqlite.connect(tmp_path / "missing" / "store.db")
    with pytest.raises(sqlite3.OperationalError):
        await connection
    worker = getattr(connection, "_thread", None)
    assert isinstance(worker, threading.Thread), (
        f"aiosqlite {aiosqlite.__version__} has no Connection._thread: "
        f"fix {SQLITE_SHIM} (_opened) and {LEGACY_SHIM}"
    )
    assert worker.ident is not None  # it was started
    await asyncio.to_thread(worker.join, 5.0)
    assert not worker.is_alive()


# --------------------------------------------------------------------------
# aiomysql: a bound on every wait for the server
# --------------------------------------------------------------------------

#: seconds the greeting-less server below holds a connection before closing it
HOLD = 1.5
#: the connect_timeout given to aiomysql: far shorter than HOLD
CONNECT_TIMEOUT = 0.2


def _timeout_parameters(function: Callable[..., Any]) -> set[str]:
    return {name for name in inspect.signature(function).parameters if "timeout" in name}


async def test_aiomysql_still_has_no_read_timeout() -> None:
    """aiomysql still has no read (or write) timeout: ``connect_timeout`` is its only one.

    Fails when a timeout parameter or attribute appears (pymysql's
    ``read_timeout``, say): then revisit the watched calls of
    contextstore/_dialects/_drivers/aiomysql.py (``BoundedConnection``), which
    exist only because there is none.
    """
    for function in (aiomysql.connect, aiomysql.Connection.__init__):
        found = _timeout_parameters(function)
        assert found == {"connect_timeout"}, (
            f"aiomysql {aiomysql.__version__}: {function.__qualname__} takes {sorted(found)}: "
            f"revisit BoundedConnection in {MYSQL_SHIM}"
        )
    found = _timeout_parameters(aiomysql.create_pool)
    assert found == set(), f"aiomysql.create_pool takes {sorted(found)}: revisit {MYSQL_SHIM}"
    connection = aiomysql.Connection(host="127.0.0.1", connect_timeout=5)  # not connected
    attributes = {
        name
        for name in set(vars(connection)) | set(dir(aiomysql.Connection))
        if "timeout" in name and not name.startswith("_")
    }
    assert attributes == {"connect_timeout"}, (
        f"aiomysql {aiomysql.__version__}: Connection has {sorted(attributes)}: "
        f"revisit BoundedConnection in {MYSQL_SHIM}"
    )


@asynccontextmanager
async def _greetingless_server() -> AsyncIterator[int]:
    """A server on 127.0.0.1 that accepts, never greets, and closes after :data:`HOLD`."""
    transports: list[asyncio.BaseTransport] = []

    class Greetingless(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            transports.append(transport)
            asyncio.get_running_loop().call_later(HOLD, transport.close)

    server = await asyncio.get_running_loop().create_server(Greetingless, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for transport in transports:
            transport.close()
        await server.wait_closed()


async def test_aiomysql_connect_timeout_still_covers_only_the_tcp_connect() -> None:
    """aiomysql's ``connect_timeout`` still bounds the TCP connect only, not the
    handshake: against a server that accepts but never greets, ``connect``
    waits until the server gives up, far past ``connect_timeout``.

    Fails when aiomysql bounds the handshake too: then revisit
    ``connect_within_timeout`` in contextstore/_dialects/_drivers/aiomysql.py
    (its own bound around ``Connection._connect``).
    """
    async with _greetingless_server() as port:
        started = time.perf_counter()
        with pytest.raises(OperationalError) as caught:
            async with asyncio.timeout(10 * HOLD):  # the test's own bound
                await aiomysql.connect(
                    host="127.0.0.1", port=port, user="root", connect_timeout=CONNECT_TIMEOUT
                )
        waited = time.perf_counter() - started
    fixed = (
        f"aiomysql {aiomysql.__version__} gave up on a silent handshake after {waited:.2f} s "
        f"(connect_timeout={CONNECT_TIMEOUT}, error {caught.value!r}): connect_timeout now "
        f"covers the handshake; revisit connect_within_timeout in {MYSQL_SHIM}"
    )
    assert waited >= HOLD * 0.9, fixed
    assert caught.value.args[0] == 2013, fixed  # CR_SERVER_LOST: the server hung up


@pytest.mark.mysql
async def test_aiomysql_private_names_the_shims_use(servers: dict[str, Server]) -> None:
    """The names contextstore/_dialects/_drivers/aiomysql.py uses exist, with the
    kind it expects: ``Connection._connect`` (the handshake, awaited) and
    ``connect_timeout`` (an attribute it clears).

    Fails when aiomysql renames or reshapes one: fix the shim before an upgrade.
    Connects to the MySQL/MariaDB test server.
    """
    assert inspect.iscoroutinefunction(aiomysql.Connection._connect)
    assert list(inspect.signature(aiomysql.Connection._connect).parameters) == ["self"]

    server = servers["mysql"]
    server.check()
    url = server.admin_url
    connection = aiomysql.Connection(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
    )
    assert connection.connect_timeout == 5
    assert connection.closed
    connection.connect_timeout = None  # as connect_within_timeout does
    try:
        async with asyncio.timeout(10):
            await connection._connect()  # what aiomysql.connect awaits
        assert not connection.closed
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT 42")
            assert await cursor.fetchone() == (42,)
    finally:
        connection.close()


#: the public coroutine methods of aiomysql 0.2-0.3 that BoundedConnection does
#: not watch, and why: none waits for a reply of its own
AIOMYSQL_UNWATCHED = {
    # the handshake's steps, inside _connect (bounded by connect_within_timeout)
    aiomysql.Connection: {"caching_sha2_password_auth", "sha256_password_auth", "ensure_closed"},
    # they read through Connection.query (watched)
    SSCursor: {"callproc", "execute", "executemany"},
}


def _public_coroutines(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if inspect.iscoroutinefunction(member) and not name.startswith("_")
    }


@pytest.mark.mysql
async def test_aiomysql_waits_only_in_the_watched_methods(servers: dict[str, Server]) -> None:
    """Every public coroutine method of ``aiomysql.Connection`` and of its
    unbuffered cursor is watched by ``BoundedConnection`` or known to wait for
    no reply of its own, and a cursor's ``execute`` (buffered or not) reads its
    reply through ``Connection.query``.

    Fails when aiomysql gains a method that talks to the server, or stops going
    through ``query``: then revisit WATCHED_CONNECTION_CALLS and
    WATCHED_CURSOR_CALLS in contextstore/_dialects/_drivers/aiomysql.py.
    """
    for cls, watched in (
        (aiomysql.Connection, WATCHED_CONNECTION_CALLS),
        (SSCursor, WATCHED_CURSOR_CALLS),
    ):
        unwatched = _public_coroutines(cls) - set(watched)
        assert unwatched == AIOMYSQL_UNWATCHED[cls], (
            f"aiomysql {aiomysql.__version__}: {cls.__qualname__} has unwatched coroutine "
            f"methods {sorted(unwatched)}: revisit BoundedConnection in {MYSQL_SHIM}"
        )

    server = servers["mysql"]
    server.check()
    url = server.admin_url
    queries: list[str] = []

    class Spy(aiomysql.Connection):  # type: ignore[misc]
        async def query(self, sql: Any, unbuffered: bool = False) -> Any:
            queries.append(sql if isinstance(sql, str) else sql.decode())
            return await super().query(sql, unbuffered=unbuffered)

    connection = await aiomysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
    )
    connection.__class__ = Spy
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT 1")
        async with connection.cursor(SSCursor) as cursor:
            await cursor.execute("SELECT 2")
            assert list(await cursor.fetchall()) == [(2,)]
    finally:
        connection.close()
    assert queries == ["SELECT 1", "SELECT 2"], (
        f"aiomysql {aiomysql.__version__}: a cursor's execute no longer goes through "
        f"Connection.query ({queries}): revisit BoundedConnection in {MYSQL_SHIM}"
    )
