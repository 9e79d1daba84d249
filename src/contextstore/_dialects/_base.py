"""What every dialect recipe provides.

Code outside ``_dialects`` asks a :class:`Dialect` for options, hooks,
capabilities and error classes; it never compares dialect names itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from sqlalchemy import Select, Table
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.engine.interfaces import Dialect as SADialect
    from sqlalchemy.sql import Executable
    from sqlalchemy.sql.elements import ColumnElement
    from sqlalchemy.types import TypeEngine

    from ..settings import Settings


#: execution option ConnectionManager sets on every connection it checks out:
#: ``True`` when the work may write. Recipes use it to choose how to BEGIN.
WRITE_INTENT = "contextstore_write"
#: execution option for a read that still needs a transaction (a server-side
#: cursor on PostgreSQL); plain reads run without BEGIN where the driver allows.
SNAPSHOT = "contextstore_snapshot"

_Part = TypeVar("_Part")
_Answer = TypeVar("_Answer")


class ErrorKind(enum.Enum):
    """How a driver error should be treated, independent of dialect."""

    CONFLICT = "conflict"  # unique or primary key taken
    NOT_FOUND = "not_found"  # foreign key points nowhere
    INVALID = "invalid"  # CHECK, NOT NULL, value too long: bad input
    TIMEOUT = "timeout"  # statement_timeout passed
    RETRYABLE = "retryable"  # server rolled back the transaction (deadlock, serialization)
    BUSY = "busy"  # lock not granted; nothing was written
    DISCONNECT = "disconnect"  # connection lost; outcome of in-flight work unknown
    #: no answer within the client-side bound (connect timeout, or the reply to
    #: a statement not within ``statement_timeout`` + margin): the server is
    #: hung or unreachable, and may still act on what it received. Not retried:
    #: another attempt would only wait as long again.
    HUNG = "hung"
    UNAVAILABLE = "unavailable"  # cannot connect at all (refused, unknown db)
    #: a request larger than the server takes (MySQL's max_allowed_packet,
    #: SQLite's TOOBIG, PostgreSQL's program limits): bad input, not an outage,
    #: though MySQL closes the connection after refusing it
    TOO_LARGE = "too_large"
    #: the server refused the login (credentials, or no access to the
    #: database): a configuration to fix, not an outage to wait out
    AUTH = "auth"
    #: the server accepts no writes (a hot standby; a primary demoted or lost
    #: in a failover): the write was refused, nothing of it committed, and the
    #: connection points at the wrong server, so it is discarded and the unit
    #: retried on a new connection, which finds the primary
    READ_ONLY = "read_only"


class Channel(Protocol):
    """What a bulk insert needs of the execution core's executor.

    ``observed``: the channel's statements are watched (SQLAlchemy's cursor
    events: echo, OpenTelemetry); a bulk insert then sends every row as a
    bound parameter of a statement it runs through the channel, never by a
    side road the events miss (COPY) nor with values written into the text.
    """

    @property
    def dialect(self) -> SADialect: ...

    @property
    def observed(self) -> bool: ...

    async def send(self, sql: str, args: Sequence[Any] | None = None) -> Sequence[Any]: ...

    async def send_many(self, sql: str, args: Sequence[Sequence[Any]]) -> None: ...

    async def send_insert(self, sql: str, args: Sequence[Any] | None) -> int: ...

    async def driver_connection(self) -> Any: ...

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None: ...


class Wire(ABC):
    """One pooled driver connection, spoken to directly: the execution core's hot path.

    SQL comes compiled by SQLAlchemy for the engine's dialect (its paramstyle,
    its casts); ``args`` are positional, already through SQLAlchemy's bind
    processors, or None for a statement without parameters. Rows come back as
    the driver gives them (tuples, or asyncpg's ``Record``). A wire never
    retries and never translates errors: the driver's own exceptions leave it.

    Args:
        connection: the driver's connection (kept as :attr:`driver_connection`).
    """

    def __init__(self, connection: Any) -> None:
        self.driver_connection = connection

    @abstractmethod
    async def fetch(self, sql: str, args: Sequence[Any] | None) -> Sequence[Sequence[Any]]:
        """Run ``sql`` and return every row."""

    @abstractmethod
    async def execute(self, sql: str, args: Sequence[Any] | None) -> int:
        """Run ``sql`` and return the number of rows it affected."""

    @abstractmethod
    async def execute_many(self, sql: str, args: Sequence[Sequence[Any]]) -> int:
        """Run ``sql`` once per parameter set (batched where the driver can)."""

    async def insert(self, sql: str, args: Sequence[Any] | None) -> int:
        """Run an INSERT; the first id it generated (the DB-API ``lastrowid``).
        ``args`` None: ``sql`` holds its values already, and is sent as it is.
        Only the dialects that use it implement it."""
        raise NotImplementedError

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        """Bulk-load ``records`` (values of ``columns``, in order) into ``table``
        (PostgreSQL's COPY). Only the dialects that use it implement it."""
        raise NotImplementedError

    @abstractmethod
    async def begin(self) -> None:
        """Open a write transaction (``BEGIN IMMEDIATE`` on SQLite)."""

    @abstractmethod
    async def commit(self) -> None:
        """Commit the open transaction."""

    @abstractmethod
    async def rollback(self) -> None:
        """Roll back the open transaction, if there is one."""

    async def ping(self) -> None:
        """A round trip that proves the connection alive (``pool_pre_ping``)."""
        await self.fetch("SELECT 1", None)

    async def settle(self) -> None:  # noqa: B027
        """Send now what the wire deferred (SQLite's ``BEGIN IMMEDIATE``, held back
        until the transaction's first statement): a statement is about to go
        to the same connection around the wire, on a SQLAlchemy Connection."""

    def abort(self) -> None:  # noqa: B027
        """Cut the connection at once, without a goodbye to a server that may
        not answer (the connection is discarded next)."""


class Dialect(ABC):
    """The per-dialect recipe: pool options, connect hooks, capabilities, errors.

    Attributes:
        name: the public dialect name (``store.dialect``).
        driver: the async DBAPI driver every URL of this dialect is normalised to.
        schemes: SQLAlchemy backend names that belong to this recipe.
    """

    name: ClassVar[str]
    driver: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    #: ``INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE ... RETURNING`` exists and
    #: returns the row as stored after the update (see :meth:`upsert_returns_row`).
    upsert_returning: ClassVar[bool] = True
    #: a one-row INSERT learns its id from the server's reply to it (the
    #: DB-API ``lastrowid``) as surely as from ``RETURNING``, and more cheaply.
    id_from_lastrowid: ClassVar[bool] = False
    #: a network server (as opposed to an embedded file).
    is_server: ClassVar[bool] = True
    #: ALTER TABLE is limited: migrations rebuild tables (Alembic batch mode).
    alter_by_rebuild: ClassVar[bool] = False

    def normalise_url(self, url: URL) -> URL:
        """Point ``url`` at the async driver; reject any other driver."""
        from ..errors import ConfigurationError

        backend = url.get_backend_name()
        driver = url.get_driver_name() if "+" in url.drivername else None
        if driver is None:
            return url.set(drivername=f"{backend}+{self.driver}")
        if driver != self.driver:
            raise ConfigurationError(
                f"database_url: driver {driver!r} is not supported for {backend}; "
                f"contextstore is async and uses {backend}+{self.driver}"
            )
        return url

    def check_settings(self, url: URL, settings: Settings) -> None:
        """Refuse, with a ``ConfigurationError`` naming the setting or the URL's
        query option, what this dialect cannot honour (called once, while the
        settings are validated, with the normalised URL). The default: a
        ``pooler_mode`` other than ``"none"`` (only PostgreSQL has poolers)."""
        from ..errors import ConfigurationError

        if settings.pooler_mode != "none":
            raise ConfigurationError(
                f"pooler_mode {settings.pooler_mode!r} applies to PostgreSQL only, not "
                f"{self.name}; leave pooler_mode at 'none'"
            )

    def transactions_only(self, settings: Settings) -> bool:
        """True when every statement must run inside a transaction that the
        execution core opens with :meth:`Wire.begin` (reads included): a
        per-transaction setting, such as PostgreSQL's ``SET LOCAL
        statement_timeout`` behind a transaction-mode pooler, would otherwise
        not cover it. Default False: reads run in autocommit."""
        return False

    def transaction_prelude(self, settings: Settings) -> str | None:
        """A statement to run first in every transaction begun on a SQLAlchemy
        Connection (the wire's :meth:`Wire.begin` sends its own), or None."""
        return None

    def wire_factory(self, settings: Settings) -> Callable[[Any], Wire]:
        """What makes the :class:`Wire` of each pooled connection under
        ``settings`` (default: :meth:`wire`)."""
        return self.wire

    @abstractmethod
    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """Return ``create_async_engine`` keyword arguments (pure, no I/O)."""

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:  # noqa: B027
        """Attach connect/begin event listeners the recipe needs."""

    @abstractmethod
    def wire(self, driver_connection: Any) -> Wire:
        """The :class:`Wire` over one driver connection of this dialect's pool."""

    @abstractmethod
    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        """Classify a DBAPI exception by SQLSTATE, errno or result code."""

    @abstractmethod
    def server_version_sql(self) -> str:
        """A statement returning the server version as one value."""

    # -- read replicas (see contextstore._replicas) -----------------

    #: a replica of this dialect shows a task its own writes by itself (Galera
    #: with ``wsrep_sync_wait`` set on its connections, say): no position needs
    #: to be compared before a read there
    replica_reads_own_writes: ClassVar[bool] = False

    def primary_position_sql(self) -> str | None:
        """A statement giving the primary's log position now, as one text value
        (every write committed before it is at or before that position); None
        when the dialect has no such position: a task that wrote then reads on
        the primary."""
        return None

    def replica_position_sql(self) -> str | None:
        """On a replica: one row of its replayed log position (text, comparable
        through :meth:`log_position`) and its replay lag in ms (a number, or
        NULL when unknown). None when the dialect has no such position."""
        return None

    def log_position(self, text: str | None) -> int | None:
        """A position read by the two statements above, as a number that grows
        with the log (None: unknown)."""
        return None

    # -- schema (used by the portable types in .types) -----------

    #: datetimes are bound timezone-aware because the column stores an instant;
    #: otherwise they are bound as naive UTC wall time.
    datetime_keeps_timezone: ClassVar[bool] = False
    #: the driver returns that column's values as aware UTC datetimes, so reads
    #: need no conversion (a test notices if the driver changes)
    datetime_results_utc: ClassVar[bool] = False
    #: the storage type binds naive UTC as text in ``datetime.isoformat``'s
    #: layout with a space and six fraction digits (SQLAlchemy's SQLite
    #: DATETIME default): the execution core calls ``isoformat`` itself, a
    #: fifth of the cost of SQLAlchemy's formatting (a test compares the text)
    datetime_binds_iso_text: ClassVar[bool] = False
    #: the storage type reads that same text back: the execution core parses
    #: text of exactly that layout with ``datetime.fromisoformat`` (a fifth of
    #: the cost of SQLAlchemy's regular expression) and leaves any other text
    #: to SQLAlchemy's processor (a test compares the values)
    datetime_results_iso_text: ClassVar[bool] = False

    def datetime_type(self) -> TypeEngine[datetime]:
        """The column type behind ``UTCDateTime`` (microseconds kept)."""
        from sqlalchemy import DateTime

        return DateTime()

    def exact_string_type(self, length: int, dialect: SADialect) -> TypeEngine[str]:
        """A VARCHAR whose comparisons are exact: case- and trailing-space-sensitive."""
        from sqlalchemy import String

        return String(length)

    def is_fulltext_object(self, name: str) -> bool:
        """True for a table, column or index name of the full-text objects the migrations create.

        The schema comparison (``contextstore db check``) skips these: they are
        not in ``schema.metadata`` on purpose.
        """
        return False

    def migration_lock_sql(self) -> tuple[str | None, str | None]:
        """SQL taking and releasing a per-database lock around a migration run.

        Returns:
            ``(acquire, release)``; either may be None (no statement needed).
            ``acquire`` returns one value, falsy when the lock was not granted.
        """
        return None, None

    @abstractmethod
    def upsert(
        self,
        table: Table,
        values: dict[str, Any],
        *,
        conflict: Sequence[str],
        update: Sequence[str],
        returning: Sequence[ColumnElement[Any]] = (),
    ) -> Executable:
        """INSERT ``values``; on a clash of the unique key ``conflict`` update ``update``.

        With ``update`` empty the existing row is left as it is (insert if absent).
        ``returning`` columns are returned (the stored row) where
        :meth:`upsert_returns_row` holds; callers pass none otherwise.
        """

    def upsert_returns_row(self, sa_dialect: SADialect) -> bool:
        """True when :meth:`upsert` with ``returning`` is one statement whose result
        is the stored row (on the update path too: columns not in ``update`` keep
        their stored values).

        Decided per server: ``sa_dialect`` is the engine's SQLAlchemy dialect,
        which knows the server's version once it has connected.
        """
        return self.upsert_returning and bool(sa_dialect.insert_returning)

    def insert_returns_row(self, sa_dialect: SADialect) -> bool:
        """True when ``INSERT ... RETURNING`` exists on this server (SQLite 3.35,
        PostgreSQL, MariaDB 10.5 and later; not MySQL): a write returns the
        rows as stored, generated keys included, in the same round trip.

        Decided per server, like :meth:`upsert_returns_row`.
        """
        return bool(sa_dialect.insert_returning)

    async def insert_returning(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        returning: Sequence[str],
    ) -> list[Sequence[Sequence[Any]]]:
        """Insert ``rows`` (values of the columns ``names``, through the bind
        processors) as multi-row ``INSERT ... RETURNING`` statements of at most
        :attr:`max_binds` values each, inside the open transaction; each
        statement's returned rows (the columns ``returning``, as the driver
        gives them), one list per statement, in statement order.

        Only where :meth:`insert_returns_row` holds. A statement draws its
        generated ids in the order of its VALUES (see :meth:`insert_many`),
        whatever order RETURNING gives its rows in.
        """
        quote = channel.dialect.identifier_preparer.quote
        tail = " RETURNING " + ", ".join(quote(name) for name in returning)
        done: list[Sequence[Sequence[Any]]] = []
        for batch in await self.insert_batches(channel, rows, max(1, len(names))):
            sql = values_insert(channel.dialect, table, names, len(batch), returning=False)
            flat = [value for row in batch for value in row]
            returned = await channel.send(sql + tail, flat)
            if len(returned) != len(batch):
                raise RuntimeError("the database returned fewer rows than were inserted")
            done.append(returned)
        return done

    async def insert_id_ranges(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[int] | None:
        """Where :meth:`insert_returns_row` does not hold: insert ``rows`` as
        multi-row statements inside the open transaction and return their
        generated ids in input order, known from each statement's first id
        (``lastrowid``) when the server draws a statement's ids as one
        consecutive range. None when it cannot say so (nothing was sent): the
        caller inserts the rows one by one."""
        return None

    def identity_reset_sql(self, table: str, column: str, next_id: int) -> str | None:
        """SQL making ``table``'s generated ids continue at ``next_id`` after rows
        were inserted with explicit ids (data tools); None when the database
        follows explicit ids by itself."""
        return None

    def prefer_index(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        """``stmt`` reading ``table`` through ``index``, where the planner would not
        pick that index's range by itself (default: ``stmt`` unchanged)."""
        return stmt

    #: bind parameters one statement may carry (SQLite's and PostgreSQL's limit)
    max_binds: ClassVar[int] = 32_766

    async def insert_many(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> list[int]:
        """Insert ``rows`` into ``table`` inside the open transaction, by the
        driver's fastest bulk path; their new ids, in input order.

        ``rows`` hold the values of the columns ``names`` in that order, through the
        bind processors; ``names`` includes ``client_token``, set (and unique) on the
        first and last rows only. The default: multi-row ``INSERT ... RETURNING id``
        statements. A statement inserts its rows in the order of its VALUES and draws
        each one's id after the last one's (a sequence, InnoDB's AUTO_INCREMENT in every
        lock mode): its ids sorted are its rows' ids in input order, whatever order
        RETURNING gives them in, and whatever other writers draw in between."""
        batches = await self.insert_batches(channel, rows, len(names))
        return await returning_ids(channel, table, names, batches)

    async def insert_prepared(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        count: int,
        prepare: Callable[[int, int], Sequence[Sequence[Any]]],
    ) -> list[int]:
        """:meth:`insert_many` of ``count`` rows whose values ``prepare(start,
        stop)`` makes, for the rows from ``start`` to ``stop``.

        A dialect that builds each statement while the server runs the one
        before may ask for the rows a statement at a time, in order, so that
        making them overlaps the server's work; ``prepare`` may then raise
        after earlier statements were sent, in the same open transaction (its
        caller rolls that back). The default makes every row first.
        """
        return await self.insert_many(channel, table, names, prepare(0, count))

    async def reserve_ids(self, channel: Channel, table: Table, count: int) -> list[int] | None:
        """Ids for ``count`` new rows of ``table``, drawn before the rows are sent,
        when the dialect's fastest bulk path takes them with the rows (see
        :meth:`copy_prepared`); None (the default): :meth:`insert_many` is the
        path, and returns them.

        A caller that reserves ids sends each row with its id first, in
        input order, and may build what it returns while the rows stream.
        """
        return None

    async def copy_prepared(
        self,
        channel: Channel,
        table: Table,
        names: Sequence[str],
        count: int,
        prepare: Callable[[int, int], Sequence[Sequence[Any]]],
    ) -> None:
        """Bulk-load ``count`` rows (values of ``names``, ``id`` first, as
        :meth:`reserve_ids` gave them) inside the open transaction, the rows
        from ``start`` to ``stop`` made by ``prepare(start, stop)``, in order,
        as the load reaches them (so making them may overlap the server's
        work; ``prepare`` may then raise after earlier rows were sent, and the
        caller rolls them back). Only the dialects whose :meth:`reserve_ids`
        reserves implement it."""
        raise NotImplementedError(f"{self.name} reserves no ids")

    async def insert_batches(
        self, channel: Channel, rows: Sequence[Sequence[Any]], width: int
    ) -> Sequence[Sequence[Sequence[Any]]]:
        """``rows`` cut into statements of at most :attr:`max_binds` values."""
        size = max(1, self.max_binds // width)
        return [rows[start : start + size] for start in range(0, len(rows), size)]

    @abstractmethod
    def search_terms(self, query: str) -> str | None:
        """The value of a search statement's ``terms`` parameter for a user's
        query text; None when the query has no searchable words."""

    @abstractmethod
    def search_statement(
        self,
        table: Table,
        columns: Sequence[ColumnElement[Any]],
        terms: ColumnElement[Any],
        filters: Sequence[ColumnElement[bool]],
    ) -> Select[Any]:
        """Full-text search over ``table.content`` for ``terms`` (a bind parameter
        given :meth:`search_terms`' value): ``columns`` plus a float score,
        higher is better, best first; the caller adds the LIMIT."""

    @abstractmethod
    def time_bucket(self, column: ColumnElement[Any], bucket: str) -> ColumnElement[Any]:
        """``column`` truncated to the start of its minute/hour/day, as an aware UTC datetime."""


def or_default(value: Any, default: Any) -> Any:
    """``value`` unless it is None (an unset setting), else the dialect's default."""
    return default if value is None else value


def queue_pool_options(
    settings: Settings,
    *,
    size: int,
    overflow: int,
    timeout: float,
    recycle: float,
    pre_ping: bool,
) -> dict[str, Any]:
    """Queue-pool kwargs: each setting if given, else the dialect's default."""
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    return {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": or_default(settings.pool_size, size),
        "max_overflow": or_default(settings.max_overflow, overflow),
        "pool_timeout": or_default(settings.pool_timeout, timeout),
        "pool_recycle": or_default(settings.pool_recycle, recycle),
        "pool_pre_ping": or_default(settings.pool_pre_ping, pre_ping),
    }


def on_conflict_upsert(
    insert: Callable[[Table], Any],
    table: Table,
    values: dict[str, Any],
    conflict: Sequence[str],
    update: Sequence[str],
    returning: Sequence[ColumnElement[Any]],
) -> Executable:
    """:meth:`Dialect.upsert` for the dialects whose ``insert`` construct has
    ``ON CONFLICT`` (``sqlalchemy.dialects.sqlite.insert``, ``...postgresql.insert``)."""
    stmt = insert(table).values(values)
    if not update:
        done = stmt.on_conflict_do_nothing(index_elements=list(conflict))
    else:
        done = stmt.on_conflict_do_update(
            index_elements=list(conflict), set_={name: stmt.excluded[name] for name in update}
        )
    # RETURNING of an upsert returns the row as stored (inserted or updated)
    return done.returning(*returning) if returning else done  # type: ignore[no-any-return]


async def returning_ids(
    channel: Channel,
    table: Table,
    names: Sequence[str],
    batches: Sequence[Sequence[Sequence[Any]]],
) -> list[int]:
    """Each batch as one ``INSERT ... RETURNING id``; the ids in input order (see
    :meth:`Dialect.insert_many`)."""
    ids: list[int] = []
    for batch in batches:
        sql = values_insert(channel.dialect, table, names, len(batch))
        flat = [value for row in batch for value in row]
        drawn = sorted(row[0] for row in await channel.send(sql, flat))
        if len(drawn) != len(batch):
            raise RuntimeError("the database returned no id for some inserted rows")
        ids.extend(drawn)
    return ids


def values_insert(
    sa_dialect: SADialect,
    table: Table,
    names: Sequence[str],
    count: int,
    *,
    returning: bool = True,
) -> str:
    """``INSERT INTO table (names) VALUES (...), ... RETURNING id`` for ``count``
    rows, in ``sa_dialect``'s paramstyle and quoting (without ``returning``, no
    RETURNING)."""
    quote = sa_dialect.identifier_preparer.quote
    width = len(names)
    style = sa_dialect.paramstyle
    if style == "numeric_dollar":
        groups = (
            "(" + ", ".join(f"${row * width + column + 1}" for column in range(width)) + ")"
            for row in range(count)
        )
        values = ", ".join(groups)
    else:
        marker = {"qmark": "?", "format": "%s"}[style]
        values = ", ".join(["(" + ", ".join([marker] * width) + ")"] * count)
    columns = ", ".join(quote(name) for name in names)
    sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES {values}"
    return f"{sql} RETURNING {quote('id')}" if returning else sql


async def pipelined(
    parts: Iterator[_Part], send: Callable[[_Part], Awaitable[_Answer]]
) -> list[_Answer]:
    """Each of ``parts`` sent in order; the next part made (read from the
    iterator, which may build it only then) while the server runs the one
    before.

    Only the making overlaps, never two statements: a part is sent after the
    one before was answered, and no part is kept once it is sent. ``send``
    should have written its statement by the end of its first step (one turn
    of the loop), as a driver with nothing else to wait for does; a send that
    first waits on the network (asyncpg describing the table of a COPY when
    its statement cache is off) overlaps less, down to none.

    Args:
        parts: the parts, in order; each is made when it is read.
        send: sends one part and returns the server's answer for it.

    Returns:
        Each part's answer, in order.

    Raises:
        Exception: making a part failed (the part in flight is answered first,
            so the connection stays in step for whoever uses it next), or a
            send failed. If the caller is cancelled, the send in flight is
            cancelled and settled before the cancellation goes on.
    """
    answers: list[_Answer] = []
    try:
        current = next(parts)
    except StopIteration:
        return answers
    while True:
        sending = asyncio.ensure_future(send(current))
        try:
            # one turn of the loop: the statement is written to the socket
            # and its task waits for the reply
            await asyncio.sleep(0)
            try:
                current = next(parts)
                more = True
            except StopIteration:
                more = False
            except Exception:
                # the error of making the part is the one reported; a send
                # that failed as well left the connection to the caller's
                # rollback, which discards it if it is broken
                with contextlib.suppress(Exception):
                    await sending
                raise
            answers.append(await sending)
        except BaseException:
            await _settled(sending)
            raise
        if not more:
            return answers


async def _settled(task: asyncio.Future[Any]) -> None:
    """``task`` cancelled and finished, whatever else cancels the caller
    meanwhile: the connection it runs on is given up only after it."""
    # cancel() also marks an error the task already ended with as seen: it is
    # not reported as never retrieved
    task.cancel()
    while not task.done():
        with contextlib.suppress(BaseException):
            await asyncio.wait((task,))
