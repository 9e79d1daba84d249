"""Units of work on a ConnectionManager: the scope ``unit_of_work`` returns,
the two ways a unit opens (a lease of the execution core, or a SQLAlchemy
Connection while statements are watched) and the units themselves.

Invariants: a unit's body runs once and is never retried here; every failure
of the unit's own (checkout, BEGIN, a statement, COMMIT) is recorded in its
``UnitState`` with whether a fresh unit may repeat it; the body's own
exceptions leave unchanged after the rollback.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from ._dialects import WRITE_INTENT, ErrorKind
from ._execute import LOST_KINDS, ConnectionExecutor, Executor, Lease, observed
from ._statements import Statements
from ._translate import Progress, translate, translating
from ._unit import UnitState, savepoint
from .errors import ContextStoreError, DatabaseUnavailableError, PoolExhaustedError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncTransaction

    from ._dialects import Dialect
    from .connection import ConnectionManager
    from .settings import Settings

__all__ = ["ConnectionUnit", "LeasedUnit", "UnitOfWork", "UnitScope", "safe_to_retry"]

T = TypeVar("T")

_RETRY_KINDS = {
    ErrorKind.RETRYABLE,
    ErrorKind.BUSY,
    ErrorKind.DISCONNECT,
    ErrorKind.UNAVAILABLE,
    ErrorKind.READ_ONLY,
}


def safe_to_retry(progress: Progress, idempotent: bool) -> bool:
    """Repeating the attempt that got as far as ``progress`` cannot duplicate a write."""
    if progress.kind not in _RETRY_KINDS:
        return False
    if progress.kind in (ErrorKind.RETRYABLE, ErrorKind.BUSY, ErrorKind.READ_ONLY):
        return True  # the server rolled the transaction back (or took no write)
    # connection trouble: safe unless a COMMIT may have landed
    return not (progress.write and progress.committing) or idempotent


def _retry_safe(error: BaseException, progress: Progress) -> bool:
    """A fresh unit of work may succeed and cannot duplicate what this one did."""
    return (
        isinstance(error, DatabaseUnavailableError)
        and not isinstance(error, PoolExhaustedError)
        and not error.may_have_committed
        and safe_to_retry(progress, idempotent=False)
    )


class UnitOfWork(Statements):
    """The statement methods of one open transaction, on its one connection.

    Built by :meth:`ConnectionManager.unit_of_work`; the core repositories of a
    unit of work run on it instead of the manager. Nothing is retried here, and
    each call goes through the unit's :class:`~contextstore._unit.UnitState`.
    ``write``, ``idempotent``, ``autocommit`` and ``recover`` change nothing
    in a unit: its transaction holds every write and commits them together,
    and a unit is never retried from inside.
    """

    def __init__(self, manager: ConnectionManager, state: UnitState, progress: Progress) -> None:
        self._manager = manager
        self._state = state
        self._progress = progress
        self._dialect = manager.recipe

    @property
    def settings(self) -> Settings:
        """The settings of the manager this unit runs on."""
        return self._manager.settings

    @property
    def engine(self) -> AsyncEngine:
        """The manager's engine (its dialect knows the server's capabilities)."""
        return self._manager.engine

    @property
    def recipe(self) -> Dialect:
        """The manager's dialect recipe."""
        return self._dialect

    async def run(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``work(conn)`` in the unit's transaction, once."""
        return await self._call(work, self._connection())

    async def perform(
        self,
        work: Callable[[Executor], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[Executor], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``work(executor)`` in the unit's transaction, once."""
        return await self._call(work, self._executor())

    @abstractmethod
    def _connection(self) -> AsyncConnection:
        """The SQLAlchemy Connection the caller's own statements run on."""

    @abstractmethod
    def _executor(self) -> Executor:
        """The executor the repositories' statements run on."""

    async def _call(self, work: Callable[[Any], Awaitable[T]], target: Any) -> T:
        """``work(target)`` once, as one call of the unit."""
        state = self._state
        # begin_statement(), written out: this is every call's path
        if state.closed or state.failure is not None:
            state.check()  # raises
        state.statements += 1
        progress = self._progress
        progress.kind = None
        try:
            # what ``translating`` does, written out: this is every call's path
            try:
                return await work(target)
            except ContextStoreError:
                raise
            except Exception as error:
                raise translate(self._dialect, error, progress) from error
        except BaseException as error:
            state.fail(error, retry_safe=_retry_safe(error, progress))
            raise

    @abstractmethod
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested part of the unit (``SAVEPOINT``); see :func:`contextstore._unit.savepoint`."""

    @abstractmethod
    async def commit(self) -> None:
        """COMMIT the unit's transaction (errors are the driver's, untranslated)."""

    @abstractmethod
    async def roll_back(self, *, abandon: bool = False) -> None:
        """Roll the whole transaction back; never raises (the exception that caused
        the rollback is the one the caller must see). ``abandon``: the body was
        cancelled, and its connection is discarded instead (the server rolls
        the transaction back when it goes)."""


class UnitScope:
    """``ConnectionManager.unit_of_work``: the unit opened on entry, committed or
    rolled back on exit, every failure of its own recorded in the unit's state.

    A class rather than an ``asynccontextmanager``: every unit of work opens
    one, and an async generator costs the event loop's bookkeeping on top of
    the generator itself.
    """

    __slots__ = ("_manager", "_opening", "_progress", "_state", "_unit")

    def __init__(self, manager: ConnectionManager, state: UnitState) -> None:
        self._manager = manager
        self._state = state
        self._progress = Progress(write=True)
        self._opening: AbstractAsyncContextManager[UnitOfWork] | None = None
        self._unit: UnitOfWork | None = None

    async def __aenter__(self) -> UnitOfWork:
        manager, state, progress = self._manager, self._state, self._progress
        engine = manager.engine
        opening = _unit_on_connection if observed(engine) else _LeasedOpening
        try:
            scope = opening(manager, engine, state, progress)
            unit = await scope.__aenter__()
        except ContextStoreError as error:
            # checkout or BEGIN failed
            state.fail(error, retry_safe=_retry_safe(error, progress))
            state.closed = True
            raise
        except Exception as error:
            translated = translate(manager._dialect, error, progress)
            state.fail(translated, retry_safe=_retry_safe(translated, progress))
            state.closed = True
            raise translated from error
        except BaseException:
            state.closed = True
            raise
        self._opening, self._unit = scope, unit
        return unit

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        state, progress = self._state, self._progress
        opening, unit = self._opening, self._unit
        if opening is None or unit is None:
            raise RuntimeError("the unit of work was not entered")
        try:
            try:
                await self._end(unit, error)
            except BaseException as ended:
                if not await opening.__aexit__(type(ended), ended, ended.__traceback__):
                    raise
            else:
                await opening.__aexit__(None, None, None)
        except ContextStoreError as failure:
            if failure is not error and progress.committing:  # COMMIT failed
                state.fail(failure, retry_safe=_retry_safe(failure, progress))
            if failure is error:
                # the body's own exception leaves unchanged, with its own traceback
                error.__traceback__ = trace
                return
            raise
        except BaseException as failure:
            if failure is error:
                error.__traceback__ = trace
                return
            raise
        finally:
            state.closed = True

    async def _end(self, unit: UnitOfWork, error: BaseException | None) -> None:
        """What ends the unit inside its opening: the body's ``error`` re-raised
        after the rollback, a rollback for a failed statement, or the COMMIT."""
        if error is not None:
            # a cancelled or interrupted body: its connection may be
            # mid-statement, and is abandoned rather than reused
            await unit.roll_back(abandon=not isinstance(error, Exception))
            raise error
        if self._state.failure is not None:
            await unit.roll_back()
            raise ContextStoreError(
                "transaction rolled back: a statement inside it failed and the block "
                "went on; use 'async with tx.savepoint():' to recover from an error"
            ) from self._state.failure
        self._progress.committing = True
        with translating(self._manager._dialect, self._progress):
            await unit.commit()


class _LeasedOpening:
    """A unit of work's lease: taken and BEGIN sent on entry, given back on exit
    (reusable when its transaction ended cleanly). A class, not an async
    generator: every unit of work opens one."""

    __slots__ = ("_engine", "_manager", "_progress", "_state", "_unit")

    def __init__(
        self, manager: ConnectionManager, engine: AsyncEngine, state: UnitState, progress: Progress
    ) -> None:
        self._manager = manager
        self._engine = engine
        self._state = state
        self._progress = progress
        self._unit: LeasedUnit | None = None

    async def __aenter__(self) -> LeasedUnit:
        manager, progress = self._manager, self._progress
        lease = await manager._leases.acquire()
        unit = self._unit = LeasedUnit(manager, self._engine, lease, self._state, progress)
        try:
            try:
                with translating(manager._dialect, progress):
                    await lease.wire.begin()
            except ContextStoreError:
                # a BEGIN refused (SQLite's lock not granted in busy_timeout)
                # leaves the connection as it was
                unit.reusable = progress.kind not in LOST_KINDS
                raise
        except BaseException:
            await self._give_back(unit)
            raise
        progress.sent = True
        return unit

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._unit is not None:
            await self._give_back(self._unit)

    async def _give_back(self, unit: LeasedUnit) -> None:
        leases = self._manager._leases
        if not unit.reusable:
            leases.lost(self._progress.kind)
        await leases.release(unit.lease, reusable=unit.reusable)


class LeasedUnit(UnitOfWork):
    """A unit of work on a connection held by the execution core.

    The repositories' statements go to the driver connection; the caller's own
    Core statements (``tx.execute`` and the other statement methods) run on a
    SQLAlchemy Connection made over the same pooled connection on first use,
    inside the same transaction.
    """

    def __init__(
        self,
        manager: ConnectionManager,
        engine: AsyncEngine,
        lease: Lease,
        state: UnitState,
        progress: Progress,
    ) -> None:
        super().__init__(manager, state, progress)
        self._engine = engine
        self._lease = lease
        self._conn: AsyncConnection | None = None
        self._savepoints = 0
        #: the connection may serve the next call: a COMMIT or ROLLBACK got through
        self.reusable = False

    @property
    def lease(self) -> Lease:
        """The held connection."""
        return self._lease

    def _executor(self) -> Executor:
        return self._lease.executor

    async def run(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
    ) -> T:
        """Run ``work(conn)`` in the unit's transaction, once."""
        if self._conn is not None:
            return await self._call(work, self._conn)
        wire = self._lease.wire

        async def settled(conn: AsyncConnection) -> T:
            # the Connection made here sends no BEGIN of its own: a BEGIN the
            # wire still holds back goes first, or the caller's first
            # statement would run outside the unit's transaction (SQLite)
            await wire.settle()
            return await work(conn)

        return await self._call(settled, self._connection())

    def _connection(self) -> AsyncConnection:
        if self._conn is None:
            sync = Connection(self._engine.sync_engine, connection=self._lease.fairy)
            # the unit's transaction was begun on the wire: without write intent
            # SQLAlchemy's autobegin sends no BEGIN of its own (see each
            # dialect's begin hook). This Connection is never committed nor
            # closed: either would end the unit's transaction or give the held
            # connection back to the pool
            sync.execution_options(**{WRITE_INTENT: False})
            self._conn = AsyncConnection(self._engine, sync)
        return self._conn

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        self._savepoints += 1
        name = f"contextstore_savepoint_{self._savepoints}"

        async def begin() -> None:
            await self._step(f"SAVEPOINT {name}")

        async def release() -> None:
            await self._step(f"RELEASE SAVEPOINT {name}")

        async def undo() -> None:
            await self._step(f"ROLLBACK TO SAVEPOINT {name}")

        return savepoint(self._state, begin, release, undo)

    async def _step(self, sql: str) -> None:
        self._progress.kind = None
        with translating(self._dialect, self._progress):
            await self._lease.wire.execute(sql, None)

    async def commit(self) -> None:
        await self._lease.wire.commit()
        self.reusable = self._lease.fairy.is_valid

    async def roll_back(self, *, abandon: bool = False) -> None:
        if abandon or self._progress.kind in LOST_KINDS or not self._lease.fairy.is_valid:
            return  # discarded when given back
        with contextlib.suppress(Exception):
            await self._lease.wire.rollback()
            self.reusable = True


class ConnectionUnit(UnitOfWork):
    """A unit of work on a SQLAlchemy ``AsyncConnection`` (statements watched)."""

    def __init__(
        self,
        manager: ConnectionManager,
        conn: AsyncConnection,
        state: UnitState,
        progress: Progress,
    ) -> None:
        super().__init__(manager, state, progress)
        self._conn = conn

    def _connection(self) -> AsyncConnection:
        return self._conn

    def _executor(self) -> Executor:
        return ConnectionExecutor(self._conn)

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        nested: list[AsyncTransaction] = []

        async def begin() -> None:
            with translating(self._dialect, self._progress):
                nested.append(await self._conn.begin_nested())

        async def release() -> None:
            with translating(self._dialect, self._progress):
                await nested[0].commit()

        async def undo() -> None:
            with translating(self._dialect, self._progress):
                await nested[0].rollback()

        return savepoint(self._state, begin, release, undo)

    async def commit(self) -> None:
        await self._conn.commit()

    async def roll_back(self, *, abandon: bool = False) -> None:
        try:
            await self._conn.rollback()
        except Exception:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()


@asynccontextmanager
async def _unit_on_connection(
    manager: ConnectionManager, engine: AsyncEngine, state: UnitState, progress: Progress
) -> AsyncIterator[UnitOfWork]:
    async with manager._leases.slot(), engine.connect() as conn:
        with translating(manager._dialect, progress):
            await conn.execution_options(**{WRITE_INTENT: True})
            await conn.begin()
            await manager._prelude(conn)
        progress.sent = True
        yield ConnectionUnit(manager, conn, state, progress)
