"""``Transaction``: the handle of a unit of work (``async with store.transaction() as tx``).

It carries the five repositories and, on the core backend, the statement
methods, all bound to the unit's one connection. Every call goes through the
unit's :class:`~contextstore._unit.UnitState`, the same rules on both
backends: refused once the block has ended, refused after a call failed
inside the database, until a savepoint rolls back to before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from .errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping
    from sqlalchemy.sql import Executable

    from ._unit import UnitState
    from .repositories.protocols import (
        AuditRepository,
        MemoryRepository,
        MessageRepository,
        ParticipantRepository,
        SessionRepository,
    )

__all__ = ["Transaction", "UnitParts"]

R = TypeVar("R")


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
    """A repository whose every method call goes through the unit's rules."""

    def __init__(self, target: Any, state: UnitState) -> None:
        self._target = target
        self._state = state

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)
        if not callable(method):
            return method
        state = self._state

        async def guarded(*args: Any, **kwargs: Any) -> Any:
            with state.guarded():
                return await method(*args, **kwargs)

        # kept on the instance: the next call of this method skips __getattr__
        guarded.__name__ = name
        guarded.__doc__ = method.__doc__
        setattr(self, name, guarded)
        return guarded


def _guard(target: R, state: UnitState) -> R:
    return cast("R", _Guarded(target, state))


class Transaction:
    """One database transaction shared by several calls.

    Made by ``store.transaction()``; use it only inside that ``async with``
    block. Reads inside it see its own writes; nobody else sees them before
    COMMIT, which happens when the block ends without an exception.

    Attributes:
        sessions: the sessions repository, in this transaction.
        messages: the messages repository, in this transaction.
        memory: the agent memory repository, in this transaction.
        audit: the audit log repository, in this transaction.
        participants: the participants repository, in this transaction.
    """

    def __init__(self, parts: UnitParts, statements: _StatementRunner | None) -> None:
        state = parts.state
        self._parts = parts
        self._state = state
        self._statements = None if statements is None else _guard(statements, state)
        self.sessions: SessionRepository = _guard(parts.sessions, state)
        self.messages: MessageRepository = _guard(parts.messages, state)
        self.memory: MemoryRepository = _guard(parts.memory, state)
        self.audit: AuditRepository = _guard(parts.audit, state)
        self.participants: ParticipantRepository = _guard(parts.participants, state)

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
