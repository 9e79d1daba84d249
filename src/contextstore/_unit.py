"""The rules of a unit of work's lifetime, shared by the core and legacy backends.

A unit of work is one database transaction that several repository calls (and,
on core, a service's own statements) run in. Both backends enforce the same
rules with this one state object:

* after its ``async with`` block has ended it refuses every call
  ("transaction is closed");
* once a call inside it has failed after reaching the database it refuses
  every later call and can only roll back (a call refused before any SQL, by
  input validation say, changes nothing). A half-done repository call (the first statements of an
  ``add_many`` or a ``sessions.delete``) must never be committed, and
  PostgreSQL refuses further statements after an error anyway; refusing them
  everywhere keeps the backends alike. A savepoint (``tx.savepoint()``) rolls
  back to its start and clears a failure that happened inside it, which is
  how a caller recovers from an error within a unit of work;
* after a failure it knows whether running the whole unit again is safe (the
  database rolled the transaction back, or the connection failed before
  COMMIT was sent): ``store.run_transaction`` asks it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar

from .errors import ContextStoreError

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

__all__ = ["Mapped", "UnitState", "savepoint"]


class UnitState:
    """Open, failed or closed; and whether the failure allows a fresh attempt."""

    def __init__(self) -> None:
        self.closed = False
        #: the first error raised by a statement of this unit, if any
        self.failure: BaseException | None = None
        #: the failure left nothing committed and a fresh unit may succeed
        self.retry_safe = False
        #: calls that reached the database: a failed call changed it only if
        #: it raised this count
        self.statements = 0

    def check(self) -> None:
        """Raise unless calls are still allowed.

        Raises:
            ContextStoreError: the unit has ended, or a statement in it failed.
        """
        if self.closed:
            raise ContextStoreError(
                "transaction is closed: use tx only inside its 'async with' block"
            )
        if self.failure is not None:
            raise ContextStoreError(
                "transaction failed earlier and can only roll back; use "
                "'async with tx.savepoint():' around a call whose error you handle"
            ) from self.failure

    def begin_statement(self) -> None:
        """:meth:`check`, then count a call that reaches the database."""
        self.check()
        self.statements += 1

    def fail(self, error: BaseException, *, retry_safe: bool = False) -> None:
        """Record that a statement failed (the first failure is kept)."""
        if self.failure is None:
            self.failure = error
            self.retry_safe = retry_safe

    async def call(self, method: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """One repository or statement call of the unit: check first, and fail
        the unit when the call raises after reaching the database."""
        if self.closed or self.failure is not None:
            self.check()  # raises
        before = self.statements
        try:
            return await method(*args, **kwargs)
        except BaseException as error:
            if self.statements != before:
                self.fail(error)
            raise

    def mark(self) -> BaseException | None:
        """The failure state at a savepoint's start, for :meth:`restore`."""
        return self.failure

    def restore(self, mark: BaseException | None) -> None:
        """Back to the state at a savepoint's start, after rolling back to it."""
        self.failure = mark
        if mark is None:
            self.retry_safe = False


Step = Callable[[], Awaitable[None]]


@asynccontextmanager
async def savepoint(
    state: UnitState, begin: Step, release: Step, undo: Step
) -> AsyncIterator[None]:
    """The savepoint rules on both backends, given the backend's three steps.

    ``begin`` sets the savepoint, ``release`` keeps its work, ``undo`` rolls
    back to it and drops it; each raises a contextstore error on failure. On
    an exception inside, the part is undone and the exception re-raised, and
    the unit goes on as before the savepoint. A failure inside that the block
    handled itself undoes the part too, silently: its statements cannot be
    trusted. When undoing is impossible (a lost connection) the unit fails.
    """
    state.check()
    mark = state.mark()
    await _recorded(state, begin)
    try:
        yield
    except BaseException:
        if await _undone(state, undo):
            state.restore(mark)
        raise
    if state.failure is not mark:
        if not await _undone(state, undo):
            state.check()  # raises: the unit is lost
        state.restore(mark)
        return
    await _recorded(state, release)


async def _recorded(state: UnitState, step: Step) -> None:
    try:
        await step()
    except BaseException as error:
        state.fail(error)
        raise


async def _undone(state: UnitState, undo: Step) -> bool:
    try:
        await undo()
    except Exception as error:
        state.fail(error)
        return False
    return True


class Mapped(Generic[A, B]):
    """``inner`` with what it yields passed through ``wrap``: the same enter and
    exit as ``inner``.

    A class rather than an ``asynccontextmanager``: every unit of work goes
    through these layers, and each async generator costs the event loop's
    bookkeeping of async generators on top of the generator itself.
    """

    __slots__ = ("_inner", "_wrap")

    def __init__(self, inner: AbstractAsyncContextManager[A], wrap: Callable[[A], B]) -> None:
        self._inner: AbstractAsyncContextManager[Any] = inner
        self._wrap: Callable[[Any], B] = wrap
        if isinstance(inner, Mapped):
            # one layer for a mapping of a mapping: the store's over the backend's
            first: Callable[[Any], Any] = inner._wrap
            self._inner = inner._inner

            def composed(value: Any) -> B:
                return wrap(first(value))

            self._wrap = composed

    async def __aenter__(self) -> B:
        value = await self._inner.__aenter__()
        try:
            return self._wrap(value)
        except BaseException:
            await self._inner.__aexit__(*sys.exc_info())
            raise

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        return await self._inner.__aexit__(kind, error, trace)
