"""The execution core: statements compiled once per dialect, run on held driver connections.

Every repository call goes through here. Its pieces:

* :class:`Query`: a Core statement and, per connected SQLAlchemy dialect, its
  :class:`Form`, compiled once with public APIs: the SQL string in the
  driver's paramstyle, the positional order of the bind parameters (with the
  statement's own constants pre-bound), and SQLAlchemy's own bind and result
  processors from each type's ``dialect_impl``. Nothing is compiled, keyed or
  looked up in a cache per call.
* :class:`Executor`: what a repository's work sees. The driver executor runs a
  form on a :class:`~contextstore._dialects.Wire` (the driver connection of a
  pooled connection); the SQLAlchemy executor runs the same form with
  ``exec_driver_sql`` on an ``AsyncConnection``, so statement events, echo and
  instrumentation see exactly what the driver executor would send.
* :class:`Leases`: pooled connections held out of SQLAlchemy's pool behind a
  semaphore. A call takes one in a few microseconds instead of a pool
  checkout, a Connection, autobegin and a reset per call. The leases and the
  pool's own checkouts share one limit, ``pool_size + max_overflow``: work
  that needs a SQLAlchemy Connection takes a slot first, and an idle lease
  goes back to the pool when the pool has none free. ``pool_recycle`` and
  ``pool_pre_ping`` hold for leased connections too; a connection that failed
  is discarded, and a lost one discards the idle ones with it (the server may
  have restarted), as SQLAlchemy invalidates its pool. With
  ``slow_statement_ms`` each leased connection's wire is timed
  (:class:`~contextstore._slow.SlowWire`); without it, no check at all.

An executor that is :attr:`Executor.observed` (the SQLAlchemy one) carries
every statement through SQLAlchemy's execution: the bulk paths then send no
COPY and no values written into a statement's text (see
``contextstore._dialects.Channel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import operator
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy import TextClause
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from ._dialects import ErrorKind
from ._dialects.types import bind_processor, result_processor
from ._slots import Slots
from ._slow import SlowWire, others_watch
from ._translate import Progress, classify

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.engine.interfaces import Dialect as SADialect
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.pool import PoolProxiedConnection
    from sqlalchemy.sql import ClauseElement, Executable

    from ._dialects import Dialect, Wire

__all__ = [
    "LOST_KINDS",
    "Executor",
    "Form",
    "Lease",
    "Leases",
    "Query",
    "observed",
    "writes",
]

Row = Sequence[Any]
T = TypeVar("T")

#: failures after which a connection is not used again (MySQL hangs up after
#: refusing a request for its size)
LOST_KINDS = {
    ErrorKind.DISCONNECT,
    ErrorKind.HUNG,
    ErrorKind.UNAVAILABLE,
    ErrorKind.TOO_LARGE,
    ErrorKind.READ_ONLY,
}

#: a bind parameter the caller must give (no value in the statement)
_REQUIRED: Any = object()
#: a parameter of ``args_many`` that is not shared by every set
_SHARED: Any = object()
_ENGINE_LOGGER = logging.getLogger("sqlalchemy.engine.Engine")


class Form:
    """One statement compiled for one SQLAlchemy dialect.

    Attributes:
        sql: the statement in the driver's paramstyle, as a wire sends it.
        connection_sql: the same for ``exec_driver_sql``, which %-formats even
            a statement without parameters (``%%`` stays escaped).
        names: the bind parameter names in positional order.
    """

    __slots__ = (
        "_pick",
        "_plan",
        "_processors",
        "_results",
        "_single",
        "connection_sql",
        "names",
        "sql",
    )

    def __init__(
        self,
        statement: Executable,
        dialect: SADialect,
        column_keys: Sequence[str] | None = None,
    ) -> None:
        element = cast("ClauseElement", statement)
        compiled = element.compile(dialect=dialect, column_keys=column_keys)
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("only SQL statements can be precompiled (not DDL)")
        plan: list[tuple[str, Any, Any]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"bind parameter {name!r}: IN lists are not precompiled")
            default = _REQUIRED if bind.required else bind.effective_value
            plan.append((name, default, bind_processor(bind.type, dialect)))
        sql = compiled.string
        if "__[POSTCOMPILE" in sql:
            raise ValueError("the statement renders values at execution time")
        # SQLAlchemy's cursor always formats (it passes an empty tuple), a wire
        # sends a statement without parameters as it is
        self.connection_sql = sql
        if not plan and dialect.paramstyle in ("format", "pyformat"):
            sql = sql.replace("%%", "%")
        results: list[tuple[int, Any]] = []
        for index, column in enumerate(getattr(statement, "exported_columns", ())):
            process = result_processor(column.type, dialect)
            if process is not None:
                results.append((index, process))
        self.sql = sql
        self.names = tuple(name for name, _, _ in plan)
        self._plan = tuple(plan)
        self._results = tuple(results)
        # when every parameter is the call's (no constant bound in the
        # statement), one C call picks the values: a loop over the plan costs
        # two dozen bytecodes a parameter, and a write binds ten
        every_given = bool(plan) and all(default is _REQUIRED for _, default, _ in plan)
        self._pick = operator.itemgetter(*self.names) if every_given else None
        self._single = len(plan) == 1
        self._processors = tuple(
            (index, process) for index, (_, _, process) in enumerate(plan) if process is not None
        )

    def args(self, params: Mapping[str, Any] | None) -> list[Any] | None:
        """The positional values for ``params``, through the bind processors."""
        if not self._plan:
            return None
        pick = self._pick
        # a plain dict only: a mapping's own __getitem__ (a defaultdict's)
        # may answer where .get() below finds no value
        if pick is not None and type(params) is dict:
            try:
                picked = pick(params)
            except KeyError:
                pass  # the loop below names the parameter without a value
            else:
                given: list[Any] = [picked] if self._single else list(picked)
                for index, process in self._processors:
                    given[index] = process(given[index])
                return given
        get = (params or {}).get
        values: list[Any] = []
        for name, default, process in self._plan:
            value = get(name, default)
            if value is _REQUIRED:
                raise KeyError(f"bind parameter {name!r} needs a value")
            values.append(value if process is None else process(value))
        return values

    def args_many(
        self, params: Sequence[Mapping[str, Any]], shared: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """:meth:`args` of each of ``params``, with the parameters in ``shared``
        (the same value in every set: a batch's timestamp) processed once."""
        count = len(params)
        # column by column: one comprehension and one map per column cost a
        # fraction of a Python loop over every value of every row
        columns: list[Iterable[Any]] = []
        for name, default, process in self._plan:
            if name in shared:
                value = shared[name]
                columns.append(
                    itertools.repeat(value if process is None else process(value), count)
                )
                continue
            column = [each.get(name, default) for each in params]
            # ``in`` compares by identity first: the validated values never
            # claim to equal the marker
            if default is _REQUIRED and _REQUIRED in column:
                raise KeyError(f"bind parameter {name!r} needs a value")
            columns.append(column if process is None else list(map(process, column)))
        return list(zip(*columns, strict=True)) if columns else [() for _ in params]

    def row(self, raw: Row) -> Row:
        """One ``raw`` driver row through the result processors."""
        results = self._results
        if not results:
            return raw
        row = list(raw)
        for index, process in results:
            row[index] = process(row[index])
        return row

    def rows(self, raw: Sequence[Row]) -> Sequence[Row]:
        """``raw`` driver rows through the result processors."""
        if not self._results or not raw:
            return raw
        processed: list[Row] = []
        for each in raw:
            row = list(each)
            for index, process in self._results:
                row[index] = process(row[index])
            processed.append(row)
        return processed


class Query:
    """A Core statement built once, compiled once per connected dialect.

    Bind parameters not given a value in the statement are the call's
    parameters, by name; constants in the statement are sent as they were
    bound. IN lists (``expanding`` parameters) cannot be precompiled.

    Args:
        statement: the Core statement.
        column_keys: for an ``insert(table)`` without ``values``: the columns
            it sets, each a parameter of its own name.
    """

    __slots__ = ("_column_keys", "_forms", "_last", "statement")

    def __init__(self, statement: Executable, *, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self._column_keys = None if column_keys is None else list(column_keys)
        self._forms: weakref.WeakKeyDictionary[SADialect, Form] = weakref.WeakKeyDictionary()
        #: the form used last, by a weak reference to its dialect: a process
        #: usually has one, and WeakKeyDictionary.get is a Python call
        self._last: tuple[weakref.ref[SADialect], Form] | None = None

    def form(self, dialect: SADialect) -> Form:
        """The compiled form for ``dialect`` (compiled on first use)."""
        last = self._last
        if last is not None and last[0]() is dialect:
            return last[1]
        form = self._forms.get(dialect)
        if form is None:
            form = self._forms[dialect] = Form(self.statement, dialect, self._column_keys)
        self._last = (weakref.ref(dialect), form)
        return form


class Executor(ABC):
    """Runs queries on one connection: what a repository's work is given."""

    @property
    @abstractmethod
    def dialect(self) -> SADialect:
        """The connected SQLAlchemy dialect (the forms are compiled for it)."""

    @abstractmethod
    async def send(self, sql: str, args: Sequence[Any] | None = None) -> Sequence[Row]:
        """SQL built for this dialect, in the driver's paramstyle, with positional
        ``args`` already through the bind processors; its rows as the driver
        gives them (empty for a statement that returns none)."""

    @abstractmethod
    async def send_many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per argument list (the driver's ``executemany``)."""

    @abstractmethod
    async def send_insert(self, sql: str, args: Sequence[Any] | None) -> int:
        """An INSERT without RETURNING, as :meth:`send`; the first id it generated
        (the DB-API ``lastrowid``: MySQL's ``LAST_INSERT_ID()``). ``args``
        None: ``sql`` holds its values already."""

    @property
    @abstractmethod
    def observed(self) -> bool:
        """The statements go through SQLAlchemy's execution, where its events
        (echo, OpenTelemetry) see them: no bulk path may go around it."""

    @abstractmethod
    async def driver_connection(self) -> Any:
        """The driver's own connection (aiomysql's, for its ``literal``)."""

    @abstractmethod
    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        """PostgreSQL's COPY of ``records`` into ``table`` (unobserved executors only)."""

    @abstractmethod
    async def rows(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Row]:
        """Every row of ``query``, values in the statement's column order."""

    async def row(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row of ``query``, or None."""
        rows = await self.rows(query, params)
        return rows[0] if rows else None

    async def value(self, query: Query, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        rows = await self.rows(query, params)
        return rows[0][0] if rows else None

    @abstractmethod
    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        """Run ``query``; the number of rows it affected."""

    async def insert(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        """Run the INSERT ``query`` (without RETURNING); the id it generated."""
        form = query.form(self.dialect)
        return await self.send_insert(form.sql, form.args(params))

    @abstractmethod
    async def execute_many(self, query: Query, params: Sequence[Mapping[str, Any]]) -> int:
        """Run ``query`` once per parameter set, batched where the driver can."""


class DriverExecutor(Executor):
    """Queries on a driver connection, through its :class:`Wire`."""

    __slots__ = ("_dialect", "wire")

    def __init__(self, wire: Wire, dialect: SADialect) -> None:
        self.wire = wire
        self._dialect = dialect

    @property
    def dialect(self) -> SADialect:
        return self._dialect

    async def send(self, sql: str, args: Sequence[Any] | None = None) -> Sequence[Row]:
        return await self.wire.fetch(sql, args)

    async def send_many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await self.wire.execute_many(sql, args)

    async def send_insert(self, sql: str, args: Sequence[Any] | None) -> int:
        return await self.wire.insert(sql, args)

    @property
    def observed(self) -> bool:
        return False

    async def driver_connection(self) -> Any:
        return self.wire.driver_connection

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        await self.wire.copy(table, records, columns)

    async def rows(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Row]:
        form = query.form(self._dialect)
        return form.rows(await self.wire.fetch(form.sql, form.args(params)))

    async def row(self, query: Query, params: Mapping[str, Any] | None = None) -> Row | None:
        # written out rather than through rows(): every point read takes this path
        form = query.form(self._dialect)
        raw = await self.wire.fetch(form.sql, form.args(params))
        return form.row(raw[0]) if raw else None

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        form = query.form(self._dialect)
        return await self.wire.execute(form.sql, form.args(params))

    async def execute_many(self, query: Query, params: Sequence[Mapping[str, Any]]) -> int:
        if not params:
            return 0
        form = query.form(self._dialect)
        return await self.wire.execute_many(form.sql, [form.args(p) or () for p in params])


class ConnectionExecutor(Executor):
    """Queries on a SQLAlchemy ``AsyncConnection``: the same SQL and processing as
    the driver executor, sent with ``exec_driver_sql`` so that statement events,
    echo and instrumentation see it."""

    __slots__ = ("_conn",)

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def dialect(self) -> SADialect:
        return self._conn.dialect

    async def send(self, sql: str, args: Sequence[Any] | None = None) -> Sequence[Row]:
        if args is None:
            result = await self._conn.exec_driver_sql(sql)
        else:
            result = await self._conn.exec_driver_sql(sql, tuple(args))
        return result.all() if result.returns_rows else ()

    async def send_many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await self._conn.exec_driver_sql(sql, [tuple(each) for each in args])

    async def send_insert(self, sql: str, args: Sequence[Any] | None) -> int:
        if args is None:
            # the cursor %-formats every statement: a literal % must be doubled
            if self._conn.dialect.paramstyle in ("format", "pyformat"):
                sql = sql.replace("%", "%%")
            result = await self._conn.exec_driver_sql(sql)
        else:
            result = await self._conn.exec_driver_sql(sql, tuple(args))
        return int(result.lastrowid)

    @property
    def observed(self) -> bool:
        return True

    async def driver_connection(self) -> Any:
        return (await self._conn.get_raw_connection()).driver_connection

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        # COPY is no cursor execution: the events this executor exists for would miss it
        raise NotImplementedError("COPY bypasses SQLAlchemy's statement events")

    async def rows(self, query: Query, params: Mapping[str, Any] | None = None) -> Sequence[Row]:
        form = query.form(self._conn.dialect)
        return form.rows((await self._send(form, params)).all())

    async def execute(self, query: Query, params: Mapping[str, Any] | None = None) -> int:
        return (await self._send(query.form(self._conn.dialect), params)).rowcount

    async def _send(self, form: Form, params: Mapping[str, Any] | None) -> CursorResult[Any]:
        args = form.args(params)
        if args is None:
            return await self._conn.exec_driver_sql(form.connection_sql)
        return await self._conn.exec_driver_sql(form.connection_sql, tuple(args))

    async def execute_many(self, query: Query, params: Sequence[Mapping[str, Any]]) -> int:
        if not params:
            return 0
        form = query.form(self._conn.dialect)
        batch = [tuple(form.args(p) or ()) for p in params]
        count = (await self._conn.exec_driver_sql(form.connection_sql, batch)).rowcount
        return count if count is not None and count >= 0 else len(batch)


def writes(stmt: Executable) -> bool:
    """Whether a ``fetch_*`` statement may write: a SELECT (Core, or textual SELECT
    and SHOW) is a read; anything else, a textual ``WITH`` included (it may
    hold a data-modifying CTE), runs as a write."""
    if getattr(stmt, "is_select", False):
        return False
    if isinstance(stmt, TextClause):
        words = stmt.text.lstrip(" \t\r\n(").split(None, 1)
        return not words or words[0].upper() not in _READ_KEYWORDS
    return True


#: the first word of a textual statement that only reads
_READ_KEYWORDS = frozenset({"SELECT", "SHOW"})


def observed(engine: AsyncEngine) -> bool:
    """Someone watches this engine's statements: echo or the ``sqlalchemy.engine``
    logger at INFO, or a ``before_cursor_execute``/``after_cursor_execute``
    listener (statement counters, OpenTelemetry's SQLAlchemy instrumentation).

    Work then runs on SQLAlchemy Connections, where those hooks fire for every
    statement; the driver path would bypass them. The slow-statement log's own
    listeners (``Settings.slow_statement_ms``) do not count: the driver path
    times its statements itself (see :mod:`contextstore._slow`).
    """
    sync = engine.sync_engine
    dispatch = sync.dispatch
    if (dispatch.before_cursor_execute or dispatch.after_cursor_execute) and others_watch(sync):
        return True
    return bool(sync.echo) or _ENGINE_LOGGER.isEnabledFor(logging.INFO)


class Lease:
    """A pooled connection held by the execution core."""

    __slots__ = ("executor", "fairy", "since", "wire")

    def __init__(self, fairy: PoolProxiedConnection, wire: Wire, dialect: SADialect, since: float):
        self.fairy = fairy
        self.wire = wire
        self.executor = DriverExecutor(wire, dialect)
        self.since = since


class Leases:
    """Pooled connections held behind a semaphore (see the module docstring).

    Args:
        engine: the engine whose pool the connections come from.
        recipe: the dialect recipe (it makes each connection's wire).
        capacity: connections in use at once, leased or checked out
            (``pool_size + max_overflow``).
        keep: idle leases kept; more go back to the pool (``pool_size``).
        timeout: seconds to wait for a slot (``pool_timeout``).
        recycle: seconds a lease is used before its connection goes back to
            the pool, which replaces it once older than ``pool_recycle``;
            None: never.
        pre_ping: test an idle lease with a round trip before each use.
        slow_ms: ``Settings.slow_statement_ms``: each connection's statements
            are timed (a :class:`~contextstore._slow.SlowWire`); None: not
            timed, with no check on the way.
        make_wire: makes each connection's wire (default: ``recipe.wire``).
        transactions_only: every call runs inside BEGIN ... COMMIT, reads and
            autocommit writes included (see ``Dialect.transactions_only``).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        recipe: Dialect,
        *,
        capacity: int,
        keep: int,
        timeout: float,
        recycle: float | None,
        pre_ping: bool,
        slow_ms: float | None = None,
        make_wire: Callable[[Any], Wire] | None = None,
        transactions_only: bool = False,
    ) -> None:
        self._engine = engine
        self._make_wire = make_wire if make_wire is not None else recipe.wire
        self._transactions_only = transactions_only
        self._slow_ms = slow_ms
        self._recipe = recipe
        self._capacity = capacity
        self._slots = Slots(capacity, timeout)
        self._idle: list[Lease] = []
        self._keep = keep
        self._timeout = timeout
        self._recycle = recycle
        self._pre_ping = pre_ping
        self._chores: set[asyncio.Future[Any]] = set()
        self._closed = False

    @property
    def idle(self) -> int:
        """Connections held idle (checked out of the pool, free for the next call)."""
        return len(self._idle)

    async def acquire(self) -> Lease:
        """A connection for one call; give it back with :meth:`release`.

        Raises:
            PoolExhaustedError: no slot became free within ``timeout``.
        """
        lease = self._take_idle()
        return lease if lease is not None else await self._checkout()

    async def release(self, lease: Lease, *, reusable: bool) -> None:
        """Give ``lease`` back: kept idle, returned to the pool, or discarded
        (``reusable`` False: its connection failed or its state is unknown)."""
        if not self._kept(lease, reusable):
            await self._retire(lease, discard=not reusable)

    def _kept(self, lease: Lease, reusable: bool) -> bool:
        """Free ``lease``'s slot and keep it idle if it may be; False: it must be
        given back to the pool (or discarded) by the caller.

        With a call waiting for a slot, a lease that needs no check goes to it
        with the slot: the call then takes neither a slot nor an idle lease
        itself (every call on a busy pool takes this path).
        """
        slots = self._slots
        if reusable and not self._closed:
            if (
                slots.waiting
                and not self._pre_ping
                and not self._expired(lease, time.monotonic())
                and slots.hand_over(lease)
            ):
                return True
            slots.release()
            if len(self._idle) < self._keep:
                self._idle.append(lease)
                return True
            return False
        slots.release()
        return False

    def discard_idle(self) -> None:
        """Discard every idle lease (a connection was lost: the server may have
        restarted, and the others would fail their next statement)."""
        idle, self._idle = self._idle, []
        for lease in idle:
            self._chore(self._give_back(lease, discard=True))

    def lost(self, kind: ErrorKind | None) -> None:
        """A held connection failed with ``kind``: after a disconnect the idle
        ones go too (see :meth:`discard_idle`)."""
        if kind in (ErrorKind.DISCONNECT, ErrorKind.READ_ONLY):
            # a read-only server: the primary moved (failover), and every idle
            # connection points at the old one
            self.discard_idle()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """A slot for work that checks a connection out of the pool itself, with an
        idle lease given back first when the pool has no free connection."""
        await self._take_slot()
        try:
            pool = self._engine.pool
            if self._idle and isinstance(pool, QueuePool) and pool.checkedin() == 0:
                await self._retire(self._idle.pop(), discard=False)
            yield
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Give every idle lease back and wait for the ones on their way."""
        self._closed = True
        idle, self._idle = self._idle, []
        for lease in idle:
            self._chore(self._give_back(lease, discard=False))
        if self._chores:
            await asyncio.wait(self._chores, timeout=5.0)

    async def attempt(
        self,
        work: Callable[[Executor], Awaitable[T]],
        write: bool,
        autocommit: bool,
        progress: Progress,
    ) -> T:
        """One attempt of ``work`` on a lease: BEGIN and COMMIT around it for a
        write (none for a read or an ``autocommit`` write), ``progress`` kept
        for the caller's retry decision. A connection whose statement failed is
        rolled back and kept; a lost, hung or cancelled one is discarded."""
        # acquire(), without its coroutine in the common case
        lease = self._take_idle()
        if lease is None:
            lease = await self._checkout()
        wire = lease.wire
        reusable = False
        in_transaction = False
        try:
            if (write and not autocommit) or self._transactions_only:
                await wire.begin()
                in_transaction = True
            # an autocommit write commits as it runs: from here on a lost
            # connection leaves its outcome unknown
            progress.committing = write and not in_transaction
            progress.sent = True
            result = await work(lease.executor)
            if in_transaction:
                progress.committing = True
                await wire.commit()
                in_transaction = False
            reusable = True
            return result
        except Exception as error:
            kind = classify(self._recipe, error)
            if kind in LOST_KINDS:
                self.lost(kind)
            else:
                # the statement failed (or the work raised): the connection is
                # fine once its transaction is rolled back
                with contextlib.suppress(Exception):
                    if in_transaction:
                        await wire.rollback()
                    reusable = True
            raise
        finally:
            # release(), without its coroutine when the lease is kept idle
            if not self._kept(lease, reusable):
                await self._retire(lease, discard=not reusable)

    def _take_idle(self) -> Lease | None:
        """A slot and an idle lease, taken without an await when both are at
        hand and the lease needs no check; None: nothing was taken."""
        idle = self._idle
        if idle and not self._pre_ping and self._slots.try_acquire():
            recycle = self._recycle
            if recycle is None or time.monotonic() - idle[-1].since <= recycle:
                return idle.pop()
            self._slots.release()
        return None

    async def _checkout(self) -> Lease:
        """A slot, waited for if none is free, then a lease: the one handed over
        with the slot, an idle one that passes its checks, or a connection
        checked out of the pool."""
        slots = self._slots
        if not slots.try_acquire():
            # awaited here rather than in a coroutine of its own: a frame less
            # for the wake-up to pass through
            waiter = slots.wait()
            handed: Lease | None
            try:
                handed = await waiter
            except TimeoutError:
                raise self._exhausted() from None
            except asyncio.CancelledError:
                if slots.handed(waiter):
                    # a slot (with a lease or not) reached the caller as it was
                    # cancelled: pass it on
                    self._pass_on(waiter.result())
                raise
            if handed is not None:
                return handed
        try:
            return await self._lease()
        except BaseException:
            slots.release()
            raise

    def _pass_on(self, lease: Lease | None) -> None:
        """Give back a slot taken, with ``lease`` or without one, by a call that
        will not use it."""
        if lease is None:
            self._slots.release()
        elif not self._kept(lease, True):
            self._chore(self._give_back(lease, discard=False))

    def _exhausted(self) -> sa_exc.TimeoutError:
        # the pool's own error, so both paths report exhaustion alike
        return sa_exc.TimeoutError(
            f"all {self._capacity} connections in use, timed out after {self._timeout:g} s"
        )

    async def _take_slot(self) -> None:
        try:
            await self._slots.acquire()
        except TimeoutError:
            raise self._exhausted() from None

    async def _lease(self) -> Lease:
        now = time.monotonic()
        while self._idle:
            lease = self._idle.pop()
            if self._expired(lease, now):
                await self._retire(lease, discard=False)
                continue
            if self._pre_ping:
                try:
                    await lease.wire.ping()
                except Exception:
                    await self._retire(lease, discard=True)
                    continue
            return lease
        fairy = await self._engine.raw_connection()
        wire = self._make_wire(fairy.driver_connection)
        if self._slow_ms is not None:
            wire = SlowWire(wire, self._slow_ms)
        return Lease(fairy, wire, self._engine.dialect, now)

    def _expired(self, lease: Lease, now: float) -> bool:
        """``lease`` was used past ``recycle``: its connection goes back to the pool."""
        return self._recycle is not None and now - lease.since > self._recycle

    async def _retire(self, lease: Lease, *, discard: bool) -> None:
        # shielded: a cancelled caller must not leave the connection half given back
        await asyncio.shield(self._chore(self._give_back(lease, discard=discard)))

    def _chore(self, work: Any) -> asyncio.Future[Any]:
        task: asyncio.Future[Any] = asyncio.ensure_future(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return task

    @staticmethod
    async def _give_back(lease: Lease, *, discard: bool) -> None:
        fairy = lease.fairy
        if not fairy.is_valid:
            # a SQLAlchemy Connection over it (a unit of work's own statements)
            # found it lost and invalidated it: it is back in the pool already
            return
        try:
            if discard:
                lease.wire.abort()
                await greenlet_spawn(fairy.invalidate)
            else:
                await greenlet_spawn(fairy.close)
        except Exception:
            # a connection that cannot even be closed is gone already; the pool
            # has forgotten it either way
            pass
