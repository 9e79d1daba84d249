"""The legacy backend's database access: one aiosqlite connection per operation.

Invariants:

* every operation opens its own connection, applies the PRAGMAs (busy
  timeout first, so switching to WAL waits for a lock instead of failing;
  ``journal_mode=WAL`` is checked, ``foreign_keys=ON``,
  ``synchronous=NORMAL``) and closes it before returning, whatever happens;
* the driver's own transaction handling is off (``isolation_level=None``):
  writes run between an explicit ``BEGIN IMMEDIATE`` (the write lock is
  taken up front, so a writer waits on ``busy_timeout`` instead of failing on
  lock upgrade) and ``COMMIT``, or ``ROLLBACK`` on any error; reads run in
  autocommit;
* every ``sqlite3`` error leaving this module is a ``contextstore.errors``
  class, chosen by ``sqlite_errorcode`` and raised ``from`` the original;
* values use exactly the representation SQLAlchemy's SQLite types use
  (see ``contextstore._dialects.types``), so core and legacy share one file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from .._facts import BUSY_TIMEOUT_MS, json_loads, json_text, sqlite_error_kind
from .._unit import UnitState, savepoint
from ..errors import (
    REFUSALS,
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    ValidationError,
)
from . import _sql

Params = dict[str, Any] | tuple[Any, ...]


# -- values: the representation SQLAlchemy uses on SQLite ------------------


def to_db_time(moment: datetime) -> str:
    """An aware datetime as SQLAlchemy stores DATETIME on SQLite: naive UTC text."""
    utc = moment.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}"
    )


def from_db_time(text: str) -> datetime:
    """Stored DATETIME text back to an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def optional_time(text: str | None) -> datetime | None:
    return None if text is None else from_db_time(text)


def to_db_json(value: Any) -> str:
    """A JSON value as core's engine serialises it (the shared codec)."""
    return json_text(value)


def from_db_json(stored: str | float | None) -> Any:
    """A stored JSON value back to Python, as SQLAlchemy's SQLite JSON type reads it.

    A ``JSON`` column has NUMERIC affinity in SQLite, so SQLite stores the text
    of a bare JSON number as an INTEGER or REAL; such values come back as
    numbers, not text, and are returned as they are (SQLAlchemy does the same).
    """
    if stored is None:
        return None
    if isinstance(stored, int | float):
        return stored
    return json_loads(stored)


def to_db_bool(value: bool | None) -> int | None:
    return None if value is None else int(value)


# -- errors ----------------------------------------------------------------


def translate(exc: sqlite3.Error, *, committing: bool = False) -> ContextStoreError:
    """The contextstore error for a sqlite3 error (to be raised ``from exc``)."""
    kind = sqlite_error_kind(getattr(exc, "sqlite_errorcode", None))
    # the same words as the core backend's translation, never SQLite's own text
    if kind == "conflict":
        return ConflictError(REFUSALS["conflict"])
    if kind == "not_found":
        return NotFoundError(REFUSALS["not_found"])
    if kind == "invalid":
        return ValidationError(REFUSALS["invalid"])
    if kind == "too_large":
        return ValidationError(REFUSALS["too_large"])
    if kind == "busy":
        return DatabaseUnavailableError(REFUSALS["busy"], may_have_committed=False)
    if kind == "unavailable":
        return DatabaseUnavailableError(REFUSALS["unavailable"], may_have_committed=committing)
    return ContextStoreError(REFUSALS["error"])


# -- connections -------------------------------------------------------------


class Connection:
    """One open aiosqlite connection with the few calls the repositories need."""

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self._raw = raw

    async def all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        async with self._raw.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def one(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        async with self._raw.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def value(self, sql: str, params: Params = ()) -> Any:
        row = await self.one(sql, params)
        return None if row is None else row[0]

    async def run(self, sql: str, params: Params = ()) -> int:
        """Execute one statement; return the rows it changed."""
        async with self._raw.execute(sql, params) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int:
        """Execute one INSERT; return the new rowid."""
        async with self._raw.execute(sql, params) as cursor:
            if cursor.lastrowid is None:  # pragma: no cover - sqlite always sets it
                raise ContextStoreError("database error: INSERT returned no rowid")
            return cursor.lastrowid

    async def run_many(self, statements: Iterable[str]) -> None:
        for sql in statements:
            await self.run(sql)


class Database:
    """Opens a configured connection per operation on one SQLite file."""

    def __init__(self, path: str, *, busy_timeout_ms: int | None = None, uri: bool = False) -> None:
        self._path = path
        self._uri = uri
        self._busy_timeout_ms = BUSY_TIMEOUT_MS if busy_timeout_ms is None else busy_timeout_ms
        self._closed = False

    @property
    def path(self) -> str:
        return self._path

    def close(self) -> None:
        """Refuse every later operation (there is no pool to release)."""
        self._closed = True

    async def _open(self, busy_timeout_ms: int | None = None) -> aiosqlite.Connection:
        if self._closed:
            raise ContextStoreError("the legacy backend is closed; create a new Store")
        wait_ms = self._busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
        raw = aiosqlite.connect(
            self._path, isolation_level=None, timeout=wait_ms / 1000, uri=self._uri
        )
        try:
            await raw
        except BaseException:
            await _worker_stopped(raw)
            raise
        try:
            raw.row_factory = sqlite3.Row
            await raw.execute(_sql.PRAGMA_BUSY_TIMEOUT.format(ms=int(wait_ms)))
            async with raw.execute(_sql.PRAGMA_JOURNAL_WAL) as cursor:
                row = await cursor.fetchone()
            mode = str(row[0]).lower() if row is not None else "unknown"
            if mode != "wal":
                raise DatabaseUnavailableError(
                    f"cannot switch {self._path!r} to WAL journal mode (it is {mode!r})"
                )
            await raw.execute(_sql.PRAGMA_FOREIGN_KEYS)
            await raw.execute(_sql.PRAGMA_SYNCHRONOUS)
        except BaseException:
            await raw.close()
            raise
        return raw

    @asynccontextmanager
    async def reading(self, *, busy_timeout_ms: int | None = None) -> AsyncIterator[Connection]:
        """A connection in autocommit, for work that only reads.

        Args:
            busy_timeout_ms: wait at most this long for a lock (default: the
                backend's busy timeout); health probes bound it by their deadline.
        """
        try:
            raw = await self._open(busy_timeout_ms)
            try:
                yield Connection(raw)
            finally:
                await raw.close()
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Connection]:
        """A connection inside ``BEGIN IMMEDIATE``: COMMIT on exit, ROLLBACK on error."""
        committing = False
        try:
            raw = await self._open()
            try:
                await raw.execute(_sql.BEGIN_IMMEDIATE)
                try:
                    yield Connection(raw)
                except BaseException:
                    await _rollback(raw)
                    raise
                committing = True
                try:
                    await raw.execute(_sql.COMMIT)
                except BaseException:
                    await _rollback(raw)
                    raise
            finally:
                await raw.close()
        except sqlite3.Error as exc:
            raise translate(exc, committing=committing) from exc

    @asynccontextmanager
    async def unit_of_work(self, state: UnitState) -> AsyncIterator[BoundDatabase]:
        """One connection inside ``BEGIN IMMEDIATE`` for several operations.

        The write lock is taken at BEGIN, so the unit never waits on itself and
        two units on one file queue for the busy timeout. COMMIT when the block
        ends; ROLLBACK on an exception (left unchanged), and also when a call
        failed inside and the block went on.
        """
        committing = False
        opened = False
        try:
            raw = await self._open()
            opened = True
            try:
                await raw.execute(_sql.BEGIN_IMMEDIATE)
                bound = BoundDatabase(self, Connection(raw), state)
                try:
                    yield bound
                except BaseException:
                    await _rollback(raw)
                    raise
                if state.failure is not None:
                    await _rollback(raw)
                    raise ContextStoreError(
                        "transaction rolled back: a statement inside it failed and the block "
                        "went on; use 'async with tx.savepoint():' to recover from an error"
                    ) from state.failure
                committing = True
                try:
                    await raw.execute(_sql.COMMIT)
                except BaseException:
                    await _rollback(raw)
                    raise
            finally:
                state.closed = True
                await raw.close()
        except sqlite3.Error as exc:
            error = translate(exc, committing=committing)
            state.fail(error, retry_safe=_retry_safe(exc, committing))
            raise error from exc
        except ContextStoreError as error:
            if not opened:
                state.fail(error, retry_safe=_retry_safe(error, committing))
            raise
        finally:
            state.closed = True


class BoundDatabase(Database):
    """The operations of one unit of work, all on its connection (see ``unit_of_work``)."""

    def __init__(self, database: Database, connection: Connection, state: UnitState) -> None:
        super().__init__(database.path, uri=database._uri)
        self._connection = connection
        self._state = state
        self._savepoints = 0

    @asynccontextmanager
    async def reading(self, *, busy_timeout_ms: int | None = None) -> AsyncIterator[Connection]:
        """The unit's connection, inside its transaction."""
        self._state.begin_statement()
        try:
            yield self._connection
        except sqlite3.Error as exc:
            error = translate(exc)
            self._state.fail(error, retry_safe=_retry_safe(exc, False))
            raise error from exc
        except BaseException as error:
            self._state.fail(error)
            raise

    writing = reading

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested part of the unit (``SAVEPOINT``); see ``contextstore._unit.savepoint``."""
        self._savepoints += 1
        name = f"contextstore_{self._savepoints}"

        async def run(*statements: str) -> None:
            try:
                for sql in statements:
                    await self._connection.run(sql.format(name=name))
            except sqlite3.Error as exc:
                raise translate(exc) from exc

        return savepoint(
            self._state,
            lambda: run(_sql.SAVEPOINT),
            lambda: run(_sql.RELEASE_SAVEPOINT),
            lambda: run(_sql.ROLLBACK_TO_SAVEPOINT, _sql.RELEASE_SAVEPOINT),
        )


def _retry_safe(error: BaseException, committing: bool) -> bool:
    """A fresh unit of work may succeed and cannot duplicate what this one did."""
    code = getattr(error, "sqlite_errorcode", None)
    kind = sqlite_error_kind(code) if isinstance(error, sqlite3.Error) else None
    if kind == "busy":
        return True  # the lock was not granted, or the transaction was rolled back
    return isinstance(error, DatabaseUnavailableError) and not committing


async def _worker_stopped(raw: aiosqlite.Connection) -> None:
    """Wait for the worker thread of a connection that failed to open.

    aiosqlite stops that thread without waiting for it; if the event loop
    closed first, the thread would fail reporting back to it.
    """
    # Legacy's one private name of a driver (aiosqlite 0.22 keeps the worker
    # in ``_thread`` and offers no public handle; 0.20 and 0.21 have no
    # ``_thread``, their connection being the thread, and this then waits for
    # nothing). It stays here, not in core's ``_dialects/_drivers``, because
    # legacy imports nothing of core; tests/legacy/test_health.py opens a file
    # that cannot be opened and would fail on the thread's late report if this
    # stopped working. Canaries in tests/dialects/test_driver_shims.py:
    # test_aiosqlite_private_thread_of_a_failed_open fails when ``_thread``
    # is renamed or reshaped; test_aiosqlite_still_has_no_public_way_into_its_worker_thread
    # when aiosqlite gains a public name (perhaps a handle on the thread).
    thread = getattr(raw, "_thread", None)
    deadline = time.monotonic() + 5.0
    while isinstance(thread, threading.Thread) and thread.is_alive():
        if time.monotonic() > deadline:  # pragma: no cover - a stuck sqlite3.connect
            return
        await asyncio.sleep(0.001)


async def _rollback(raw: aiosqlite.Connection) -> None:
    """Roll back if a transaction is still open; never mask the original error."""
    try:
        if raw.in_transaction:
            await raw.execute(_sql.ROLLBACK)
    except (sqlite3.Error, ValueError):
        pass  # closing the connection rolls back anyway
