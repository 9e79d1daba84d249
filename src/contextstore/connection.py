"""ConnectionManager: runs Core statements on the pool, owns transactions and retries.

Invariants:

* every call checks a connection out and gives it back before returning,
  whatever happens (errors, cancellation); a stream gives it back when it is
  exhausted, fails or is closed (see ``stream`` for abandoned iterations);
* writes run inside one transaction; single reads run without declaring write
  intent (on SQLite they stay in autocommit and take no write lock);
* a failed attempt is repeated as a whole transaction only when repeating
  cannot duplicate a write: the server rolled it back (deadlock,
  serialization failure, busy), or the connection failed before COMMIT was
  sent. A lost COMMIT is retried only for work declared idempotent; otherwise
  it surfaces as ``DatabaseUnavailableError(may_have_committed=True)``;
* every error leaving this module went through ``_translate``;
* with ``replica_urls``, single reads (``write=False``) may be served by a
  replica (see ``_replicas``: read your writes per task, a replica in
  trouble skipped); writes, units of work, transactions and streams always
  run here, on the primary.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import QueuePool

from ._dialects import SNAPSHOT, WRITE_INTENT, dialect_for
from ._execute import ConnectionExecutor, Executor, Leases, Query, observed
from ._facts import VERSION_TABLE, Probes, wait_bound
from ._replicas import Replicas, wrote
from ._statements import Statements
from ._translate import Progress, translate, translating
from ._unit import UnitState
from ._work import UnitOfWork, UnitScope, safe_to_retry
from .engine import create_engine
from .errors import ContextStoreError, DatabaseUnavailableError, PoolExhaustedError
from .models import HealthReport, PoolStats
from .settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import URL
    from sqlalchemy.ext.asyncio import AsyncEngine
    from sqlalchemy.sql import Executable

    from ._dialects import Dialect

__all__ = ["ConnectionManager", "Statements", "UnitOfWork"]

T = TypeVar("T")

#: attempts of one operation, and the window they must fit in (seconds).
MAX_ATTEMPTS = 4
RETRY_WINDOW = 10.0
_BACKOFF_BASE = 0.02


class ConnectionManager(Statements):
    """Runs Core expressions over the ``schema`` tables on one pooled engine.

    Args:
        settings: where and how to connect; ``None`` reads the environment.
        engine: an existing engine to wrap instead of building one (tests, tools).
    """

    def __init__(self, settings: Settings | None = None, *, engine: AsyncEngine | None = None):
        self._settings = settings if settings is not None else Settings()
        self._dialect = dialect_for(self._settings.effective_database_url)
        self._engine: AsyncEngine | None = (
            engine if engine is not None else create_engine(self._settings)
        )
        self._probes = Probes()
        self._unpooled: AsyncEngine | None = None
        self._leases = self._make_leases(self._engine)
        #: attempts of one operation (a replica's manager makes one: the
        #: primary is its retry)
        self._attempts = MAX_ATTEMPTS
        urls = self._settings.effective_replica_urls
        self._replicas: Replicas | None = (
            Replicas(self, urls, self._replica_manager) if urls and engine is None else None
        )

    def _replica_manager(self, url: URL) -> ConnectionManager:
        """The manager of one replica: its own engine and leases, one attempt per call."""
        values = {name: getattr(self._settings, name) for name in self._settings.model_fields_set}
        values.update(database_url=url, replica_urls=[], auto_migrate=False)
        manager = ConnectionManager(Settings(**values))
        manager._attempts = 1
        return manager

    def _make_leases(self, engine: AsyncEngine) -> Leases:
        """The execution core's held connections, within the pool's own limits."""
        options = self._dialect.engine_options(
            self._settings.effective_database_url, self._settings
        )
        pool = engine.pool
        if isinstance(pool, QueuePool):
            keep = pool.size()
            capacity = keep + int(options.get("max_overflow", 0))
            timeout = pool.timeout()
        else:  # one shared connection (in-memory SQLite), or none kept
            keep = capacity = 1
            timeout = float(options.get("pool_timeout", 30.0))
        recycle = options.get("pool_recycle", -1)
        return Leases(
            engine,
            self._dialect,
            capacity=max(capacity, 1),
            keep=keep,
            timeout=timeout,
            recycle=None if recycle is None or recycle < 0 else float(recycle),
            pre_ping=bool(options.get("pool_pre_ping", False)),
            slow_ms=self._settings.slow_statement_ms,
            make_wire=self._dialect.wire_factory(self._settings),
            transactions_only=self._dialect.transactions_only(self._settings),
        )

    def __repr__(self) -> str:
        state = "closed" if self._engine is None else "open"
        return f"<ConnectionManager {self._settings.safe_url} ({state})>"

    @property
    def settings(self) -> Settings:
        """The settings this manager was built with."""
        return self._settings

    @property
    def dialect(self) -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        return self._dialect.name

    @property
    def recipe(self) -> Dialect:
        """The dialect recipe the repositories build their statements with."""
        return self._dialect

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine, for Alembic and tools; raises once disposed."""
        if self._engine is None:
            raise ContextStoreError("ConnectionManager is closed; create a new one")
        return self._engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine this manager runs statements on: the primary's first,
        then one per replica (``replica_urls``).

        A listener of SQLAlchemy's statement events (a counter, a tracer)
        that must see every statement, replica reads included, is attached
        to each of them; ``contextstore.otel.instrument`` does so.

        Raises:
            ContextStoreError: the manager is closed.
        """
        engine = self.engine
        if self._replicas is None:
            return (engine,)
        return (engine, *self._replicas.engines())

    # -- running work -----------------------------------------------------

    async def run(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``work(conn)`` as one unit, retrying the whole unit where that is safe.

        Args:
            work: a coroutine function given the connection; with ``write`` it
                runs inside a transaction committed after it returns.
            write: the work may write; it runs in a transaction (``BEGIN
                IMMEDIATE`` on SQLite).
            idempotent: repeating the work cannot duplicate a write (insert if
                absent, then read back), so even a lost COMMIT may be retried.
            autocommit: with ``write``, the work's only write is one statement,
                which commits itself: no BEGIN and no COMMIT round trip. Every
                failure after checkout then leaves the outcome unknown, so this
                is allowed only with ``idempotent``.
            recover: how the work recognises its own earlier attempt: on every
                attempt after the first it runs first, on the new connection,
                and returns what an earlier attempt committed (found by the
                call's idempotency token, say), or None to run ``work``. It
                declares the work ``idempotent``: the one retry mechanism the
                repositories declare instead of writing it.

        Raises:
            DatabaseUnavailableError: attempts ran out; ``may_have_committed``
                tells whether a write may have landed.
        """
        replicas = self._replicas
        if replicas is None:
            return await self._run(self.engine, work, write, idempotent, autocommit, recover)
        if not write:
            served, result = await replicas.read(work, _run_on, _row_on_connection)
            if served:
                return result  # type: ignore[return-value]
            return await self._run(self.engine, work, write, idempotent, autocommit, recover)
        try:
            return await self._run(self.engine, work, write, idempotent, autocommit, recover)
        finally:
            wrote()

    def read_rows(
        self, query: Query, params: dict[str, Any] | None = None
    ) -> Coroutine[Any, Any, Any]:
        """Every row of a precompiled read ``query`` (a single read, retried where safe)."""
        return self._read(_rows, query, params)

    def read_row(
        self, query: Query, params: dict[str, Any] | None = None
    ) -> Coroutine[Any, Any, Any]:
        """The first row of a precompiled read ``query``, or None."""
        return self._read(_row, query, params)

    def read_value(
        self, query: Query, params: dict[str, Any] | None = None
    ) -> Coroutine[Any, Any, Any]:
        """The first value of a precompiled read ``query``, or None."""
        return self._read(_value, query, params)

    def _read(
        self,
        op: Callable[[Executor, Query, dict[str, Any] | None], Awaitable[Any]],
        query: Query,
        params: dict[str, Any] | None,
    ) -> Coroutine[Any, Any, Any]:
        """``perform(work, write=False)`` for one precompiled read.

        Like :meth:`perform`, this and the ``read_*`` methods are plain
        functions returning the coroutine that does the work, and ``work``
        returns ``op``'s awaitable rather than awaiting it: a coroutine of
        their own would be one more frame that every suspension of the call
        passes through on its way back (every point read and page takes
        this path).
        """
        return self.perform(lambda executor: op(executor, query, params), write=False)

    async def on_primary(self, work: Callable[[Executor], Awaitable[T]]) -> T:
        """Run the read ``work`` on the primary, never on a replica (retried as ``run``)."""
        return await self._retrying(self._leases.attempt, work, False, False, False, None)

    def perform(
        self,
        work: Callable[[Executor], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[Executor], Awaitable[T | None]] | None = None,
    ) -> Coroutine[Any, Any, T]:
        """Run ``work(executor)`` as one unit on the execution core; see ``run``.

        The work runs on a held driver connection, or on a SQLAlchemy
        Connection while the engine's statements are watched (see
        :func:`contextstore._execute.observed`): the same SQL either way.

        A plain function returning the coroutine to await: in the common case
        (no replicas, nobody watching) that is the retry loop's own, with no
        frame of this method's in the chain every suspension passes through.
        """
        engine = self.engine
        if self._replicas is None and not observed(engine):
            return self._retrying(
                self._leases.attempt, work, write, idempotent, autocommit, recover
            )
        return self._perform_anywhere(engine, work, write, idempotent, autocommit, recover)

    async def _perform_anywhere(
        self,
        engine: AsyncEngine,
        work: Callable[[Executor], Awaitable[T]],
        write: bool,
        idempotent: bool,
        autocommit: bool,
        recover: Callable[[Executor], Awaitable[T | None]] | None,
    ) -> T:
        """:meth:`perform` with replicas to choose among, or watched statements."""
        replicas = self._replicas
        if replicas is None:
            return await self._perform(engine, work, write, idempotent, autocommit, recover)
        if not write:
            served, result = await replicas.read(work, _perform_on, _row_on_executor)
            if served:
                return result  # type: ignore[return-value]
            return await self._perform(engine, work, write, idempotent, autocommit, recover)
        try:
            return await self._perform(engine, work, write, idempotent, autocommit, recover)
        finally:
            wrote()

    async def _perform(
        self,
        engine: AsyncEngine,
        work: Callable[[Executor], Awaitable[T]],
        write: bool,
        idempotent: bool,
        autocommit: bool,
        recover: Callable[[Executor], Awaitable[T | None]] | None,
    ) -> T:
        if observed(engine):

            async def on_connection(conn: AsyncConnection) -> T:
                return await work(ConnectionExecutor(conn))

            found = None
            if recover is not None:
                again = recover

                async def found(conn: AsyncConnection) -> T | None:
                    return await again(ConnectionExecutor(conn))

            return await self._run(engine, on_connection, write, idempotent, autocommit, found)
        return await self._retrying(
            self._leases.attempt, work, write, idempotent, autocommit, recover
        )

    async def _run(
        self,
        engine: AsyncEngine,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
    ) -> T:
        attempt = functools.partial(self._attempt, engine)
        return await self._retrying(attempt, work, write, idempotent, autocommit, recover)

    async def _retrying(
        self,
        attempt_once: Callable[[Any, bool, bool, Progress], Awaitable[T]],
        work: Callable[[Any], Awaitable[T]],
        write: bool,
        idempotent: bool,
        autocommit: bool,
        recover: Callable[[Any], Awaitable[T | None]] | None,
    ) -> T:
        attempt = 0
        if recover is not None:
            idempotent = True
            first_try = work

            async def work(conn: Any) -> T:
                if attempt > 1:
                    # an earlier attempt may have committed before its
                    # acknowledgement was lost: then that is the result
                    found = await recover(conn)
                    if found is not None:
                        return found
                return await first_try(conn)

        if autocommit and not idempotent:
            raise ValueError("autocommit writes must be idempotent")
        # the loop's clock, read without looking the loop up on every call
        deadline = time.monotonic() + RETRY_WINDOW
        #: an earlier attempt's write may have committed: the outcome stays
        #: unknown until an attempt gets through (idempotent work reads it back)
        unknown = False
        while True:
            attempt += 1
            progress = Progress(write=write)
            try:
                # what ``translating`` does, written out: this is every call's path
                try:
                    return await attempt_once(work, write, autocommit, progress)
                except ContextStoreError:
                    raise
                except Exception as error:
                    raise translate(self._dialect, error, progress) from error
            except DatabaseUnavailableError as exc:
                delay = _BACKOFF_BASE * (2 ** (attempt - 1)) * (0.5 + random.random())
                if (
                    isinstance(exc, PoolExhaustedError)
                    or attempt >= self._attempts
                    or time.monotonic() + delay > deadline
                    or not safe_to_retry(progress, idempotent)
                ):
                    if unknown and not exc.may_have_committed:
                        raise DatabaseUnavailableError(
                            f"{exc} (an earlier attempt may have committed)",
                            may_have_committed=True,
                        ) from exc
                    raise
                unknown = unknown or exc.may_have_committed
            await asyncio.sleep(delay)

    def _slot(self, engine: AsyncEngine) -> AbstractAsyncContextManager[None]:
        """A slot of the shared limit for a checkout from this manager's pool."""
        if engine is self._engine:
            return self._leases.slot()
        return contextlib.nullcontext()

    async def _prelude(self, conn: AsyncConnection) -> None:
        """The dialect's first statement of a transaction on ``conn`` (PostgreSQL
        behind a transaction-mode pooler: ``SET LOCAL statement_timeout``)."""
        prelude = self._dialect.transaction_prelude(self._settings)
        if prelude is not None:
            await conn.exec_driver_sql(prelude)

    async def _attempt(
        self,
        engine: AsyncEngine,
        work: Callable[[AsyncConnection], Awaitable[T]],
        write: bool,
        autocommit: bool,
        progress: Progress,
    ) -> T:
        async with self._slot(engine), engine.connect() as conn:
            in_transaction = (write and not autocommit) or self._dialect.transactions_only(
                self._settings
            )
            await conn.execution_options(**{WRITE_INTENT: in_transaction})
            if not in_transaction:
                # an autocommit write commits as it runs: from here on a lost
                # connection leaves its outcome unknown
                progress.committing = write
                progress.sent = True
                return await work(conn)
            async with conn.begin():
                progress.sent = True
                await self._prelude(conn)
                result = await work(conn)
                progress.committing = True
            return result

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction: commit on exit, rollback on error.

        The body runs once; it is never retried (it is not ours to repeat).
        On SQLite the transaction starts with ``BEGIN IMMEDIATE``. Use it as
        ``async with db.transaction() as conn: await conn.execute(stmt)``.

        Yields:
            The ``AsyncConnection`` of the transaction.

        Raises:
            DatabaseUnavailableError: the database could not be reached, or
                the connection was lost; ``may_have_committed`` is True only
                when it was lost during COMMIT.
            QueryTimeoutError: a statement ran past ``statement_timeout``;
                the transaction was rolled back.
            ContextStoreError: the manager is closed, or a statement failed
                (translated like the other methods' errors).
        """
        engine = self.engine
        progress = Progress(write=True)
        try:
            with translating(self._dialect, progress):
                async with self._leases.slot(), engine.connect() as conn:
                    await conn.execution_options(**{WRITE_INTENT: True})
                    async with conn.begin():
                        progress.sent = True
                        await self._prelude(conn)
                        yield conn
                        progress.committing = True
        finally:
            if self._replicas is not None:
                wrote()

    def unit_of_work(
        self, state: UnitState | None = None
    ) -> AbstractAsyncContextManager[UnitOfWork]:
        """One transaction for several calls: the engine of ``store.transaction()``.

        The body runs once and is never retried here (``store.run_transaction``
        re-runs whole units where that is safe). Exceptions of the body leave
        unchanged after the rollback. The unit holds one connection of the
        execution core (the repositories run on its driver connection, the
        caller's own statements on a SQLAlchemy Connection over it), or a
        SQLAlchemy Connection throughout while the engine's statements are
        watched (see :func:`contextstore._execute.observed`).

        Args:
            state: the unit's lifetime rules, created by the caller when it
                needs to read them afterwards (whether a retry is safe).

        Returns:
            An async context manager yielding a :class:`UnitOfWork` that runs
            every statement on the transaction's one connection.

        Raises:
            DatabaseUnavailableError: the database could not be reached, or the
                connection was lost; ``may_have_committed`` is True only when it
                was lost during COMMIT.
            ContextStoreError: a statement failed inside the block and the
                block went on (the transaction was rolled back, not committed).
        """
        scope = UnitScope(self, state if state is not None else UnitState())
        return scope if self._replicas is None else _Fenced(scope)

    async def stream(
        self, stmt: Executable, *, batch_size: int = 500
    ) -> AsyncGenerator[RowMapping, None]:
        """Yield the rows of ``stmt`` from a server-side cursor, ``batch_size`` at a time.

        The connection is given back when the iteration ends or fails, when the
        task is cancelled while it waits inside the stream, and when the
        generator is closed. A consumer that may stop early, or be cancelled in
        its own loop body, must close it: ``async with
        contextlib.aclosing(db.stream(stmt)) as rows``. Otherwise Python closes
        an abandoned generator only when it is garbage-collected, and its
        connection stays checked out until then.

        Args:
            stmt: a Core SELECT.
            batch_size: rows fetched from the server per round trip.

        Yields:
            Each row as a ``RowMapping``.

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached, or
                the connection was lost mid-stream (never retried).
            ContextStoreError: the manager is closed, or the statement failed.
        """
        engine = self.engine
        progress = Progress()
        with translating(self._dialect, progress):
            async with self._leases.slot(), engine.connect() as conn:
                # a server-side cursor lives inside a transaction (PostgreSQL)
                await conn.execution_options(**{WRITE_INTENT: False, SNAPSHOT: True})
                progress.sent = True
                await self._prelude(conn)
                result = await conn.stream(stmt.execution_options(yield_per=batch_size))
                try:
                    async for row in result.mappings():
                        yield row
                finally:
                    await result.close()

    # -- introspection ----------------------------------------------------

    def pool_stats(self) -> PoolStats | None:
        """Counters of the connection pool, read without I/O.

        Returns:
            ``PoolStats(size, checked_in, checked_out, overflow)``; None for
            in-memory SQLite (one shared connection, no pool) and after
            ``dispose()``.
        """
        if self._engine is None:
            return None
        pool = self._engine.pool
        if not isinstance(pool, QueuePool):
            return None
        # idle leases are checked out of the pool but free for the next call
        idle = self._leases.idle
        return PoolStats(
            size=pool.size(),
            checked_in=pool.checkedin() + idle,
            checked_out=pool.checkedout() - idle,
            overflow=max(0, pool.overflow()),
        )

    async def health_check(self, timeout: float = 5.0) -> HealthReport:
        """Probe the database with a real round trip; never raises.

        Returns within ``timeout`` even when the server hangs: the probe runs as
        its own task and is abandoned (cancelled) at the deadline. When every
        pooled connection is busy, the probe opens a connection of its own.

        Args:
            timeout: seconds to wait for the answer, a positive finite number
                (anything else is reported in ``error``, not raised; a wait
                beyond a day is cut to a day).

        Returns:
            The report: server version, schema revision and whether it is the
            newest, pool counters, latency; ``ok=False`` with ``error`` set on
            any failure.
        """
        start = time.perf_counter()
        error: str | None = None
        version: str | None = None
        revision: str | None = None
        current = False
        bound = wait_bound(timeout)
        if isinstance(bound, str):
            error = bound
        elif self._engine is None:
            error = "ConnectionManager is closed"
        else:
            probe = await self._probes.answer(self._probe(), bound)
            if probe is None:
                error = f"no answer from the database within {bound:g} s"
            elif probe.exception() is not None:
                error = _describe(probe.exception())
            else:
                version, revision, current = probe.result()
        latency = (time.perf_counter() - start) * 1000
        return HealthReport(
            ok=error is None,
            backend="core",
            dialect=self._dialect.name,
            latency_ms=round(latency, 3),
            server_version=version,
            schema_revision=revision,
            schema_current=current,
            pool=self.pool_stats(),
            error=error,
            replicas=[]
            if self._replicas is None or isinstance(bound, str)
            else (await self._replicas.health(bound)),
        )

    async def _probe(self) -> tuple[str, str | None, bool]:
        """Server version, schema revision, and whether that revision is the newest."""
        engine = self.engine
        if _exhausted(self.pool_stats()):
            # every pooled connection is busy: the question is whether the
            # database answers, so ask it over a connection of the probe's own
            engine = self._probe_engine()
        # Read-only: a textual SELECT would otherwise count as a write and, on
        # SQLite, queue behind any open write transaction for busy_timeout.
        version = await self._run(engine, _scalar(self._dialect.server_version_sql()), False)
        revision: str | None = None
        try:
            revision = await self._run(engine, _scalar(_OWN_REVISION_SQL), False)
        except ContextStoreError:
            revision = None  # no contextstore_version (yet)
        if revision is None:
            # not migrated yet, or stamped by an older release in alembic_version
            # and not moved yet (never a service's revision: see _migrations)
            with contextlib.suppress(ContextStoreError):
                revision = await self._run(engine, _old_release_revision, False)
        # inside the probe, so even the first (uncached) read of the migration
        # scripts counts against the health timeout
        current = revision is not None and revision == _head_revision()
        return str(version), revision, current

    def _probe_engine(self) -> AsyncEngine:
        """An engine without a pool (one connection per probe), made on first use."""
        if self._unpooled is None:
            self._unpooled = create_engine(self._settings, pooled=False)
        return self._unpooled

    async def dispose(self) -> None:
        """Close every pooled connection; later calls raise a clear error.

        Probes still running are cancelled. Calling it again does nothing.
        """
        await self._probes.close()
        await self._leases.close()
        replicas, self._replicas = self._replicas, None
        if replicas is not None:
            await replicas.close()
        engine, self._engine = self._engine, None
        unpooled, self._unpooled = self._unpooled, None
        for each in (engine, unpooled):
            if each is not None:
                await each.dispose()


#: contextstore's revision, from its own version table (``_facts.VERSION_TABLE``)
_OWN_REVISION_SQL = f"SELECT version_num FROM {VERSION_TABLE}"


async def _old_release_revision(conn: AsyncConnection) -> str | None:
    """Work for ``run``: a stamp an older release left in ``alembic_version``."""
    from ._migrations import old_release_revision

    return await conn.run_sync(old_release_revision)


def _scalar(sql: str) -> Callable[[AsyncConnection], Awaitable[Any]]:
    """Work for ``run``: the first value of a textual statement."""

    async def work(conn: AsyncConnection) -> Any:
        return (await conn.execute(text(sql))).scalar()

    return work


class _Fenced(AbstractAsyncContextManager[UnitOfWork]):
    """A unit of work that marks the task as having written once it ends."""

    def __init__(self, scope: UnitScope) -> None:
        self._scope = scope

    async def __aenter__(self) -> UnitOfWork:
        return await self._scope.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self._scope.__aexit__(*exc_info)
        finally:
            wrote()


async def _run_on(manager: ConnectionManager, work: Callable[[Any], Awaitable[T]]) -> T:
    """A replica read over a SQLAlchemy Connection."""
    return await manager.run(work, write=False)


def _rows(executor: Executor, query: Query, params: dict[str, Any] | None) -> Awaitable[Any]:
    return executor.rows(query, params)


def _row(executor: Executor, query: Query, params: dict[str, Any] | None) -> Awaitable[Any]:
    return executor.row(query, params)


def _value(executor: Executor, query: Query, params: dict[str, Any] | None) -> Awaitable[Any]:
    return executor.value(query, params)


async def _perform_on(manager: ConnectionManager, work: Callable[[Any], Awaitable[T]]) -> T:
    """A replica read on the execution core."""
    return await manager.perform(work, write=False)


async def _row_on_connection(conn: AsyncConnection, sql: str) -> Any:
    """The first row of a textual statement, over a SQLAlchemy Connection."""
    return (await conn.exec_driver_sql(sql)).first()


async def _row_on_executor(executor: Executor, sql: str) -> Any:
    """The first row of a textual statement, on the execution core."""
    rows = await executor.send(sql)
    return rows[0] if rows else None


def _exhausted(stats: PoolStats | None) -> bool:
    """No idle connection in the pool and all of its base size in use.

    A checkout might still open an overflow connection without waiting, but
    the health probe then takes a connection of its own: the same one new
    connection either way, and never a wait for a slot.
    """
    return stats is not None and stats.checked_in == 0 and stats.checked_out >= stats.size


def _describe(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {error}" if error is not None else "unknown error"


def _head_revision() -> str | None:
    from ._migrations import head_revision

    return head_revision()
