"""PostgreSQL through asyncpg.

Invariants: ``statement_timeout`` and ``application_name`` are server settings
sent in the startup packet (no extra round trip per connection); every call
on a connection is bounded on the client a little longer than the server's
limit (``_pgbound``: asyncpg's ``command_timeout`` without its timer per
call), so a server that stops answering altogether still yields an error;
errors are classified by SQLSTATE
(https://www.postgresql.org/docs/current/errcodes-appendix.html).

Behind a pooler (``pooler_mode``, PgBouncer's ``pool_mode``): only
``application_name`` goes in the startup packet (PgBouncer 1.18 with its
default configuration refuses any other parameter it does not track,
``statement_timeout`` included, with "unsupported startup parameter").

* ``"transaction"``: a server connection is ours for one transaction only.
  No named prepared statement: asyncpg's ``statement_cache_size=0`` makes
  every statement unnamed and re-parsed with its Bind in the same message
  flight, so a statement never runs on a server connection that has not
  just parsed it (never another client's statement, none left behind);
  SQLAlchemy's ``prepared_statement_cache_size=0`` keeps no prepared
  statement objects. Every call runs in a transaction whose first round
  trip is ``BEGIN; SET LOCAL statement_timeout = N`` (one simple-protocol
  message: the server enforces the limit at no extra round trip for a
  write; a read pays BEGIN and COMMIT). A transaction SQLAlchemy begins
  itself (units of work and streams while statements are observed,
  ``db.transaction()``) runs the ``SET LOCAL`` as its first statement
  (:meth:`transaction_prelude`). No session state is relied on:
  the migration lock is transaction-scoped, nothing is SET for the session.
* ``"session"``: a server connection is ours from the first statement to
  the disconnect; ``SET statement_timeout`` is the first statement of each
  new connection, bounded by ``pool_timeout``: when the pooler has no
  server connection to give (its pool is full), the connection is dropped
  and ``PoolExhaustedError`` says so instead of waiting for the pooler's
  ``query_wait_timeout`` (120 s by default).

Round trips: a read that declared no write intent runs in autocommit (no
BEGIN, and no ROLLBACK when the connection goes back to the pool); a write
transaction is BEGIN, its statements, COMMIT. There is no ping per checkout: a
connection that died in the pool fails its first statement, SQLAlchemy
invalidates the pool, and the retry policy of ``ConnectionManager`` repeats
the unit on a fresh connection.

Schema: timestamps are ``timestamptz``; exact strings use ``COLLATE "C"``
(byte order, the same order SQLite and MySQL's binary collations give, and
B-tree indexes usable for ``LIKE 'prefix%'``); full-text search is a STORED
generated ``tsvector`` column, ``to_tsvector('simple', search_text)``, with a
GIN index, computed by the server on every write. ``search_text`` holds the
message's words already normalised and encoded by contextstore (plain ASCII
terms such as ``zwecole``, see ``contextstore._facts.search_term``), so the
parser, the ``simple`` dictionary and the database's locale change nothing:
every term is one ``asciiword``/``numword`` token, kept as it is. The vector
is created by the migration, not declared in ``schema.messages`` (a
``select(messages)`` should not ship it).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, literal_column, select, true, type_coerce
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .._facts import json_bytes_loads, jsonb_loads, search_words
from ._base import (
    SNAPSHOT,
    WRITE_INTENT,
    Channel,
    Dialect,
    ErrorKind,
    Wire,
    on_conflict_upsert,
    pipelined,
    queue_pool_options,
)
from .types import UTCDateTime

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
    from datetime import datetime

    from sqlalchemy import Select, Table
    from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext
    from sqlalchemy.engine.interfaces import Dialect as SADialect
    from sqlalchemy.pool import ConnectionPoolEntry
    from sqlalchemy.sql import Executable
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.types import TypeEngine

    from ..settings import Settings

APPLICATION_NAME = "contextstore"
#: from this many rows on, add_many goes through COPY instead of INSERT ... RETURNING.
COPY_MIN_ROWS = 200
#: the rows of a bulk load's first COPY (:func:`copy_parts`): made before the
#: server has anything to do, so few; each next COPY doubles, up to
#: :data:`COPY_PART_MAX_ROWS`, and is made while the server loads the one before
#: (it takes a row several times longer than the client takes to make one)
COPY_FIRST_ROWS = 100
COPY_PART_MAX_ROWS = 2_000
#: seconds the client waits beyond the server's own statement timeout.
CLIENT_TIMEOUT_MARGIN = 2.0

_BY_SQLSTATE: dict[str, ErrorKind] = {
    "23505": ErrorKind.CONFLICT,  # unique_violation
    "23503": ErrorKind.NOT_FOUND,  # foreign_key_violation
    "23502": ErrorKind.INVALID,  # not_null_violation
    "23514": ErrorKind.INVALID,  # check_violation
    "22001": ErrorKind.INVALID,  # string_data_right_truncation
    "22021": ErrorKind.INVALID,  # character_not_in_repertoire (NUL)
    "22P02": ErrorKind.INVALID,  # invalid_text_representation
    "22P05": ErrorKind.INVALID,  # untranslatable_character
    "22003": ErrorKind.INVALID,  # numeric_value_out_of_range
    "54000": ErrorKind.TOO_LARGE,  # program_limit_exceeded (a value or row too big)
    "57014": ErrorKind.TIMEOUT,  # query_canceled (statement_timeout)
    "40001": ErrorKind.RETRYABLE,  # serialization_failure
    "25006": ErrorKind.READ_ONLY,  # read_only_sql_transaction (a standby)
    "40P01": ErrorKind.RETRYABLE,  # deadlock_detected
    "55P03": ErrorKind.BUSY,  # lock_not_available
    "57P01": ErrorKind.DISCONNECT,  # admin_shutdown (terminated backend)
    "57P02": ErrorKind.DISCONNECT,  # crash_shutdown
    "57P03": ErrorKind.UNAVAILABLE,  # cannot_connect_now (starting up)
    "3D000": ErrorKind.UNAVAILABLE,  # invalid_catalog_name
    "53300": ErrorKind.UNAVAILABLE,  # too_many_connections
}
_BY_CLASS: dict[str, ErrorKind] = {
    "08": ErrorKind.DISCONNECT,  # connection_exception
    "28": ErrorKind.AUTH,  # invalid_authorization_specification, invalid_password
}

#: generated tsvector column on messages, and its GIN index.
SEARCH_VECTOR_COLUMN = "search_vector"
SEARCH_VECTOR_INDEX = "ix_messages_search_vector"
#: text search configuration: 'simple' has no stemming and no stop words; over
#: contextstore's terms (lowercase ASCII already) it changes nothing.
TEXT_SEARCH_CONFIG = "simple"
#: key of the transaction-scoped advisory lock serialising migration runs.
MIGRATION_LOCK_KEY = 0x636F6E74  # "cont"

#: numeric or boolean options of asyncpg's ``connect`` and SQLAlchemy's asyncpg
#: dialect that a URL's query may carry, with their types: SQLAlchemy hands the
#: query's values on as text, and asyncpg would compare ``'0' < 0``
QUERY_OPTIONS: dict[str, type] = {
    "statement_cache_size": int,
    "max_cacheable_statement_size": int,
    "max_cached_statement_lifetime": int,
    "prepared_statement_cache_size": int,
    "direct_tls": bool,
}
#: query options contextstore sets itself, and the setting that says them
SETTING_OPTIONS = {
    "timeout": "connect_timeout",
    "command_timeout": "statement_timeout",
    "server_settings": "statement_timeout (application_name is contextstore's)",
}
#: the statement caches that would prepare named statements
_STATEMENT_CACHES = ("statement_cache_size", "prepared_statement_cache_size")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
#: ``ConnectionPoolEntry.info`` key: when a new connection began (session mode)
_CONNECT_STARTED = "contextstore_connect_started"
#: seconds a new connection's first statement gets at least (session mode)
_MIN_FIRST_WAIT = 0.05

_DEFAULT_POOL_SIZE = 10
_DEFAULT_MAX_OVERFLOW = 10
_DEFAULT_POOL_TIMEOUT = 30.0
_DEFAULT_POOL_RECYCLE = 1800.0


class AsyncpgWire(Wire):
    """asyncpg spoken to directly: its statement cache prepares each SQL once
    per connection; the connection's class (``_pgbound``) bounds every call."""

    def __init__(self, connection: Any, begin_sql: str = "BEGIN") -> None:
        super().__init__(connection)
        self._connection = connection
        self._begin = begin_sql

    def fetch(
        self, sql: str, args: Sequence[Any] | None
    ) -> Coroutine[Any, Any, Sequence[Sequence[Any]]]:
        # the connection's own coroutine, without one of this method's around
        # it: every read takes this path
        rows: Coroutine[Any, Any, Sequence[Sequence[Any]]] = self._connection.fetch(
            sql, *(args or ())
        )
        return rows

    async def execute(self, sql: str, args: Sequence[Any] | None) -> int:
        # the command tag: "INSERT 0 1", "UPDATE 3", "DELETE 0"
        status: str = await self._connection.execute(sql, *(args or ()))
        last = status.rpartition(" ")[2]
        return int(last) if last.isdigit() else -1

    async def execute_many(self, sql: str, args: Sequence[Sequence[Any]]) -> int:
        await self._connection.executemany(sql, args)
        return len(args)

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        await self._connection.copy_records_to_table(table, records=records, columns=list(columns))

    async def begin(self) -> None:
        # without arguments asyncpg sends the simple protocol's Query: with
        # "; SET LOCAL ..." appended still one round trip
        await self._connection.execute(self._begin)

    async def commit(self) -> None:
        await self._connection.execute("COMMIT")

    async def rollback(self) -> None:
        if self._connection.is_in_transaction():
            await self._connection.execute("ROLLBACK")

    async def ping(self) -> None:
        await self._connection.execute("SELECT 1")

    def abort(self) -> None:
        self._connection.terminate()


async def _json_codecs(connection: Any) -> None:
    """``json`` and ``jsonb`` in binary format both ways, as SQLAlchemy sets them
    up (its JSON types hand the driver the serialised text), read by
    :func:`json_bytes_loads` and :func:`jsonb_loads` in one call per value.

    contextstore's own columns are ``json`` (revision 0003: ``jsonb`` turns
    ``1e16`` into an integer and ``-0.0`` into ``0.0``); the ``jsonb`` codec
    serves a service's own ``jsonb`` columns through ``store.db``. Neither costs
    a round trip: asyncpg knows the built-in types' oids.
    """
    await connection.set_type_codec(
        "json", encoder=str.encode, decoder=json_bytes_loads, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "jsonb", encoder=_jsonb_bytes, decoder=jsonb_loads, schema="pg_catalog", format="binary"
    )


def _jsonb_bytes(text: str) -> bytes:
    # the binary format's version byte, then the document
    return b"\x01" + text.encode()


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    driver = "asyncpg"
    schemes = ("postgresql", "postgres")

    def normalise_url(self, url: URL) -> URL:
        if url.get_backend_name() == "postgres":
            url = url.set(drivername=url.drivername.replace("postgres", "postgresql", 1))
        return super().normalise_url(url)

    def check_settings(self, url: URL, settings: Settings) -> None:
        options = query_options(url)
        if settings.pooler_mode == "transaction":
            for name in _STATEMENT_CACHES:
                if options.get(name, 0) != 0:
                    from ..errors import ConfigurationError

                    raise ConfigurationError(
                        f"database_url: {name}={options[name]} prepares named statements, "
                        "which a transaction-mode pooler hands to other clients; with "
                        "pooler_mode 'transaction' leave it out (contextstore sets 0)"
                    )

    def transactions_only(self, settings: Settings) -> bool:
        return settings.pooler_mode == "transaction" and settings.statement_timeout is not None

    def transaction_prelude(self, settings: Settings) -> str | None:
        return _timeout_prelude(settings)

    def wire_factory(self, settings: Settings) -> Callable[[Any], Wire]:
        prelude = _timeout_prelude(settings)
        if prelude is None:
            return self.wire
        begin_sql = f"BEGIN; {prelude}"

        def make(driver_connection: Any) -> Wire:
            return AsyncpgWire(driver_connection, begin_sql)

        return make

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        server_settings = {"application_name": APPLICATION_NAME}
        connect_args: dict[str, Any] = {
            **query_options(url),
            "timeout": settings.connect_timeout,
            "server_settings": server_settings,
        }
        if settings.pooler_mode == "transaction":
            # unnamed statements only (see the module docstring)
            connect_args["statement_cache_size"] = 0
            connect_args["prepared_statement_cache_size"] = 0
        if _is_loopback(url) and not {"ssl", "sslmode"} & set(url.query):
            # asyncpg's default (sslmode=prefer) first asks for TLS, a round trip
            # that protects nothing on the same machine; a task cancelled during
            # that exchange also leaves asyncpg with a future whose exception is
            # never retrieved (logged by the event loop). A URL that names ssl or
            # sslmode, and every remote host, keep asyncpg's default.
            connect_args["ssl"] = False
        if settings.statement_timeout is not None:
            # behind a pooler: SET LOCAL per transaction, or SET per session
            if settings.pooler_mode == "none":
                server_settings["statement_timeout"] = str(_millis(settings.statement_timeout))
            # asyncpg's command_timeout, without its timer per call (imported
            # here: SQLite's users never load asyncpg)
            from ._pgbound import bounded_connection_class

            connect_args["connection_class"] = bounded_connection_class(
                settings.statement_timeout + CLIENT_TIMEOUT_MARGIN
            )
        if _several_hosts(url) and "target_session_attrs" not in url.query:
            # failover: of the hosts named, connect to the one that takes
            # writes (asyncpg tries them in turn), so after a promotion new
            # connections find the new primary, and migrations never run on
            # a standby
            connect_args["target_session_attrs"] = "read-write"
        return {
            **queue_pool_options(
                settings,
                size=_DEFAULT_POOL_SIZE,
                overflow=_DEFAULT_MAX_OVERFLOW,
                timeout=_DEFAULT_POOL_TIMEOUT,
                recycle=_DEFAULT_POOL_RECYCLE,
                pre_ping=False,
            ),
            "connect_args": connect_args,
        }

    async def reserve_ids(self, channel: Channel, table: Table, count: int) -> list[int] | None:
        if count < COPY_MIN_ROWS or channel.observed:
            # COPY is no cursor execution: SQLAlchemy's events (echo,
            # OpenTelemetry) would miss it. Multi-row INSERTs they see
            return None
        # COPY is asyncpg's fastest path but returns nothing: the ids are drawn
        # from the table's sequence first (one round trip), then sent with the rows
        quote = channel.dialect.identifier_preparer.quote
        # the sequence looked up once (OFFSET 0 keeps the planner from folding
        # the lookup into every row: 10x the time of the draw itself)
        drawn = await channel.send(
            "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence("
            f"'{quote(table.name)}', 'id')::regclass AS seq OFFSET 0) AS q, "
            "generate_series(1, $1::integer)",
            [count],
        )
        return sorted(row[0] for row in drawn)

    async def copy_prepared(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        count: int,
        prepare: Callable[[int, int], Sequence[Sequence[Any]]],
    ) -> None:
        # one COPY per part, each part made while the server loads the one
        # before: asyncpg sends a COPY's rows 512 KiB at a time, so with one
        # COPY the first 512 KiB of rows (a whole 1,000-row batch of short
        # messages) would all be made before the server had any
        parts = (prepare(start, stop) for start, stop in copy_parts(count))
        await pipelined(parts, lambda rows: channel.copy(table.name, rows, names))

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:
        session_bound = _session_bound(settings)

        if session_bound is not None:

            @event.listens_for(sync_engine, "do_connect")
            def _connect_started(_dialect: Any, record: ConnectionPoolEntry, *_args: Any) -> None:
                # the bound counts from here: SQLAlchemy runs a pool's first
                # connect events one connection at a time, so time spent queued
                # behind another connection's first statement counts too
                record.info[_CONNECT_STARTED] = time.monotonic()

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
            if session_bound is not None:
                first, bound = session_bound
                started = record.info.pop(_CONNECT_STARTED, time.monotonic())
                _first_statement(dbapi_connection, first, bound, started)
            # after SQLAlchemy's own codecs (its listener comes first): the same
            # json and jsonb values, one Python call per value instead of two or three
            dbapi_connection.run_async(_json_codecs)

        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # SQLAlchemy's asyncpg adapter sends BEGIN lazily before the first
            # statement unless it is in autocommit; its DB-API style
            # ``autocommit`` attribute switches that without a round trip (off,
            # it goes back to the engine's isolation level).
            options = conn.get_execution_options()
            adapter: Any = conn.connection.dbapi_connection
            adapter.autocommit = not (
                options.get(WRITE_INTENT, True) or options.get(SNAPSHOT, False)
            )

        @event.listens_for(sync_engine, "handle_error")
        def _on_error(context: ExceptionContext) -> None:
            # the client's bound (_pgbound): the server sent nothing back within
            # statement_timeout + margin. SQLAlchemy discards the connection with
            # a graceful close that waits up to 2 s for the same silent server
            # (AsyncAdapt_asyncpg_connection._terminate_graceful_close); abort
            # the socket first, so the error reaches the caller at once.
            if not isinstance(context.original_exception, TimeoutError):
                return
            conn = context.connection
            if conn is None or conn.invalidated:
                return
            driver: Any = conn.connection.driver_connection
            if driver is not None:
                driver.terminate()
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = False  # only this one is hung

    def wire(self, driver_connection: Any) -> Wire:
        return AsyncpgWire(driver_connection)

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str):
            kind = _BY_SQLSTATE.get(sqlstate) or _BY_CLASS.get(sqlstate[:2])
            if kind is not None:
                return kind
            if sqlstate == "0A000" and "cached plan" in str(orig):
                return ErrorKind.RETRYABLE  # stale prepared statement after DDL
        text = str(orig)
        if "connection is closed" in text or "ConnectionDoesNotExistError" in text:
            return ErrorKind.DISCONNECT
        if "another operation" in text and "in progress" in text:
            # asyncpg's protocol is still busy with an operation that failed
            # under it (a backend terminated mid-reply): the connection cannot
            # be used again, like a lost one; nothing new reached the server
            return ErrorKind.DISCONNECT
        if "InvalidCachedStatementError" in text:
            return ErrorKind.RETRYABLE
        return None

    def server_version_sql(self) -> str:
        return "SHOW server_version"

    def primary_position_sql(self) -> str | None:
        # the WAL written so far: every commit acknowledged before is behind it
        return "SELECT pg_current_wal_lsn()::text"

    def replica_position_sql(self) -> str | None:
        # the replay lag is 0 when the standby has replayed all it received
        # (an idle primary sends nothing, and the last replayed commit ages)
        return (
            "SELECT pg_last_wal_replay_lsn()::text, CASE"
            " WHEN pg_last_wal_receive_lsn() IS NULL THEN NULL"
            " WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0"
            " ELSE EXTRACT(EPOCH FROM (now() - pg_last_xact_replay_timestamp())) * 1000 END"
        )

    def log_position(self, text: str | None) -> int | None:
        # an LSN is written as two hexadecimal halves: "16/B374D848"
        if not text or "/" not in text:
            return None
        high, low = text.split("/", 1)
        return (int(high, 16) << 32) | int(low, 16)

    datetime_keeps_timezone = True
    #: asyncpg decodes ``timestamptz`` as an aware datetime in UTC, whatever the
    #: session's TimeZone
    datetime_results_utc = True

    def datetime_type(self) -> TypeEngine[datetime]:
        from sqlalchemy.dialects.postgresql import TIMESTAMP

        return TIMESTAMP(timezone=True)

    def exact_string_type(self, length: int, dialect: SADialect) -> TypeEngine[str]:
        from sqlalchemy.dialects.postgresql import VARCHAR

        return VARCHAR(length, collation="C")

    def is_fulltext_object(self, name: str) -> bool:
        return name in (SEARCH_VECTOR_COLUMN, SEARCH_VECTOR_INDEX)

    def migration_lock_sql(self) -> tuple[str | None, str | None]:
        # released by the COMMIT that ends the migration transaction
        return f"SELECT true FROM pg_advisory_xact_lock({MIGRATION_LOCK_KEY})", None

    def identity_reset_sql(self, table: str, column: str, next_id: int) -> str | None:
        # a sequence does not follow explicit ids
        return f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), {next_id}, false)"

    def upsert(
        self,
        table: Table,
        values: dict[str, Any],
        *,
        conflict: Sequence[str],
        update: Sequence[str],
        returning: Sequence[ColumnElement[Any]] = (),
    ) -> Executable:
        return on_conflict_upsert(pg_insert, table, values, conflict, update, returning)

    def search_terms(self, query: str) -> str | None:
        terms = search_words(query)
        if not terms:
            return None
        # terms are ASCII letters and digits only, so quoting each as a lexeme is safe
        return " | ".join(f"'{term}'" for term in terms)

    def search_statement(
        self,
        table: Table,
        columns: Sequence[ColumnElement[Any]],
        terms: ColumnElement[Any],
        filters: Sequence[ColumnElement[bool]],
    ) -> Select[Any]:
        # the query parsed once, as a FROM item: in the WHERE and in ts_rank it
        # would be parsed again for every matching row
        parsed = func.to_tsquery(literal_column(f"'{TEXT_SEARCH_CONFIG}'"), terms).alias("q")
        tsquery = parsed.column
        vector: ColumnElement[Any] = literal_column(f"{table.name}.{SEARCH_VECTOR_COLUMN}")
        score = func.ts_rank(vector, tsquery).label("score")
        return (
            select(*columns, score)
            .select_from(table.join(parsed, true()))
            .where(vector.op("@@")(tsquery), *filters)
            .order_by(score.desc(), table.c.id.desc())
        )

    def time_bucket(self, column: ColumnElement[Any], bucket: str) -> ColumnElement[Any]:
        # three-argument date_trunc truncates in UTC whatever the session TimeZone
        return type_coerce(
            func.date_trunc(literal_column(f"'{bucket}'"), column, literal_column("'UTC'")),
            UTCDateTime(),
        )


def copy_parts(count: int) -> Iterator[tuple[int, int]]:
    """The ``(start, stop)`` row ranges of a bulk load of ``count`` rows, one
    COPY each: :data:`COPY_FIRST_ROWS`, then twice the part before, up to
    :data:`COPY_PART_MAX_ROWS`."""
    start, size = 0, COPY_FIRST_ROWS
    while start < count:
        stop = min(count, start + size)
        yield start, stop
        start, size = stop, min(2 * size, COPY_PART_MAX_ROWS)


def _several_hosts(url: URL) -> bool:
    """The URL names more than one host (``?host=h1:5432&host=h2:5432``)."""
    hosts = url.query.get("host")
    return url.host is None and isinstance(hosts, tuple) and len(hosts) > 1


def query_options(url: URL) -> dict[str, Any]:
    """The driver options in ``url``'s query that need a type, typed.

    Raises:
        ConfigurationError: an option is not a number (or a boolean) where the
            driver needs one, is given twice, or is one contextstore sets from
            its own settings.
    """
    from ..errors import ConfigurationError

    found: dict[str, Any] = {}
    for name, value in url.query.items():
        if name in SETTING_OPTIONS:
            raise ConfigurationError(
                f"database_url: the query option {name!r} is set by contextstore; "
                f"use the {SETTING_OPTIONS[name]} setting instead"
            )
        wanted = QUERY_OPTIONS.get(name)
        if wanted is None:
            continue
        if not isinstance(value, str):
            raise ConfigurationError(f"database_url: the query option {name!r} is given twice")
        found[name] = _typed(name, value, wanted)
    return found


def _typed(name: str, value: str, wanted: type) -> int | bool:
    from ..errors import ConfigurationError

    text = value.strip().lower()
    if wanted is bool:
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigurationError(
            f"database_url: the query option {name!r} must be true or false, got {value!r}"
        )
    if not text.isdigit():
        raise ConfigurationError(
            f"database_url: the query option {name!r} must be a whole number "
            f"0 or more, got {value!r}"
        )
    return int(text)


def _millis(seconds: float) -> int:
    """``statement_timeout`` in ms, rounded, never 0 (which PostgreSQL reads as no limit)."""
    return max(1, round(seconds * 1000))


def _timeout_prelude(settings: Settings) -> str | None:
    """``SET LOCAL statement_timeout`` for every transaction (transaction mode)."""
    if settings.pooler_mode != "transaction" or settings.statement_timeout is None:
        return None
    return f"SET LOCAL statement_timeout = {_millis(settings.statement_timeout)}"


def _session_bound(settings: Settings) -> tuple[str, float] | None:
    """Session mode: each new connection's first statement, and how long the
    pooler may keep it waiting for a server connection (``pool_timeout``)."""
    if settings.pooler_mode != "session":
        return None
    first = (
        "SELECT 1"
        if settings.statement_timeout is None
        else f"SET statement_timeout = {_millis(settings.statement_timeout)}"
    )
    wait = settings.pool_timeout if settings.pool_timeout is not None else _DEFAULT_POOL_TIMEOUT
    return first, wait


def _first_statement(dbapi_connection: Any, sql: str, wait: float, started: float) -> None:
    """Run ``sql`` on a new connection by ``wait`` seconds after ``started``
    (``time.monotonic``), or drop the connection and raise SQLAlchemy's pool
    timeout (``PoolExhaustedError``)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    left = max(wait - (time.monotonic() - started), _MIN_FIRST_WAIT)

    async def run(connection: Any) -> None:
        await connection.execute(sql, timeout=left)

    try:
        dbapi_connection.run_async(run)
    except TimeoutError:
        # asyncpg's own terminate: the adapter's waits up to 2 s for a
        # graceful close the pooler does not answer while it queues us
        dbapi_connection.driver_connection.terminate()
        raise PoolTimeout(
            f"the pooler gave this connection no server connection within {wait:g} s "
            "(pool_timeout): its pool is full (pooler_mode 'session')"
        ) from None


def _is_loopback(url: URL) -> bool:
    """The URL's host is this machine: a loopback address, localhost, or a socket."""
    host = url.host or url.query.get("host")
    if host is None:
        return True  # no host: the default Unix socket
    if isinstance(host, str):
        return _loopback_host(host)
    # several hosts: all on this machine, or left to asyncpg's default
    return all(_loopback_host(each.rsplit(":", 1)[0] if "]" not in each else each) for each in host)


def _loopback_host(host: str) -> bool:
    import ipaddress

    if host.startswith("/"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
