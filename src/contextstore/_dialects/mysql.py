"""MySQL and MariaDB through aiomysql.

Invariants: every connection speaks ``utf8mb4`` and has the session time zone
UTC (DATETIME columns hold UTC wall time); a statement time limit is set per
session (MariaDB ``max_statement_time`` in seconds, MySQL
``max_execution_time`` in milliseconds); ``pool_recycle`` stays below the
server's default ``wait_timeout`` (8 h); ``connect_timeout`` bounds the whole
handshake, not only the TCP connect (see :func:`connect_within_timeout`), and
every later wait for a reply is bounded by the statement limit plus a margin;
``DATETIME`` values are the naive ones pymysql returns, parsed faster
(:func:`decoders`).

Round trips: sessions run in autocommit, so a read is one statement and gives
its connection back without a ROLLBACK; a write transaction is BEGIN, its
statements, COMMIT. There is no ping per checkout: a connection the server
closed (restart, ``wait_timeout``) fails its first statement, SQLAlchemy
invalidates the pool, and the retry policy of ``ConnectionManager`` repeats
the unit on a fresh connection.
Errors are classified by errno
(https://mariadb.com/kb/en/mariadb-error-code-reference/).

Schema: tables are ``utf8mb4`` whatever the database default; timestamps
are ``DATETIME(6)`` holding UTC wall time; exact strings (ids, keys, names)
use a binary NO PAD collation, because ``utf8mb4_bin`` is PAD SPACE on MariaDB
(``'k' = 'k '`` would be true and a UNIQUE key would reject the second):
``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL 8. Full-text
search is an InnoDB FULLTEXT index on ``messages.search_text``, the message's
words already normalised and encoded by contextstore (see
``contextstore._facts.search_term``): every term is 3-32 ASCII letters and
digits starting with ``z``, so the server's ``innodb_ft_min_token_size``
(default 3; a server set above 3 would miss one-letter words),
``innodb_ft_max_token_size`` (84), its default stop words (none starts with
``z``) and the column's collation change nothing, and ``a`` or ``the`` is
found like any other word. Changes become searchable at COMMIT.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import cast, event, func, literal_column, select, type_coerce
from sqlalchemy.dialects.mysql import DATETIME
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.mysql import match as mysql_match

from .._facts import search_words
from ._base import (
    WRITE_INTENT,
    Channel,
    Dialect,
    ErrorKind,
    Wire,
    pipelined,
    queue_pool_options,
    returning_ids,
    values_insert,
)
from ._drivers.aiomysql import (
    CR_CONN_HOST_ERROR,
    CR_SERVER_LOST,
    READ_TIMEOUT_ARG,
    connect_within_timeout,
)
from ._drivers.sqlalchemy import skip_idle_rollback
from .types import UTCDateTime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sqlalchemy import Select, Table
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.engine.interfaces import Dialect as SADialect
    from sqlalchemy.sql import Executable
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.types import TypeEngine

    from ..settings import Settings

_BY_ERRNO: dict[int, ErrorKind] = {
    1062: ErrorKind.CONFLICT,  # ER_DUP_ENTRY
    1586: ErrorKind.CONFLICT,  # ER_DUP_ENTRY_WITH_KEY_NAME
    1022: ErrorKind.CONFLICT,  # ER_DUP_KEY
    1451: ErrorKind.CONFLICT,  # ER_ROW_IS_REFERENCED_2
    1452: ErrorKind.NOT_FOUND,  # ER_NO_REFERENCED_ROW_2
    1216: ErrorKind.NOT_FOUND,  # ER_NO_REFERENCED_ROW
    3819: ErrorKind.INVALID,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
    4025: ErrorKind.INVALID,  # ER_CONSTRAINT_FAILED (MariaDB)
    1048: ErrorKind.INVALID,  # ER_BAD_NULL_ERROR
    1406: ErrorKind.INVALID,  # ER_DATA_TOO_LONG
    1366: ErrorKind.INVALID,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1292: ErrorKind.INVALID,  # ER_TRUNCATED_WRONG_VALUE
    1264: ErrorKind.INVALID,  # ER_WARN_DATA_OUT_OF_RANGE
    1969: ErrorKind.TIMEOUT,  # ER_STATEMENT_TIMEOUT (MariaDB)
    3024: ErrorKind.TIMEOUT,  # ER_QUERY_TIMEOUT (MySQL)
    1213: ErrorKind.RETRYABLE,  # ER_LOCK_DEADLOCK (transaction rolled back)
    1205: ErrorKind.BUSY,  # ER_LOCK_WAIT_TIMEOUT
    2006: ErrorKind.DISCONNECT,  # CR_SERVER_GONE_ERROR
    2013: ErrorKind.DISCONNECT,  # CR_SERVER_LOST
    2055: ErrorKind.DISCONNECT,  # CR_SERVER_LOST_EXTENDED
    1927: ErrorKind.DISCONNECT,  # ER_CONNECTION_KILLED
    1053: ErrorKind.DISCONNECT,  # ER_SERVER_SHUTDOWN
    2002: ErrorKind.UNAVAILABLE,  # CR_CONNECTION_ERROR
    2003: ErrorKind.UNAVAILABLE,  # CR_CONN_HOST_ERROR
    1153: ErrorKind.TOO_LARGE,  # ER_NET_PACKET_TOO_LARGE (then the server hangs up)
    2020: ErrorKind.TOO_LARGE,  # CR_NET_PACKET_TOO_LARGE (the client's own bound)
    1045: ErrorKind.AUTH,  # ER_ACCESS_DENIED_ERROR
    1044: ErrorKind.AUTH,  # ER_DBACCESS_DENIED_ERROR
    1698: ErrorKind.AUTH,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1049: ErrorKind.UNAVAILABLE,  # ER_BAD_DB_ERROR
    1040: ErrorKind.UNAVAILABLE,  # ER_CON_COUNT_ERROR
}


#: "WSREP has not yet prepared node for application use" (Galera), besides
#: the unknown command it names elsewhere
ER_UNKNOWN_COM_ERROR = 1047

#: FULLTEXT index over messages.search_text.
FULLTEXT_INDEX = "ix_messages_search_text_fulltext"
#: binary NO PAD collations: exact, case- and trailing-space-sensitive.
EXACT_COLLATION_MARIADB = "utf8mb4_nopad_bin"
EXACT_COLLATION_MYSQL = "utf8mb4_0900_bin"
#: seconds GET_LOCK waits for a concurrent migration run to finish.
MIGRATION_LOCK_WAIT = 60

_DEFAULT_POOL_SIZE = 10
#: bytes of a multi-row INSERT besides its values (the column list, RETURNING)
_STATEMENT_HEADROOM = 64 * 1024
#: rows per statement of a bulk insert: small enough that a statement leaves in
#: one write to the socket, so the server can run it while the next is built.
#: 250 rather than 500: a 1,000-row batch then built a quarter of its text
#: before the server started instead of half (36 against 40 ms, interleaved A/B
#: on MariaDB 10.11), and a 20,000-row one was the same within the noise
_PIPELINE_ROWS = 250
#: rows of a bulk insert's first statement, the only one whose rows are made
#: (words, bind values) and escaped before the server has work
#: (:func:`_prepared_statements`). A 1,000-row batch's core/ORM on MariaDB
#: 10.11 (interleaved runs whose raw rate itself moved by 15%): 1.90 with 20,
#: 1.99 and 1.99 with 50, 2.05, 1.93 and 1.91 with 100, 1.81 with 150
_FIRST_ROWS = 100
#: a row's parentheses and commas
_ROW_OVERHEAD = 4
#: bytes of a one-row INSERT besides the row (the statement's text is short)
_ONE_ROW_HEADROOM = 4 * 1024
#: the characters MySQL string literals escape with a backslash
_ESCAPED = ("\\", "'", '"', "\0", "\n", "\r", "\x1a")
#: the longest literal a number, a date or NULL is written as
_SCALAR_SIZE = 40
_DEFAULT_MAX_OVERFLOW = 10
_DEFAULT_POOL_TIMEOUT = 30.0
#: well below the server's default wait_timeout of 28,800 s.
_DEFAULT_POOL_RECYCLE = 3600.0


#: what a new session needs to know of its server, in one round trip: the
#: version (MariaDB or MySQL) and whether it is a Galera node (``wsrep_on``
#: with a provider loaded); MySQL has no ``wsrep_*`` variables, which is fine
_SERVER_FACTS_SQL = (
    "SHOW VARIABLES WHERE Variable_name IN ('version', 'wsrep_on', 'wsrep_provider')"
)
#: ``wsrep_sync_wait`` on a Galera node: 1 makes every read (SELECT, and BEGIN)
#: first wait until the node has applied every write set the cluster had
#: committed when the read began, so a read on one node sees a write that
#: another node acknowledged before (read your writes across nodes).
GALERA_SYNC_WAIT = 1


def is_galera(facts: dict[str, str]) -> bool:
    """The server whose ``SHOW VARIABLES`` gave ``facts`` is a Galera node."""
    provider = facts.get("wsrep_provider", "none").strip().lower()
    return facts.get("wsrep_on", "OFF").upper() == "ON" and provider not in ("", "none")


def session_statements(facts: dict[str, str], timeout: float | None) -> list[str]:
    """What a new session runs, given its server's ``facts`` and the statement limit.

    * the statement limit, when set: MariaDB's ``max_statement_time`` in
      seconds, MySQL's ``max_execution_time`` in milliseconds, rounded up to
      the unit, never to 0 (which would mean "no limit");
    * on a Galera node, :data:`GALERA_SYNC_WAIT` (read your writes across
      nodes) and ``wsrep_retry_autocommit = 0``: the server's own re-run of an
      autocommit statement that lost a certification conflict sends the rows
      of ``RETURNING`` of both runs (the aborted one's, then the committed
      one's) in one result, so an upsert answered two rows for a unique key;
      without it the statement fails with 1213 (nothing written) and
      contextstore's own retry runs it again, where that cannot duplicate.
    """
    statements: list[str] = []
    if timeout is not None:
        millis = max(1, round(timeout * 1000))
        if "mariadb" in facts.get("version", "").lower():
            statements.append(f"SET SESSION max_statement_time = {millis / 1000:.3f}")
        else:
            statements.append(f"SET SESSION max_execution_time = {millis}")
    if is_galera(facts):
        statements.append(
            f"SET SESSION wsrep_sync_wait = {GALERA_SYNC_WAIT}, wsrep_retry_autocommit = 0"
        )
    return statements


#: seconds the client waits for a reply beyond the server's own statement limit.
CLIENT_TIMEOUT_MARGIN = 2.0


def _datetime(text: str) -> datetime | date | str:
    """pymysql's ``convert_datetime``, with the forms a server sends for
    ``DATETIME`` and ``DATETIME(6)`` parsed in one C call.

    pymysql parses each value with a regular expression and six ``int()``
    calls (about 2 µs: a page of 50 messages spent 100 µs on its
    timestamps); ``datetime.fromisoformat`` reads the same text in under
    0.1 µs. Every other text (``DATETIME(3)``, zero dates, which pymysql
    returns as the text itself) goes to pymysql's converter, so every value
    is the one pymysql would return: naive, as before, so a service's own
    ``DATETIME`` columns read through ``store.db`` are unchanged.
    """
    if len(text) == 26 or len(text) == 19:
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    from pymysql.converters import convert_datetime

    return convert_datetime(text)  # type: ignore[no-any-return]


def decoders() -> dict[int, Any]:
    """pymysql's decoders with :func:`_datetime` for ``DATETIME`` and
    ``TIMESTAMP``: aiomysql's public connect argument ``conv`` replaces the
    whole table (pymysql is imported here, not by ``import contextstore``).
    A new dict per call: each engine's connections share their own."""
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import decoders as pymysql_decoders

    return {
        **pymysql_decoders,
        FIELD_TYPE.DATETIME: _datetime,
        FIELD_TYPE.TIMESTAMP: _datetime,
    }


class AiomysqlWire(Wire):
    """aiomysql spoken to directly. The session is in autocommit (connect_args),
    so a read is one statement and a write transaction is BEGIN ... COMMIT;
    the read timeout of the shim bounds every reply."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self._connection = connection

    async def fetch(self, sql: str, args: Sequence[Any] | None) -> Sequence[Sequence[Any]]:
        cursor = await self._connection.cursor()
        try:
            await cursor.execute(sql, args)
            rows: Sequence[Sequence[Any]] = await cursor.fetchall()
            return rows
        finally:
            await cursor.close()

    async def execute(self, sql: str, args: Sequence[Any] | None) -> int:
        cursor = await self._connection.cursor()
        try:
            count: int = await cursor.execute(sql, args)
            return count
        finally:
            await cursor.close()

    async def insert(self, sql: str, args: Sequence[Any] | None) -> int:
        cursor = await self._connection.cursor()
        try:
            await cursor.execute(sql, args)
            return int(cursor.lastrowid)
        finally:
            await cursor.close()

    async def execute_many(self, sql: str, args: Sequence[Sequence[Any]]) -> int:
        cursor = await self._connection.cursor()
        try:
            # pymysql rewrites INSERT ... VALUES into multi-row statements
            count: int = await cursor.executemany(sql, args)
            return count if count is not None and count >= 0 else len(args)
        finally:
            await cursor.close()

    async def begin(self) -> None:
        await self._connection.begin()

    async def commit(self) -> None:
        await self._connection.commit()

    async def rollback(self) -> None:
        if self._connection.get_transaction_status():
            await self._connection.rollback()

    async def ping(self) -> None:
        await self._connection.ping(reconnect=False)

    def abort(self) -> None:
        self._connection.close()


def _cut(rows: Sequence[Sequence[Any]], budget: int) -> list[Sequence[Sequence[Any]]]:
    """``rows`` cut into statements of one packet each: where the worst case of
    the escaped values (every character 4 bytes, every byte escaped) would pass
    ``budget`` (the server's max_allowed_packet, less a margin)."""
    if _worst_case(rows) <= budget:
        return [rows]
    batches: list[Sequence[Sequence[Any]]] = []
    start, used = 0, 0
    for index, row in enumerate(rows):
        size = _ROW_OVERHEAD
        for value in row:
            if isinstance(value, str):
                size += (len(value) if value.isascii() else 4 * len(value)) * 2 + 2
            elif isinstance(value, bytes):
                size += 2 * len(value) + 3
            else:
                size += _SCALAR_SIZE
        if size > budget and _exact_size(row) + _ONE_ROW_HEADROOM > budget + _STATEMENT_HEADROOM:
            # one row the server would refuse on its own: no cut can help,
            # and sending it would cost the connection (see ErrorKind.TOO_LARGE)
            from ..errors import REFUSALS, ValidationError

            raise ValidationError(REFUSALS["too_large"])
        if used + size > budget and index > start:
            batches.append(rows[start:index])
            start, used = index, 0
        used += size
    batches.append(rows[start:])
    return batches


def _exact_size(row: Sequence[Any]) -> int:
    """The bytes ``row`` takes in a statement, measured (:func:`_cut` estimates)."""
    size = _ROW_OVERHEAD
    for value in row:
        if isinstance(value, str):
            size += len(value.encode()) + sum(value.count(c) for c in _ESCAPED) + 2
        elif isinstance(value, bytes):
            size += 2 * len(value) + 3
        else:
            size += _SCALAR_SIZE
    return size


def _statements(rows: Sequence[Sequence[Any]], packet: int) -> list[Sequence[Sequence[Any]]]:
    """``rows`` cut into the statements of a bulk insert: :data:`_PIPELINE_ROWS`
    rows at most, and within one ``packet`` (max_allowed_packet)."""
    parts = _prepared_statements(
        lambda start, stop: rows[start:stop], len(rows), packet, first=_PIPELINE_ROWS
    )
    return list(parts)


def _prepared_statements(
    prepare: Callable[[int, int], Sequence[Sequence[Any]]],
    count: int,
    packet: int,
    *,
    first: int | None = None,
) -> Iterator[Sequence[Sequence[Any]]]:
    """The statements of a bulk insert of ``count`` rows, each part's rows made
    by ``prepare(start, stop)`` only when the part is reached: the first
    ``first`` rows (default :data:`_FIRST_ROWS`), then :data:`_PIPELINE_ROWS`
    at a time, each part cut further to fit one ``packet`` (max_allowed_packet)."""
    start = 0
    size = _FIRST_ROWS if first is None else first
    while start < count:
        stop = min(count, start + size)
        yield from _cut(prepare(start, stop), packet - _STATEMENT_HEADROOM)
        start, size = stop, _PIPELINE_ROWS


async def _bulk_facts(channel: Channel) -> tuple[int, int, int]:
    """``max_allowed_packet``, ``innodb_autoinc_lock_mode`` and
    ``auto_increment_increment``, as a bulk insert needs them."""
    ((packet, lock_mode, step),) = await channel.send(
        "SELECT @@max_allowed_packet, @@innodb_autoinc_lock_mode, @@auto_increment_increment"
    )
    return int(packet), int(lock_mode), int(step)


def _consecutive_ids(done: Sequence[tuple[Sequence[Sequence[Any]], int]], step: int) -> list[int]:
    """The ids of the rows of ``done`` (each statement's rows, and the first id
    it generated), where each statement's ids are consecutive by ``step``."""
    ids: list[int] = []
    for batch, first in done:
        ids.extend(range(first, first + step * len(batch), step))
    return ids


def _worst_case(rows: Sequence[Sequence[Any]]) -> int:
    """An upper bound of the escaped size of all ``rows``, column by column: a
    bulk write that fits one packet needs no cut, and no loop over every value
    in Python (:func:`_cut` then measures only the statements this refuses)."""
    total = _ROW_OVERHEAD * len(rows)
    for column in zip(*rows, strict=True):
        texts = [value for value in column if type(value) is str]
        others = len(column) - len(texts)
        if others and any(isinstance(value, str | bytes) for value in column):
            return sys.maxsize  # bytes or str subclasses: measured row by row
        joined = "".join(texts)
        # every character 4 bytes unless all are ASCII, every byte escaped
        total += (len(joined) if joined.isascii() else 4 * len(joined)) * 2
        total += 2 * len(texts) + _SCALAR_SIZE * others
    return total


class MySQLDialect(Dialect):
    name = "mysql"
    # LAST_INSERT_ID() comes with the INSERT's OK packet; RETURNING makes the
    # server send a result set whose column definitions aiomysql parses in
    # Python: about 6 % of a one-row INSERT's time in a bare aiomysql loop
    id_from_lastrowid = True
    driver = "aiomysql"
    schemes = ("mysql", "mariadb")

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        return {
            **queue_pool_options(
                settings,
                size=_DEFAULT_POOL_SIZE,
                overflow=_DEFAULT_MAX_OVERFLOW,
                timeout=_DEFAULT_POOL_TIMEOUT,
                recycle=_DEFAULT_POOL_RECYCLE,
                pre_ping=False,
            ),
            "connect_args": {
                "charset": "utf8mb4",
                "connect_timeout": settings.connect_timeout,
                "init_command": "SET time_zone = '+00:00'",
                "conv": decoders(),
                # reads need no transaction; writes send BEGIN (install_hooks)
                "autocommit": True,
                # SQLAlchemy's aiomysql adapter calls this instead of aiomysql.connect
                "async_creator_fn": connect_within_timeout,
                READ_TIMEOUT_ARG: (
                    None
                    if settings.statement_timeout is None
                    else settings.statement_timeout + CLIENT_TIMEOUT_MARGIN
                ),
            },
        }

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:
        @event.listens_for(sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # the session is in autocommit: a write opens its transaction
            # explicitly; a read runs alone and leaves nothing to roll back
            if conn.get_execution_options().get(WRITE_INTENT, True):
                conn.exec_driver_sql("BEGIN")

        skip_idle_rollback(sync_engine, lambda driver: bool(driver.get_transaction_status()))

        timeout = settings.statement_timeout

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(_SERVER_FACTS_SQL)
                facts = {str(name).lower(): str(value) for name, value in cursor.fetchall()}
                for statement in session_statements(facts, timeout):
                    cursor.execute(statement)
            finally:
                cursor.close()

    def wire(self, driver_connection: Any) -> Wire:
        return AiomysqlWire(driver_connection)

    async def insert_many(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[int]:
        return await self.insert_prepared(
            channel, table, names, len(rows), lambda start, stop: rows[start:stop]
        )

    async def insert_prepared(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        count: int,
        prepare: Callable[[int, int], Sequence[Sequence[Any]]],
    ) -> list[int]:
        # InnoDB gives a multi-row INSERT consecutive ids (step
        # auto_increment_increment) unless innodb_autoinc_lock_mode is 2
        # ("interleaved", a Galera requirement): then the first id, which the
        # server sends with its OK, stands for all of them, and no row comes
        # back to be read. In mode 2 the rows come back (RETURNING id).
        packet, lock_mode, step = await _bulk_facts(channel)
        if lock_mode == 2:
            statements = _statements(prepare(0, count), packet)
            return await returning_ids(channel, table, names, statements)
        done = await self._pipelined(
            channel, table, names, _prepared_statements(prepare, count, packet)
        )
        ids = _consecutive_ids(done, step)
        # proof rather than trust: the batch's first and last rows (the ones
        # with a token) are where the ids say
        token_at = list(names).index("client_token")
        quote = channel.dialect.identifier_preparer.quote
        found = dict(
            await channel.send(
                f"SELECT {quote('id')}, {quote('client_token')} FROM {quote(table.name)} "
                f"WHERE {quote('id')} IN (%s, %s)",
                [ids[0], ids[-1]],
            )
        )
        first_row, last_row = done[0][0][0], done[-1][0][-1]
        if found.get(ids[0]) != first_row[token_at] or found.get(ids[-1]) != last_row[token_at]:
            raise RuntimeError("the inserted rows did not get consecutive ids")
        return ids

    async def insert_id_ranges(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[int] | None:
        # a multi-row INSERT is a "simple insert": in lock modes 0 and 1 InnoDB
        # gives its rows consecutive ids (step auto_increment_increment) under
        # the table's AUTO-INC lock; in mode 2 (Galera) others may interleave
        packet, lock_mode, step = await _bulk_facts(channel)
        if lock_mode == 2:
            return None
        statements = iter(_statements(rows, packet))
        return _consecutive_ids(await self._pipelined(channel, table, names, statements), step)

    async def insert_batches(
        self, channel: Channel, rows: Sequence[Sequence[Any]], width: int
    ) -> Sequence[Sequence[Sequence[Any]]]:
        # a statement must fit the server's max_allowed_packet (the server
        # hangs up on a larger one): cut by size as well as by count, and
        # refuse a row no statement can carry before anything is sent
        ((packet,),) = await channel.send("SELECT @@max_allowed_packet")
        return _statements(rows, int(packet))

    async def _pipelined(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        statements: Iterator[Sequence[Sequence[Any]]],
    ) -> list[tuple[Sequence[Sequence[Any]], int]]:
        """The rows of ``statements`` (each a multi-row INSERT's) sent in order,
        each statement's text built (values escaped by the driver's own
        ``literal``, as its ``execute`` does) while the server runs the one
        before; each statement with the first id it generated.

        Escaping is most of a bulk write's client time on this driver, and
        the iterator may make the rows as it is read
        (:func:`_prepared_statements`): built one statement ahead, both run
        beside the server's work instead of before it (:func:`pipelined`).
        """
        sa_dialect = channel.dialect
        if channel.observed:
            # watched statements carry their values as parameters: the events
            # (echo, OpenTelemetry) see the text with its placeholders only
            done: list[tuple[Sequence[Sequence[Any]], int]] = []
            for batch in statements:
                sql = values_insert(sa_dialect, table, names, len(batch), returning=False)
                flat = [value for row in batch for value in row]
                done.append((batch, await channel.send_insert(sql, flat)))
            return done
        literal = (await channel.driver_connection()).literal

        def text(batch: Sequence[Sequence[Any]]) -> str:
            sql = values_insert(sa_dialect, table, names, len(batch), returning=False)
            return sql % tuple([literal(value) for row in batch for value in row])

        async def send(
            part: tuple[Sequence[Sequence[Any]], str],
        ) -> tuple[Sequence[Sequence[Any]], int]:
            # the rows kept with the first id (the ids follow from them), the
            # text dropped once sent
            batch, sql = part
            return batch, await channel.send_insert(sql, None)

        return await pipelined(((batch, text(batch)) for batch in statements), send)

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        args = getattr(orig, "args", ())
        if (
            args
            and args[0] in (CR_CONN_HOST_ERROR, CR_SERVER_LOST)
            and isinstance(orig.__cause__, TimeoutError)
        ):
            # aiomysql's TCP connect timeout, and the handshake and read bounds
            # added here (connect_within_timeout, BoundedConnection): no answer
            return ErrorKind.HUNG
        if args and args[0] == ER_UNKNOWN_COM_ERROR and "WSREP" in str(orig):
            # a Galera node outside the primary component (cut off, or still
            # joining) refuses every statement before running it
            return ErrorKind.UNAVAILABLE
        if args and isinstance(args[0], int):
            kind = _BY_ERRNO.get(args[0])
            if kind is not None:
                return kind
        text = str(orig)
        if "Lost connection" in text or "Not connected" in text or "server has gone away" in text:
            return ErrorKind.DISCONNECT
        return None

    def server_version_sql(self) -> str:
        return "SELECT VERSION()"

    def datetime_type(self) -> TypeEngine[datetime]:
        from sqlalchemy.dialects.mysql import DATETIME

        return DATETIME(fsp=6)

    def exact_string_type(self, length: int, dialect: SADialect) -> TypeEngine[str]:
        from sqlalchemy.dialects.mysql import VARCHAR

        # is_mariadb is known once the dialect has connected, which DDL and
        # reflection always have; MariaDB is the default assumption
        collation = (
            EXACT_COLLATION_MARIADB
            if getattr(dialect, "is_mariadb", True)
            else EXACT_COLLATION_MYSQL
        )
        return VARCHAR(length, charset="utf8mb4", collation=collation)

    def is_fulltext_object(self, name: str) -> bool:
        return name == FULLTEXT_INDEX

    def migration_lock_sql(self) -> tuple[str | None, str | None]:
        # GET_LOCK names are server-wide: qualify with the database
        name = "CONCAT('contextstore.migrations.', DATABASE())"
        return (
            f"SELECT GET_LOCK({name}, {MIGRATION_LOCK_WAIT})",
            f"SELECT RELEASE_LOCK({name})",
        )

    def identity_reset_sql(self, table: str, column: str, next_id: int) -> str | None:
        # InnoDB already moved the counter past the largest id; this states it
        return f"ALTER TABLE {table} AUTO_INCREMENT = {next_id}"

    def upsert(
        self,
        table: Table,
        values: dict[str, Any],
        *,
        conflict: Sequence[str],
        update: Sequence[str],
        returning: Sequence[ColumnElement[Any]] = (),
    ) -> Executable:
        # ON DUPLICATE KEY fires on any unique key; callers pass tables whose only
        # unique keys besides the surrogate id are ``conflict``.
        stmt = mysql_insert(table).values(values)
        if not update:
            # a no-op assignment: INSERT IGNORE would also swallow FK errors
            first = conflict[0]
            done = stmt.on_duplicate_key_update({first: table.c[first]})
        else:
            done = stmt.on_duplicate_key_update({name: stmt.inserted[name] for name in update})
        # MariaDB's RETURNING on the duplicate-key path returns the row as stored
        # after the update (original values of the columns not updated)
        return done.returning(*returning) if returning else done

    def prefer_index(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        # Without engine-independent statistics MariaDB's optimizer prefers
        # ``ref`` on the index's first column over the range on its first two,
        # reading every row of the session before a keyset cursor
        return stmt.with_hint(table, f"FORCE INDEX ({index})", dialect_name="mysql")

    def search_terms(self, query: str) -> str | None:
        terms = search_words(query)
        # natural-language mode has no operators; the terms are plain anyway
        return " ".join(terms) if terms else None

    def search_statement(
        self,
        table: Table,
        columns: Sequence[ColumnElement[Any]],
        terms: ColumnElement[Any],
        filters: Sequence[ColumnElement[bool]],
    ) -> Select[Any]:
        relevance = mysql_match(table.c.search_text, against=terms).in_natural_language_mode()
        score = relevance.label("score")
        return (
            select(*columns, score)
            .where(relevance > 0, *filters)
            .order_by(score.desc(), table.c.id.desc())
        )

    def time_bucket(self, column: ColumnElement[Any], bucket: str) -> ColumnElement[Any]:
        layout = _BUCKET_LAYOUT[bucket]
        return type_coerce(
            cast(func.date_format(column, literal_column(f"'{layout}'")), DATETIME(fsp=6)),
            UTCDateTime(),
        )


_BUCKET_LAYOUT = {
    "minute": "%Y-%m-%d %H:%i:00",
    "hour": "%Y-%m-%d %H:00:00",
    "day": "%Y-%m-%d 00:00:00",
}
