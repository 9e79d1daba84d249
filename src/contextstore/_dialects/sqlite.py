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
* full-text search is an FTS5 *external-content* table over
  ``messages.search_text`` (the message's words, normalised and encoded by
  contextstore: see ``contextstore._facts.search_term``) with the ``ascii``
  tokenizer, kept in sync by triggers, so rows written by core and legacy
  alike are searchable. A future migration that rebuilds ``messages`` (batch
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

from .._facts import (
    BUCKET_LAYOUT,
    BUSY_TIMEOUT_MS,
    FTS_TABLE,
    fts5_query,
    is_memory_database,
    sqlite_error_kind,
    sqlite_uri,
    sqlite_url_problem,
)
from ._base import (
    WRITE_INTENT,
    Channel,
    Dialect,
    ErrorKind,
    Wire,
    on_conflict_upsert,
    queue_pool_options,
)
from ._drivers.aiosqlite import STATEMENT_TIMEOUT_ARG, SQLiteWire
from ._drivers.aiosqlite import connect as one_hop_connect
from ._drivers.sqlalchemy import skip_idle_rollback
from .types import UTCDateTime

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


def is_memory(url: URL) -> bool:
    """True for an in-memory database (each connection would see its own)."""
    return is_memory_database(url.database, url.query)


class SQLiteDialect(Dialect):
    name = "sqlite"
    driver = "aiosqlite"
    schemes = ("sqlite",)
    is_server = False
    alter_by_rebuild = True
    datetime_binds_iso_text = True
    datetime_results_iso_text = True

    def normalise_url(self, url: URL) -> URL:
        """The async driver, and query options both backends honour alike: only
        SQLite's URI parameters, with ``uri=true``, on a ``file:`` filename
        (SQLAlchemy would otherwise open a file named ``x.db?mode=ro``)."""
        url = super().normalise_url(url)
        problem = sqlite_url_problem(url.database, url.query)
        if problem is not None:
            from ..errors import ConfigurationError

            raise ConfigurationError(problem)
        database = url.database or ""
        if sqlite_uri(database, url.query) is not None and not database.startswith("file:"):
            url = url.set(database=f"file:{database}")
        return url

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "timeout": BUSY_TIMEOUT_MS / 1000,
            # one thread hop per statement instead of four (see _drivers.aiosqlite)
            "async_creator_fn": one_hop_connect,
            # SQLite has no server to enforce it: the shim interrupts the statement
            STATEMENT_TIMEOUT_ARG: settings.statement_timeout,
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

    def wire(self, driver_connection: Any) -> Wire:
        return SQLiteWire(driver_connection)

    async def insert_many(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[int]:
        # executemany of one prepared INSERT: SQLite's fastest path. The write
        # transaction excludes every other writer, so each row gets the rowid
        # after the largest one: the ids are consecutive up to last_insert_rowid()
        quote = channel.dialect.identifier_preparer.quote
        name = quote(table.name)
        columns = ", ".join(quote(column) for column in names)
        markers = ", ".join("?" * len(names))
        await channel.send_many(f"INSERT INTO {name} ({columns}) VALUES ({markers})", rows)
        ((last,),) = await channel.send("SELECT last_insert_rowid()")
        first = last - len(rows) + 1
        # proof rather than trust: the first and last rows are where they must be
        # (rowids only grow within the transaction, so the rest lie between them)
        token_at = list(names).index("client_token")
        ends = dict(
            await channel.send(
                f"SELECT id, client_token FROM {name} WHERE id IN (?, ?)", [first, last]
            )
        )
        if ends.get(first) != rows[0][token_at] or ends.get(last) != rows[-1][token_at]:
            raise RuntimeError("the inserted rows did not get consecutive ids")
        return list(range(first, last + 1))

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        if not isinstance(orig, sqlite3.Error):
            return None
        code = getattr(orig, "sqlite_errorcode", None)
        if code is None:
            if "no active connection" in str(orig):
                return ErrorKind.DISCONNECT
            return None
        kind = sqlite_error_kind(code)
        return None if kind is None else ErrorKind(kind)

    def server_version_sql(self) -> str:
        return "SELECT sqlite_version()"

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
        return on_conflict_upsert(sqlite_insert, table, values, conflict, update, returning)

    def search_terms(self, query: str) -> str | None:
        return fts5_query(query)

    def search_statement(
        self,
        table: Table,
        columns: Sequence[ColumnElement[Any]],
        terms: ColumnElement[Any],
        filters: Sequence[ColumnElement[bool]],
    ) -> Select[Any]:
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
            .where(fts.op("MATCH")(terms), *filters)
            .order_by(score.desc(), table.c.id.desc())
        )

    def time_bucket(self, column: ColumnElement[Any], bucket: str) -> ColumnElement[Any]:
        # the same text layout SQLAlchemy stores DATETIME in, so the type parses it
        layout = BUCKET_LAYOUT[bucket]
        return type_coerce(func.strftime(literal_column(f"'{layout}'"), column), UTCDateTime())
