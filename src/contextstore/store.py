"""Store: the facade services use; picks the core or legacy backend from settings.

The legacy module is imported here and nowhere else, only when
``settings.backend == "legacy"``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ._transaction import Transaction
from ._unit import Mapped, UnitState
from .connection import MAX_ATTEMPTS, RETRY_WINDOW, ConnectionManager, UnitOfWork
from .errors import ConfigurationError, ContextStoreError
from .models import HealthReport
from .repositories.audit import CoreAuditRepository
from .repositories.memory import CoreMemoryRepository
from .repositories.messages import CoreMessageRepository
from .repositories.participants import CoreParticipantRepository
from .repositories.sessions import CoreSessionRepository
from .repositories.table import TableRepository
from .settings import Settings

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Table

    from .repositories.protocols import (
        AuditRepository,
        MemoryRepository,
        MessageRepository,
        ParticipantRepository,
        SessionRepository,
    )

__all__ = ["Store", "Transaction"]

T = TypeVar("T")
R = TypeVar("R", bound="BaseModel")
_BACKOFF_BASE = 0.02


class _Backend(Protocol):
    """What both backends give the Store: five repositories, health and close."""

    sessions: SessionRepository
    messages: MessageRepository
    memory: MemoryRepository
    audit: AuditRepository
    participants: ParticipantRepository

    async def health(self, timeout: float) -> HealthReport: ...

    async def close(self) -> None: ...

    def unit_of_work(self, state: UnitState) -> AbstractAsyncContextManager[Any]:
        """Yields the unit's parts (``UnitParts``); the Store wraps them in a Transaction."""
        ...


class _CoreParts:
    """The core repositories of one unit of work, on its connection, each made
    when the unit first uses it."""

    def __init__(self, unit: UnitOfWork, state: UnitState) -> None:
        self.state = state
        self.statements = unit
        self.savepoint = unit.savepoint

    @property
    def sessions(self) -> SessionRepository:
        return CoreSessionRepository(self.statements)

    @property
    def messages(self) -> MessageRepository:
        return CoreMessageRepository(self.statements)

    @property
    def memory(self) -> MemoryRepository:
        return CoreMemoryRepository(self.statements)

    @property
    def audit(self) -> AuditRepository:
        return CoreAuditRepository(self.statements)

    @property
    def participants(self) -> ParticipantRepository:
        return CoreParticipantRepository(self.statements)


class _CoreBackend:
    """The SQLAlchemy Core repositories on one ConnectionManager."""

    def __init__(self, db: ConnectionManager) -> None:
        self.db = db
        self.sessions: SessionRepository = CoreSessionRepository(db)
        self.messages: MessageRepository = CoreMessageRepository(db)
        self.memory: MemoryRepository = CoreMemoryRepository(db)
        self.audit: AuditRepository = CoreAuditRepository(db)
        self.participants: ParticipantRepository = CoreParticipantRepository(db)

    async def health(self, timeout: float) -> HealthReport:
        return await self.db.health_check(timeout=timeout)

    def unit_of_work(self, state: UnitState) -> AbstractAsyncContextManager[_CoreParts]:
        return Mapped(self.db.unit_of_work(state), lambda unit: _CoreParts(unit, state))

    async def close(self) -> None:
        await self.db.dispose()


class Store:
    """Entry point: ``async with Store(Settings(...)) as store: ...``.

    Constructing a Store does no I/O; ``connect()`` opens the backend (and,
    with ``auto_migrate``, brings the schema to the newest revision).

    Args:
        settings: where and how to connect; ``None`` reads the environment.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._backend: _Backend | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "open" if self._backend else ("closed" if self._closed else "new")
        return f"<Store {self.backend} {self._settings.safe_url} ({state})>"

    @property
    def settings(self) -> Settings:
        """The settings this Store was built with."""
        return self._settings

    @property
    def backend(self) -> str:
        """``"core"`` or ``"legacy"``."""
        return self._settings.backend

    @property
    def dialect(self) -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        from ._dialects import dialect_for

        return dialect_for(self._settings.effective_database_url).name

    def _open(self) -> _Backend:
        if self._backend is not None:
            return self._backend
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        raise ContextStoreError(
            "Store is not connected; use 'async with Store(...)' or 'await store.connect()' first"
        )

    @property
    def db(self) -> ConnectionManager:
        """The core backend's ConnectionManager, for services' own Core statements.

        It runs on the same pool as the repositories. Raises
        ``ConfigurationError`` with backend ``"legacy"``, and
        ``ContextStoreError`` when the Store is not connected or closed.
        """
        backend = self._open()
        if not isinstance(backend, _CoreBackend):
            raise ConfigurationError("store.db exists only with backend 'core'")
        return backend.db

    @property
    def sessions(self) -> SessionRepository:
        """The sessions repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().sessions

    @property
    def messages(self) -> MessageRepository:
        """The messages repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().messages

    @property
    def memory(self) -> MemoryRepository:
        """The agent memory repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().memory

    @property
    def audit(self) -> AuditRepository:
        """The audit log repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().audit

    @property
    def participants(self) -> ParticipantRepository:
        """The participants repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().participants

    def table(self, table: Table, record: type[R]) -> TableRepository[R]:
        """A repository for one of the service's own tables: ``store.table(ideas, Idea)``.

        It runs on the same pool as the built-in repositories, with the same
        guarantees: validation before any SQL, typed errors, retries that
        never duplicate a write, timeouts, the three dialects. Inside a unit
        of work use ``tx.table(table, record)``. Cheap to call: what the
        pair needs is checked and built once per ``(table, record)``.

        Args:
            table: a SQLAlchemy ``Table`` of the service's own ``MetaData``,
                created in the database by the service (its own migrations,
                or ``metadata.create_all`` on ``store.db.engine``).
            record: a pydantic model whose field names are the table's column
                names; the primary key field may be None before insert.

        Returns:
            The repository of ``record`` rows in ``table``.

        Raises:
            ConfigurationError: the backend is ``legacy`` (it serves the five
                built-in tables only).
            ValidationError: ``record``'s fields are not the table's columns
                (a field without a column or a column without a field), the
                table has no primary key or is one of contextstore's own, or
                a column's default is a Python function.
            ContextStoreError: the Store is not connected or closed.
        """
        backend = self._open()
        if not isinstance(backend, _CoreBackend):
            raise ConfigurationError(
                "store.table exists only with backend 'core' "
                "(the legacy backend serves the five built-in tables only)"
            )
        return TableRepository(backend.db, table, record)

    async def connect(self) -> Store:
        """Open the backend (and migrate when ``auto_migrate``); returns self.

        Calling it again on a connected Store does nothing. On the legacy
        backend the file is migrated by the same revisions as on core (the
        legacy module itself only creates the baseline on an empty file).

        Returns:
            This Store, connected.

        Raises:
            DatabaseUnavailableError: the database cannot be reached (nothing
                is left open then).
            ConfigurationError: the driver refuses the settings.
            ContextStoreError: the Store was closed, or the schema cannot be
                migrated (nothing is left open then).
        """
        if self._backend is not None:
            return self
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        if self._settings.backend == "legacy":
            from .legacy import open_legacy

            legacy: Any = open_legacy(self._settings, head_revision=_head_revision())
            await legacy.connect()
            if self._settings.auto_migrate:
                # legacy creates the baseline on an empty file and never
                # migrates; core's migrations bring the file to the newest
                # revision, so both backends write the same columns
                # (``messages.search_text``, which legacy fills too)
                try:
                    await self._migrate_file()
                except BaseException:
                    await legacy.close()
                    raise
            self._backend = legacy
            return self
        db = ConnectionManager(self._settings)
        try:
            await self._prepare_schema(db)
        except BaseException:
            await db.dispose()
            raise
        self._backend = _CoreBackend(db)
        return self

    async def _migrate_file(self) -> None:
        """Bring the legacy backend's file to head through a core connection of its own."""
        db = ConnectionManager(self._settings)
        try:
            await self._prepare_schema(db)
        finally:
            await db.dispose()

    async def _prepare_schema(self, db: ConnectionManager) -> None:
        """Bring the schema to head when ``auto_migrate`` is on."""
        if not self._settings.auto_migrate:
            return
        from . import _migrations
        from .legacy import adopt_unversioned

        await _migrations.upgrade(db.engine, adopt=adopt_unversioned)

    async def close(self) -> None:
        """Release every connection; the Store cannot be used afterwards."""
        backend, self._backend = self._backend, None
        self._closed = True
        if backend is not None:
            await backend.close()

    async def health(self, timeout: float = 5.0) -> HealthReport:
        """Probe the database with a real round trip; never raises.

        Args:
            timeout: seconds to wait for the answer; the report comes back
                within it even when the server hangs. A timeout that is not a
                positive finite number (``nan``, ``0``, ``None``, ``"5"``) is
                reported in ``error``, not raised.

        Returns:
            The report: ``ok=False`` with ``error`` set when the database
            does not answer in time, fails, or the Store is not connected.
        """
        if self._backend is None:
            state = "closed" if self._closed else "not connected"
            return HealthReport(
                ok=False, backend=self.backend, dialect=self.dialect, error=f"Store is {state}"
            )
        return await self._backend.health(timeout)

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """One database transaction for several calls: ``async with store.transaction() as tx``.

        ``tx`` carries the five repositories and, on the core backend, the
        statement methods (``fetch_all``, ``fetch_one``, ``fetch_value``,
        ``execute``, ``execute_many``), all on the transaction's one
        connection. The transaction commits when the block ends; an exception
        inside rolls everything back and leaves the block unchanged. The body
        runs once and is never retried (see :meth:`run_transaction`). On
        SQLite the write lock is taken at BEGIN, so a unit of work never waits
        on itself, and two units on one file queue for the busy timeout.

        Returns:
            An async context manager yielding the :class:`Transaction`.

        Raises:
            ContextStoreError: the Store is not connected or closed; a call
                inside failed and the block went on (rolled back, not
                committed).
            DatabaseUnavailableError: the database could not be reached, or
                the connection was lost (``may_have_committed`` True only when
                it was lost during COMMIT).
        """
        return self._transaction(self._open(), UnitState())

    def _transaction(
        self, backend: _Backend, state: UnitState
    ) -> AbstractAsyncContextManager[Transaction]:
        def wrap(parts: Any) -> Transaction:
            return Transaction(parts, getattr(parts, "statements", None))

        return Mapped(backend.unit_of_work(state), wrap)

    async def run_transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run ``work(tx)`` in a fresh transaction, again from the start when that is safe.

        ``work`` is run again when the database rolled the transaction back
        (deadlock, serialization failure, SQLite busy, a Galera certification
        failure) or the connection was lost before COMMIT was sent, within the
        same bounds as every retry (a few attempts in a few seconds). It must
        therefore have no effects outside the database. A lost COMMIT
        acknowledgement is never re-run.

        Args:
            work: an async function of the :class:`Transaction`.

        Returns:
            What ``work`` returned, from the attempt that committed.

        Raises:
            DatabaseUnavailableError: attempts ran out, or COMMIT's outcome is
                unknown (``may_have_committed=True``).
            ContextStoreError: as for :meth:`transaction`; any other exception
                of ``work`` leaves unchanged, without a retry.
        """
        backend = self._open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_WINDOW
        attempt = 0
        while True:
            attempt += 1
            state = UnitState()
            try:
                async with self._transaction(backend, state) as tx:
                    return await work(tx)
            except ContextStoreError:
                delay = _BACKOFF_BASE * (2 ** (attempt - 1)) * (0.5 + random.random())
                if (
                    not state.retry_safe
                    or attempt >= MAX_ATTEMPTS
                    or loop.time() + delay > deadline
                ):
                    raise
            await asyncio.sleep(delay)

    async def __aenter__(self) -> Store:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _head_revision() -> str | None:
    """The newest schema revision, or None when the migration scripts cannot be read."""
    from . import _migrations

    try:
        return _migrations.head_revision()
    except Exception:
        return None
