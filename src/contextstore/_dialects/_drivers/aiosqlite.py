"""aiosqlite (0.22) shim: a connection whose cursors cost one thread hop per statement.

Quarantined here because it uses aiosqlite's private ``Connection._conn``,
``_execute``, ``_running``, ``_connection`` and ``_thread``: aiosqlite has no
public way to run a function in its thread, nor a public handle on the thread.
(aiosqlite 0.20 and 0.21 have no ``_thread``: their Connection is the thread
itself; this shim fails there.) ``tests/dialects/test_sqlite.py`` checks the
cursor behaves as the DB-API one. The canaries in
``tests/dialects/test_driver_shims.py``:

* ``test_sqlalchemy_aiosqlite_adapter_still_makes_several_hops_per_select``
  fails when SQLAlchemy's own adapter makes one hop per statement: then
  revisit (likely remove) the one-hop cursors;
* ``test_aiosqlite_still_has_no_public_way_into_its_worker_thread`` fails when
  aiosqlite gains a public name (one that may run a function in the thread or
  reach it): then review the private names here;
* ``test_aiosqlite_private_names_the_shims_use`` and
  ``test_aiosqlite_private_thread_of_a_failed_open`` fail when aiosqlite
  renames or reshapes a name used here (``connect``, ``_opened``...).

aiosqlite runs every call in its own thread; SQLAlchemy's adapter makes four
such calls per statement (create the cursor, execute, fetch, close). Each hop
is a queue put, a thread wake-up and a loop wake-up: on a busy machine that is
most of a point read. Here ``cursor()`` creates nothing, and ``execute`` runs
the statement *and* fetches up to :data:`PREFETCH` rows in one hop, closing the
SQLite cursor when the result is exhausted. Larger results fetch the rest in
one more hop (``fetchall``) or batch by batch (server-side streams), so a
stream holds at most ``PREFETCH`` rows or its batch size.

The behaviour SQLAlchemy sees is the DB-API cursor's: ``description``,
``rowcount``, ``lastrowid`` and the ``fetch*`` methods.

Statement timeout: SQLite has no server to stop a statement, so with
``statement_timeout`` set each thread hop that runs SQLite code (execute, a
fetch) carries a deadline, and a progress handler interrupts the statement
once it has passed (``SQLITE_INTERRUPT``, which the recipe classifies as a
timeout). Like PostgreSQL's limit on a server-side cursor's FETCH, the
deadline is per hop, so a stream may run longer than the limit in total.
Waiting for the write lock is not a statement: ``busy_timeout`` bounds it.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

import aiosqlite

from .._base import Wire

__all__ = ["PREFETCH", "STATEMENT_TIMEOUT_ARG", "SQLiteWire", "connect"]

T = TypeVar("T")

#: rows fetched in the same thread hop as the statement (aiosqlite's own chunk
#: size): a page of up to 63 rows costs one hop, and a stream holds at most
#: this many rows (or its batch size) in memory.
PREFETCH = 64
#: connect_args key (removed before sqlite3 sees it): seconds a statement may run.
STATEMENT_TIMEOUT_ARG = "contextstore_statement_timeout"
#: SQLite virtual-machine instructions between two looks at the deadline:
#: well under a millisecond of work, a negligible cost per look.
_PROGRESS_STEPS = 1000


class _Cursor:
    """The part of ``aiosqlite.Cursor`` that SQLAlchemy's adapter uses."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.lastrowid: int | None = None
        self.rowcount = -1
        self.arraysize = 1

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        def run() -> tuple[sqlite3.Cursor | None, Any, int | None, int, list[Any]]:
            cursor = self._connection._conn.cursor()
            try:
                cursor.execute(sql, () if parameters is None else parameters)
                rows = cursor.fetchmany(PREFETCH) if cursor.description else []
            except BaseException:
                cursor.close()
                raise
            state = (cursor.description, cursor.lastrowid, cursor.rowcount)
            if len(rows) < PREFETCH:
                cursor.close()
                return None, *state, rows
            return cursor, *state, rows

        await self._close_open_cursor()
        (
            cursor,
            self.description,
            self.lastrowid,
            self.rowcount,
            rows,
        ) = await self._connection.run_in_thread(run, bounded=True)
        self._cursor = cursor
        self._rows = deque(rows)
        return self

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        def run() -> tuple[int | None, int]:
            cursor = self._connection._conn.cursor()
            try:
                cursor.executemany(sql, parameters)
                return cursor.lastrowid, cursor.rowcount
            finally:
                cursor.close()

        await self._close_open_cursor()
        self.description = None
        self.lastrowid, self.rowcount = await self._connection.run_in_thread(run, bounded=True)
        return self

    async def _more(self, size: int | None) -> None:
        """Fetch ``size`` more rows (all when None) into the buffer, in one hop."""
        cursor = self._cursor
        if cursor is None:
            return

        def run() -> tuple[list[Any], bool]:
            rows = cursor.fetchall() if size is None else cursor.fetchmany(size)
            done = size is None or len(rows) < size
            if done:
                cursor.close()
            return rows, done

        rows, done = await self._connection.run_in_thread(run, bounded=True)
        self._rows.extend(rows)
        if done:
            self._cursor = None

    async def fetchone(self) -> Any:
        if not self._rows:
            await self._more(PREFETCH)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        wanted = self.arraysize if size is None else size
        if len(self._rows) < wanted:
            await self._more(max(wanted - len(self._rows), 1))
        return [self._rows.popleft() for _ in range(min(wanted, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        await self._more(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        await self._close_open_cursor()

    async def _close_open_cursor(self) -> None:
        cursor, self._cursor = self._cursor, None
        connection = self._connection
        if cursor is None or not connection._running or connection._connection is None:
            return  # closing the connection closed its cursors too
        await connection.run_in_thread(cursor.close)


class _CursorHandle:
    """What ``cursor()`` returns, like aiosqlite's own: awaited (SQLAlchemy 2.0's
    adapter) or entered with ``async with`` (2.1's), it gives the cursor."""

    def __init__(self, cursor: _Cursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._ready().__await__()

    async def _ready(self) -> _Cursor:
        return self._cursor

    async def __aenter__(self) -> _Cursor:
        return self._cursor

    async def __aexit__(self, *_exc: object) -> None:
        await self._cursor.close()


class _Connection(aiosqlite.Connection):
    #: seconds one bounded hop may spend in SQLite; None: no bound.
    statement_timeout: float | None = None
    #: ``time.monotonic()`` past which the running hop is interrupted.
    _deadline: float | None = None

    def cursor(self) -> _CursorHandle:  # type: ignore[override]
        return _CursorHandle(_Cursor(self))

    async def run_in_thread(self, function: Callable[[], T], *, bounded: bool = False) -> T:
        """Run ``function`` in the connection's thread: one hop.

        ``bounded``: the hop runs statements, which :data:`statement_timeout` limits.
        """
        if bounded and self.statement_timeout is not None:
            function = self._with_deadline(function, self.statement_timeout)
        result: T = await self._execute(function)  # type: ignore[no-untyped-call]
        return result

    def call(
        self, function: Callable[[sqlite3.Connection], T], *, bounded: bool
    ) -> Coroutine[Any, Any, T]:
        """Run ``function(sqlite3_connection)`` in the connection's thread: one hop.

        Written without :meth:`run_in_thread`, and as a plain function that
        returns the hop's coroutine: every statement of the execution core
        takes this path, and a coroutine of its own would be one more frame
        on the way back from each hop.
        """
        hop: Callable[[], T] = functools.partial(function, self._conn)
        if bounded and self.statement_timeout is not None:
            hop = self._with_deadline(hop, self.statement_timeout)
        hopped: Coroutine[Any, Any, T] = self._execute(hop)  # type: ignore[no-untyped-call]
        return hopped

    def _with_deadline(self, function: Callable[[], T], timeout: float) -> Callable[[], T]:
        def run() -> T:
            self._deadline = time.monotonic() + timeout
            try:
                return function()
            finally:
                self._deadline = None

        return run

    def _past_deadline(self) -> int:
        """The progress handler: non-zero interrupts the running statement."""
        deadline = self._deadline
        return 1 if deadline is not None and time.monotonic() > deadline else 0


def connect(database: str | bytes, **kwargs: Any) -> Coroutine[Any, Any, aiosqlite.Connection]:
    """``aiosqlite.connect`` with one-hop cursors; awaited by SQLAlchemy's adapter.

    The worker thread is a daemon (as SQLAlchemy makes it), so a process that
    forgets to close the engine still exits. ``kwargs`` may carry
    :data:`STATEMENT_TIMEOUT_ARG`; the rest go to ``sqlite3.connect``.
    """
    location = database.decode() if isinstance(database, bytes) else str(database)
    timeout = kwargs.pop(STATEMENT_TIMEOUT_ARG, None)

    def open_database() -> sqlite3.Connection:
        raw: sqlite3.Connection = sqlite3.connect(location, **kwargs)
        if timeout is not None:
            raw.set_progress_handler(connection._past_deadline, _PROGRESS_STEPS)
        return raw

    connection = _Connection(open_database, 64)
    connection.statement_timeout = timeout
    connection._thread.daemon = True
    return _opened(connection)


async def _opened(connection: _Connection) -> aiosqlite.Connection:
    """Open ``connection``; when that fails, wait (briefly) for its worker thread.

    aiosqlite stops the thread of a connection that failed to open without
    waiting for it; a thread still reporting to an event loop that has closed
    meanwhile would fail there ("Event loop is closed").
    """
    try:
        return await connection
    except BaseException:
        await asyncio.to_thread(connection._thread.join, 5.0)
        raise


class SQLiteWire(Wire):
    """The execution core's SQLite wire: one thread hop per statement.

    ``begin`` sends nothing by itself: ``BEGIN IMMEDIATE`` runs in the same hop
    as the transaction's first statement (the write lock is still taken before
    that statement runs). Statements carry the ``statement_timeout`` deadline;
    COMMIT and ROLLBACK do not (like the server dialects' limits).
    """

    def __init__(self, connection: _Connection) -> None:
        super().__init__(connection)
        self._connection = connection
        self._pending_begin = False

    def fetch(
        self, sql: str, args: Sequence[Any] | None
    ) -> Coroutine[Any, Any, Sequence[Sequence[Any]]]:
        # _take_begin(), written out: every read takes this path (and, as
        # _Connection.call, without a coroutine of its own)
        begin, self._pending_begin = self._pending_begin, False

        def run(raw: sqlite3.Connection) -> list[Any]:
            if begin:
                raw.execute("BEGIN IMMEDIATE")
            cursor = raw.execute(sql, () if args is None else args)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()

        return self._connection.call(run, bounded=True)

    async def execute(self, sql: str, args: Sequence[Any] | None) -> int:
        begin = self._take_begin()

        def run(raw: sqlite3.Connection) -> int:
            if begin:
                raw.execute("BEGIN IMMEDIATE")
            cursor = raw.execute(sql, () if args is None else args)
            try:
                return cursor.rowcount
            finally:
                cursor.close()

        return await self._connection.call(run, bounded=True)

    async def execute_many(self, sql: str, args: Sequence[Sequence[Any]]) -> int:
        begin = self._take_begin()

        def run(raw: sqlite3.Connection) -> int:
            if begin:
                raw.execute("BEGIN IMMEDIATE")
            cursor = raw.executemany(sql, args)
            try:
                return cursor.rowcount if cursor.rowcount >= 0 else len(args)
            finally:
                cursor.close()

        return await self._connection.call(run, bounded=True)

    async def begin(self) -> None:
        self._pending_begin = True

    async def settle(self) -> None:
        if self._take_begin():

            def run(raw: sqlite3.Connection) -> None:
                raw.execute("BEGIN IMMEDIATE")

            await self._connection.call(run, bounded=True)

    async def commit(self) -> None:
        if self._take_begin():
            return  # nothing ran: nothing to commit

        def run(raw: sqlite3.Connection) -> None:
            if raw.in_transaction:
                raw.commit()

        await self._connection.call(run, bounded=False)

    async def rollback(self) -> None:
        if self._take_begin():
            return

        def run(raw: sqlite3.Connection) -> None:
            if raw.in_transaction:
                raw.rollback()

        await self._connection.call(run, bounded=False)

    def _take_begin(self) -> bool:
        begin, self._pending_begin = self._pending_begin, False
        return begin
