"""``Transaction``: the handle of a unit of work (``async with store.transaction() as tx``).

It carries the five repositories and, on the core backend, the statement
methods and ``table(table, record)``, all bound to the unit's one
connection. Every call goes through the unit's
:class:`~contextstore._unit.UnitState`, the same rules on both backends:
refused once the block has ended, refused after a call failed inside the
database, until a savepoint rolls back to before it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from .errors import ConfigurationError
from .repositories.table import TableRepository

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Table
    from sqlalchemy.engine import RowMapping
    from sqlalchemy.sql import Executable

    from ._unit import UnitState
    from ._work import UnitOfWork
    from .repositories.protocols import (
        AuditRepository,
        MemoryRepository,
        MessageRepository,
        ParticipantRepository,
        SessionRepository,
    )

__all__ = ["Transaction", "UnitParts"]

R = TypeVar("R")
M = TypeVar("M", bound="BaseModel")


class UnitParts(Protocol):
    """What a backend hands over for one open unit of work."""

    state: UnitState
    sessions: SessionRepository
    messages: MessageRepository
    memory: MemoryRepository
    audit: AuditRepository
    participants: ParticipantRepository

    def savepoint(self) -> AbstractAsyncContextManager[None]: ...


class _StatementRunner(Protocol):
    async def fetch_all(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> list[RowMapping]: ...

    async def fetch_one(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> RowMapping | None: ...

    async def fetch_value(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any: ...

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> int: ...

    async def execute_many(self, stmt: Executable, rows: Sequence[dict[str, Any]]) -> int: ...


class _Guarded:
    """A repository whose every method call goes through the unit's rules.

    Made per unit of work, so it costs nothing to make: each repository class
    gets one subclass (see :func:`_guarded_class`) whose methods are written
    once, instead of a closure per method per unit.
    """

    __slots__ = ("_state", "_target")

    def __init__(self, target: Any, state: UnitState) -> None:
        self._target = target
        self._state = state

    def __getattr__(self, name: str) -> Any:
        # what is not a coroutine method (an attribute, a property) is the target's
        return getattr(self._target, name)


def _guarded_method(name: str, doc: str | None) -> Callable[..., Awaitable[Any]]:
    async def guarded(self: _Guarded, *args: Any, **kwargs: Any) -> Any:
        return await self._state.call(getattr(self._target, name), *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = doc
    return guarded


@functools.cache
def _guarded_class(cls: type) -> type[_Guarded]:
    """The :class:`_Guarded` subclass for repositories of class ``cls``."""
    methods = {
        name: _guarded_method(name, getattr(cls, name).__doc__)
        for name in dir(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(getattr(cls, name))
    }
    return type(f"Guarded{cls.__name__}", (_Guarded,), {"__slots__": (), **methods})


def _guard(target: R, state: UnitState) -> R:
    kind: type = type(target)
    return cast("R", _guarded_class(kind)(target, state))


class Transaction:
    """One database transaction shared by several calls.

    Made by ``store.transaction()``; use it only inside that ``async with``
    block. Reads inside it see its own writes; nobody else sees them before
    COMMIT, which happens when the block ends without an exception.
    """

    def __init__(self, parts: UnitParts, statements: _StatementRunner | None) -> None:
        state = parts.state
        self._parts = parts
        self._state = state
        #: the unit's own statement methods, unguarded (the table repositories
        #: run on them and are guarded themselves)
        self._unit = statements
        self._statements = None if statements is None else _guard(statements, state)

    # each repository is guarded on first use (a unit uses few of the five) and
    # is then an attribute of the instance: later uses cost no call at all

    @functools.cached_property
    def sessions(self) -> SessionRepository:
        """The sessions repository, in this transaction."""
        return _guard(self._parts.sessions, self._state)

    @functools.cached_property
    def messages(self) -> MessageRepository:
        """The messages repository, in this transaction."""
        return _guard(self._parts.messages, self._state)

    @functools.cached_property
    def memory(self) -> MemoryRepository:
        """The agent memory repository, in this transaction."""
        return _guard(self._parts.memory, self._state)

    @functools.cached_property
    def audit(self) -> AuditRepository:
        """The audit log repository, in this transaction."""
        return _guard(self._parts.audit, self._state)

    @functools.cached_property
    def participants(self) -> ParticipantRepository:
        """The participants repository, in this transaction."""
        return _guard(self._parts.participants, self._state)

    def table(self, table: Table, record: type[M]) -> TableRepository[M]:
        """A repository for one of the service's own tables, in this transaction.

        The same as ``store.table(table, record)`` (see there), on the
        transaction's connection: its writes commit with the rest of the
        unit, or roll back with it.

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ValidationError: ``record`` does not fit ``table`` (see ``store.table``).
            ContextStoreError: the transaction is closed or has failed.
        """
        self._state.check()
        if self._unit is None:
            raise ConfigurationError(
                "tx.table exists only with backend 'core' "
                "(the legacy backend serves the five built-in tables only)"
            )
        unit = cast("UnitOfWork", self._unit)
        return _guard(TableRepository(unit, table, record), self._state)

    def __repr__(self) -> str:
        state = "closed" if self._state.closed else "failed" if self._state.failure else "open"
        return f"<Transaction ({state})>"

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested part of the transaction: ``async with tx.savepoint(): ...``.

        An exception inside the block rolls back only the work done since the
        savepoint and is re-raised; the transaction goes on as before it. This
        is also how a unit of work recovers from a failed call: a call that
        fails inside the database fails the whole transaction unless it ran
        inside a savepoint. A failure that the block catches itself rolls the
        savepoint's part back too.

        Raises:
            ContextStoreError: the transaction is closed or has failed.
        """
        self._state.check()
        return self._parts.savepoint()

    def _runner(self) -> _StatementRunner:
        self._state.check()
        if self._statements is None:
            raise ConfigurationError(
                "statement methods on a transaction exist only with backend 'core'"
            )
        return self._statements

    async def fetch_all(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> list[RowMapping]:
        """Every row of ``stmt``, in this transaction (see ``ConnectionManager.fetch_all``).

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ContextStoreError: the transaction is closed or has failed, or the
                statement failed (translated as by the ConnectionManager).
        """
        return await self._runner().fetch_all(stmt, params)

    async def fetch_one(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> RowMapping | None:
        """The first row of ``stmt`` or None, in this transaction.

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ContextStoreError: the transaction is closed or has failed, or the
                statement failed.
        """
        return await self._runner().fetch_one(stmt, params)

    async def fetch_value(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row of ``stmt`` or None, in this transaction.

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ContextStoreError: the transaction is closed or has failed, or the
                statement failed.
        """
        return await self._runner().fetch_value(stmt, params)

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> int:
        """Run one statement in this transaction; return the rows affected.

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ContextStoreError: the transaction is closed or has failed, or the
                statement failed.
        """
        return await self._runner().execute(stmt, params)

    async def execute_many(self, stmt: Executable, rows: Sequence[dict[str, Any]]) -> int:
        """Run ``stmt`` for every parameter set in ``rows``, in this transaction.

        Raises:
            ConfigurationError: the backend is ``legacy``.
            ContextStoreError: the transaction is closed or has failed, or a
                statement failed.
        """
        return await self._runner().execute_many(stmt, rows)
