"""SQLite through aiosqlite: the embedded default.

Invariants:

* the driver's own transaction handling is switched off
  (``isolation_level = None``) so contextstore decides how a transaction
  begins: writes start with ``BEGIN IMMEDIATE`` (the write lock is taken up
  front and waits on ``busy_timeout`` instead of failing later with "database
  is locked" on lock upgrade), single-statement reads run in autocommit;
* every connection gets WAL, ``foreign_keys=ON``, ``synchronous=NORMAL`` and a
  busy timeout; ``:memory:`` databases share one connection (``StaticPool``)
  because each new connection would see a different empty database.

See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from ._base import WRITE_INTENT, Dialect, ErrorKind, queue_pool_options

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from ..settings import Settings

_DEFAULT_POOL_SIZE = 5
_DEFAULT_MAX_OVERFLOW = 10
_DEFAULT_POOL_TIMEOUT = 30.0
#: how long a writer waits for the lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 30_000

# Extended result codes: https://www.sqlite.org/rescode.html
_CONFLICT = {1555, 2067}  # CONSTRAINT_PRIMARYKEY, CONSTRAINT_UNIQUE
_NOT_FOUND = {787}  # CONSTRAINT_FOREIGNKEY
_INVALID = {275, 1299, 1811, 19}  # CHECK, NOTNULL, TRIGGER, generic CONSTRAINT
_BUSY_PRIMARY = {5, 6}  # BUSY, LOCKED
_UNAVAILABLE_PRIMARY = {14, 26}  # CANTOPEN, NOTADB
_INTERRUPT_PRIMARY = {9}


def is_memory(url: URL) -> bool:
    """True for an in-memory database (each connection would see its own)."""
    database = url.database or ""
    return database in ("", ":memory:") or "mode=memory" in database


class SQLiteDialect(Dialect):
    name = "sqlite"
    driver = "aiosqlite"
    schemes = ("sqlite",)
    supports_statement_timeout = False
    native_upsert = True
    is_server = False

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000}
        if is_memory(url):
            connect_args["check_same_thread"] = False
            return {"poolclass": StaticPool, "connect_args": connect_args}
        return {
            # a local file cannot go stale: no ping, no recycle unless asked
            **queue_pool_options(
                settings,
                size=_DEFAULT_POOL_SIZE,
                overflow=_DEFAULT_MAX_OVERFLOW,
                timeout=_DEFAULT_POOL_TIMEOUT,
                recycle=-1,
                pre_ping=False,
            ),
            "connect_args": connect_args,
        }

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:
        memory = is_memory(sync_engine.url)

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # take BEGIN out of the driver's hands (see module docstring)
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                if not memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            finally:
                cursor.close()

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(WRITE_INTENT, True):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            # reads that declared no write intent stay in autocommit

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        if not isinstance(orig, sqlite3.Error):
            return None
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None:
            if "no active connection" in str(orig):
                return ErrorKind.DISCONNECT
            return None
        if code in _CONFLICT:
            return ErrorKind.CONFLICT
        if code in _NOT_FOUND:
            return ErrorKind.NOT_FOUND
        if code in _INVALID:
            return ErrorKind.INVALID
        primary = code & 0xFF
        if primary in _BUSY_PRIMARY:
            return ErrorKind.BUSY
        if primary in _UNAVAILABLE_PRIMARY:
            return ErrorKind.UNAVAILABLE
        if primary in _INTERRUPT_PRIMARY:
            return ErrorKind.TIMEOUT
        return None

    def server_version_sql(self) -> str:
        return "SELECT sqlite_version()"
