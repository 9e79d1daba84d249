"""SQLite through aiosqlite: the embedded default.

Invariants:

* the driver's own transaction handling is switched off
  (``isolation_level = None``) so contextstore decides how a transaction
  begins: writes start with ``BEGIN IMMEDIATE`` (the write lock is taken up
  front and waits on ``busy_timeout`` instead of failing later with "database
  is locked" on lock upgrade), single-statement reads run in autocommit,
  and their connection goes back to the pool without a ROLLBACK (which would
  cost a thread hop for nothing);
* every connection gets WAL, ``foreign_keys=ON``, ``synchronous=NORMAL`` and a
  busy timeout; ``:memory:`` databases share one connection (``StaticPool``)
  because each new connection would see a different empty database;
* full-text search is an FTS5 *external-content* table over ``messages``
  kept in sync by triggers, so rows written by any writer (core, legacy, raw
  SQL) are searchable. A future migration that rebuilds ``messages`` (batch
  mode) drops the triggers with it and must create them again.

See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from sqlalchemy import column, event, func, literal_column, select, type_coerce
from sqlalchemy import table as sa_table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import StaticPool

from ._aiosqlite import connect as one_hop_connect
from ._base import (
    WRITE_INTENT,
    Dialect,
    ErrorKind,
    queue_pool_options,
    search_words,
    skip_idle_rollback,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Select, Table
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.sql import Executable
    from sqlalchemy.sql.elements import ColumnElement

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

#: FTS5 table over messages.content; rowid is messages.id.
FTS_TABLE = "messages_fts"
#: unicode61 folds case; remove_diacritics 2 also folds combined diacritics.
FTS_TOKENIZER = "unicode61 remove_diacritics 2"
_FTS_TRIGGERS = ("messages_fts_ai", "messages_fts_ad", "messages_fts_au")


def is_memory(url: URL) -> bool:
    """True for an in-memory database (each connection would see its own)."""
    database = url.database or ""
    # SQLAlchemy parses "sqlite:///file:x?mode=memory&uri=true" into database
    # "file:x" and query {"mode": "memory", ...}
    mode = url.query.get("mode", ())
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    return database in ("", ":memory:") or "memory" in modes or "mode=memory" in database


class SQLiteDialect(Dialect):
    name = "sqlite"
    driver = "aiosqlite"
    schemes = ("sqlite",)
    supports_statement_timeout = False
    native_upsert = True
    is_server = False
    alter_by_rebuild = True

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "timeout": BUSY_TIMEOUT_MS / 1000,
            # one thread hop per statement instead of four (see _aiosqlite)
            "async_creator_fn": one_hop_connect,
        }
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

        # a read in autocommit has nothing to roll back: skip the thread hop
        skip_idle_rollback(sync_engine, lambda driver: bool(driver.in_transaction))

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

    def fulltext_ddl(self) -> list[str]:
        # https://www.sqlite.org/fts5.html#external_content_tables
        ai, ad, au = _FTS_TRIGGERS
        remove = (
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, content) "
            "VALUES ('delete', old.id, old.content);"
        )
        add = f"INSERT INTO {FTS_TABLE}(rowid, content) VALUES (new.id, new.content);"
        return [
            f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(content, content='messages', "
            f"content_rowid='id', tokenize='{FTS_TOKENIZER}')",
            f"CREATE TRIGGER {ai} AFTER INSERT ON messages BEGIN {add} END",
            f"CREATE TRIGGER {ad} AFTER DELETE ON messages BEGIN {remove} END",
            f"CREATE TRIGGER {au} AFTER UPDATE OF content ON messages BEGIN {remove} {add} END",
            # index rows that existed before the table did
            f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')",
        ]

    def fulltext_drop_ddl(self) -> list[str]:
        return [f"DROP TRIGGER IF EXISTS {name}" for name in _FTS_TRIGGERS] + [
            f"DROP TABLE IF EXISTS {FTS_TABLE}"
        ]

    def is_fulltext_object(self, name: str) -> bool:
        # FTS5 also creates shadow tables messages_fts_data, _idx, _docsize, _config
        return name == FTS_TABLE or name.startswith(f"{FTS_TABLE}_")

    def upsert(
        self,
        table: Table,
        values: dict[str, Any],
        *,
        conflict: Sequence[str],
        update: Sequence[str],
        returning: Sequence[ColumnElement[Any]] = (),
    ) -> Executable:
        stmt = sqlite_insert(table).values(values)
        if not update:
            done = stmt.on_conflict_do_nothing(index_elements=list(conflict))
        else:
            done = stmt.on_conflict_do_update(
                index_elements=list(conflict), set_={name: stmt.excluded[name] for name in update}
            )
        # RETURNING of an upsert returns the row as stored (inserted or updated)
        return done.returning(*returning) if returning else done

    def search_statement(
        self,
        table: Table,
        columns: Sequence[ColumnElement[Any]],
        query: str,
        filters: Sequence[ColumnElement[bool]],
        limit: int,
    ) -> Select[Any] | None:
        match = fts5_query(query)
        if match is None:
            return None
        fts: ColumnElement[Any] = literal_column(FTS_TABLE)
        score = (-func.bm25(fts)).label("score")
        return (
            select(*columns, score)
            .select_from(
                table.join(
                    sa_table(FTS_TABLE, column("rowid")),
                    literal_column(f"{FTS_TABLE}.rowid") == table.c.id,
                )
            )
            .where(fts.op("MATCH")(match), *filters)
            .order_by(score.desc(), table.c.id.desc())
            .limit(limit)
        )

    def time_bucket(self, column: ColumnElement[Any], bucket: str) -> ColumnElement[Any]:
        from .._types import UTCDateTime

        # the same text layout SQLAlchemy stores DATETIME in, so the type parses it
        layout = _BUCKET_LAYOUT[bucket]
        return type_coerce(func.strftime(literal_column(f"'{layout}'"), column), UTCDateTime())


#: the FTS5 external-content table over messages.content (created by migrations).
FTS_TABLE = "messages_fts"
_BUCKET_LAYOUT = {
    "minute": "%Y-%m-%d %H:%M:00.000000",
    "hour": "%Y-%m-%d %H:00:00.000000",
    "day": "%Y-%m-%d 00:00:00.000000",
}


def fts5_query(text: str) -> str | None:
    """The FTS5 ``MATCH`` expression for a user's search text; None when it has no words.

    Shared by the core and legacy backends, so both match exactly the same rows.
    Every word is quoted as an FTS5 string, so nothing in the input can act as
    FTS5 syntax (``AND``/``OR``/``NOT``/``NEAR``, ``*``, ``^``, ``:``, quotes,
    parentheses); the words are joined with ``OR``: a message matches when it
    contains any of them, and ``bm25`` ranks messages with more (and rarer)
    matching words first. Matching is case- and diacritic-insensitive (the
    tokenizer folds both).
    """
    words: dict[str, str] = {}
    for word in search_words(text):
        words.setdefault(word.casefold(), word)
    if not words:
        return None
    return " OR ".join(f'"{word}"' for word in words.values())
