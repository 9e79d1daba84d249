"""``Statements``: the statement methods, written once for the manager and its units of work.

``fetch_all``, ``fetch_one``, ``fetch_value``, ``execute`` and
``execute_many`` run a service's own Core statements; ``read_*`` run the
execution core's precompiled reads. Both are written over two entry points
that each implementation gives: ``run`` (work on a SQLAlchemy
``AsyncConnection``) and ``perform`` (work on an
:class:`~contextstore._execute.Executor`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ._execute import Executor, Query, writes

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql import Executable

__all__ = ["Statements"]

T = TypeVar("T")


class Statements:
    """The statement methods, written once over ``run``: the ConnectionManager's,
    and those of a unit of work (which runs them on its one connection)."""

    async def run(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[AsyncConnection], Awaitable[T | None]] | None = None,
    ) -> T:
        raise NotImplementedError

    async def perform(
        self,
        work: Callable[[Executor], Awaitable[T]],
        *,
        write: bool = True,
        idempotent: bool = False,
        autocommit: bool = False,
        recover: Callable[[Executor], Awaitable[T | None]] | None = None,
    ) -> T:
        """``run`` for work written on the execution core: ``work`` gets an
        :class:`~contextstore._execute.Executor` instead of a Connection. The
        options mean what they mean for ``run``."""
        raise NotImplementedError

    async def read_rows(self, query: Query, params: dict[str, Any] | None = None) -> Any:
        """Every row of a precompiled read ``query`` (a single read, retried where safe)."""

        async def work(executor: Executor) -> Any:
            return await executor.rows(query, params)

        return await self.perform(work, write=False)

    async def read_row(self, query: Query, params: dict[str, Any] | None = None) -> Any:
        """The first row of a precompiled read ``query``, or None."""

        async def work(executor: Executor) -> Any:
            return await executor.row(query, params)

        return await self.perform(work, write=False)

    async def read_value(self, query: Query, params: dict[str, Any] | None = None) -> Any:
        """The first value of a precompiled read ``query``, or None."""

        async def work(executor: Executor) -> Any:
            return await executor.value(query, params)

        return await self.perform(work, write=False)

    async def fetch_all(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> list[RowMapping]:
        """Every row of ``stmt`` (with bind ``params``, if any) as mappings.

        A plain SELECT runs as a read, anything else in a transaction;
        retried as a whole where that is safe.

        Args:
            stmt: a Core statement.
            params: values for its bind parameters.

        Returns:
            The rows, each a ``RowMapping`` (column name to value).

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (``PoolExhaustedError``: no free connection within
                ``pool_timeout``); ``may_have_committed`` tells whether a
                write may have landed.
            ContextStoreError: the manager is closed, or the statement failed
                (``ConflictError``, ``NotFoundError`` and ``ValidationError``
                where the database refused it for those reasons).
        """

        async def work(conn: AsyncConnection) -> list[RowMapping]:
            return list((await conn.execute(stmt, params)).mappings().all())

        return await self.run(work, write=writes(stmt))

    async def fetch_one(
        self, stmt: Executable, params: dict[str, Any] | None = None
    ) -> RowMapping | None:
        """The first row of ``stmt``, or None.

        Args:
            stmt: a Core statement.
            params: values for its bind parameters.

        Returns:
            The first row as a ``RowMapping``, or None when there is none.

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (``PoolExhaustedError``: no free connection within
                ``pool_timeout``); ``may_have_committed`` tells whether a
                write may have landed.
            ContextStoreError: the manager is closed, or the statement failed
                (``ConflictError``, ``NotFoundError`` and ``ValidationError``
                where the database refused it for those reasons).
        """

        async def work(conn: AsyncConnection) -> RowMapping | None:
            return (await conn.execute(stmt, params)).mappings().first()

        return await self.run(work, write=writes(stmt))

    async def fetch_value(self, stmt: Executable, params: dict[str, Any] | None = None) -> Any:
        """The first column of the first row of ``stmt``, or None.

        Args:
            stmt: a Core statement.
            params: values for its bind parameters.

        Returns:
            The value, or None when there is no row.

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (``PoolExhaustedError``: no free connection within
                ``pool_timeout``); ``may_have_committed`` tells whether a
                write may have landed.
            ContextStoreError: the manager is closed, or the statement failed
                (``ConflictError``, ``NotFoundError`` and ``ValidationError``
                where the database refused it for those reasons).
        """

        async def work(conn: AsyncConnection) -> Any:
            return (await conn.execute(stmt, params)).scalar()

        return await self.run(work, write=writes(stmt))

    async def execute(self, stmt: Executable, params: dict[str, Any] | None = None) -> int:
        """Run one statement in its own transaction; return the rows affected.

        Retried only while nothing can have been committed.

        Args:
            stmt: a Core statement (INSERT, UPDATE, DELETE, DDL...).
            params: values for its bind parameters.

        Returns:
            The number of rows affected, as the driver reports it.

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (``PoolExhaustedError``: no free connection within
                ``pool_timeout``); ``may_have_committed`` tells whether a
                write may have landed.
            ContextStoreError: the manager is closed, or the statement failed
                (``ConflictError``, ``NotFoundError`` and ``ValidationError``
                where the database refused it for those reasons).
        """

        async def work(conn: AsyncConnection) -> int:
            return (await conn.execute(stmt, params)).rowcount

        return await self.run(work, write=True)

    async def execute_many(self, stmt: Executable, rows: Sequence[dict[str, Any]]) -> int:
        """Run ``stmt`` for every parameter set in one transaction (batched round trips).

        All or nothing; an empty ``rows`` returns 0 without touching the database.

        Args:
            stmt: a Core statement with bind parameters.
            rows: one dict of parameter values per execution.

        Returns:
            The rows affected (``len(rows)`` where the driver does not report it).

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (``PoolExhaustedError``: no free connection within
                ``pool_timeout``); ``may_have_committed`` tells whether a
                write may have landed.
            ContextStoreError: the manager is closed, or the statement failed
                (``ConflictError``, ``NotFoundError`` and ``ValidationError``
                where the database refused it for those reasons).
        """
        if not rows:
            return 0
        batch = list(rows)

        async def work(conn: AsyncConnection) -> int:
            count = (await conn.execute(stmt, batch)).rowcount
            return count if count is not None and count >= 0 else len(batch)

        return await self.run(work, write=True)
