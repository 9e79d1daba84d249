"""Every asyncpg call bounded in time, without a loop timer per call.

asyncpg's ``command_timeout`` bounds each call with a timer of its own
(``loop.call_later`` when the call starts, ``cancel`` when it ends). With
asyncio's loop that costs 4-5 µs of every statement, about 5% of a point read
on a local server: the timers of calls that already ended stay in the loop's
heap until they expire or are swept, so each new one is pushed into a heap of
hundreds, comparing ``TimerHandle`` objects in Python on the way.

Here the bound is kept by a watch instead, one per event loop (see
``_watch``). A call of a :class:`BoundedConnection` (every public method that
talks to the server, and the prepared statements and cursors it hands out)
writes its deadline in the watch when it starts and removes it when it ends.
When the watch finds a call past its deadline, the connection is terminated,
and that call raises :class:`TimeoutError`, the
error ``command_timeout`` raises. contextstore then treats it as it always
did: the statement timed out and the connection is discarded.

Only asyncpg's public API is used: ``connection_class`` is asyncpg's own way
of giving its connections more behaviour, and every method called on the
base class is public. A call made with an explicit ``timeout`` keeps asyncpg's
own timer as well.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable, Generator
from typing import Any, cast

import asyncpg
from asyncpg.cursor import Cursor, CursorFactory
from asyncpg.prepared_stmt import PreparedStatement

from ._watch import watch


def _bounded(cls: type, name: str) -> Callable[..., Awaitable[Any]]:
    """``cls``'s method ``name``, watched: a method of ``asyncpg.Connection`` for
    :class:`BoundedConnection`, or of a prepared statement or cursor for its
    :class:`_Proxy`. The method is looked up at each call, so it is the
    driver's even when replaced after import; one coroutine, with the watch
    written out, because it runs for every statement."""
    of_proxy = cls is not asyncpg.Connection

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = getattr(cls, name)
        target, connection = (self._target, self._connection) if of_proxy else (self, self)
        watch = connection.watch
        if not watch.enter(connection, connection.bound):
            return await method(target, *args, **kwargs)
        # a connection the watch closed as an answer arrived: this call fails
        # because it is closed, which is no timeout of this call
        expired_before = connection.expired
        try:
            return await method(target, *args, **kwargs)
        except Exception:
            if connection.expired and not expired_before:
                # not chained: what the driver saw is the close the watch
                # made, and a lost connection is what it would be taken for
                raise TimeoutError(
                    f"the server sent no answer within {connection.bound:g} s"
                ) from None
            raise
        finally:
            watch.leave(connection)

    return functools.wraps(getattr(cls, name))(call)


#: the public methods of ``asyncpg.Connection`` that wait on the server
_CONNECTION_CALLS = (
    "execute",
    "executemany",
    "fetch",
    "fetchval",
    "fetchrow",
    "fetchmany",
    "copy_from_table",
    "copy_from_query",
    "copy_to_table",
    "copy_records_to_table",
    "set_type_codec",
    "reset_type_codec",
    "set_builtin_type_codec",
    "reload_schema_state",
    "add_listener",
    "remove_listener",
    "reset",
    "close",
)


class BoundedConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg has no types
    """An asyncpg connection whose every call to the server ends within
    :attr:`bound` seconds (see the module's docstring); made by
    :func:`bounded_connection_class`."""

    __slots__ = ("expired", "watch")

    #: seconds a call may wait on the server
    bound: float = math.inf

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: the watch of the loop the connection was made on (asyncpg makes it
        #: inside ``connect``, on the running loop, which it is bound to)
        self.watch = watch()
        #: True once the watch ended a call that passed its deadline
        self.expired = False

    def expire(self) -> None:
        """End the call that passed its deadline: the connection is closed at once."""
        self.expired = True
        self.terminate()

    async def prepare(self, query: str, **kwargs: Any) -> _Statement:
        # the driver's prepare, watched; its statement, wrapped
        return _Statement(await _prepare(self, query, **kwargs), self)

    def cursor(self, query: str, *args: Any, **kwargs: Any) -> _Cursors:
        kwargs["timeout"] = kwargs.get("timeout") or self.bound
        return _Cursors(super().cursor(query, *args, **kwargs), self)


for _name in _CONNECTION_CALLS:
    setattr(BoundedConnection, _name, _bounded(asyncpg.Connection, _name))
_prepare = _bounded(asyncpg.Connection, "prepare")


class _Proxy:
    """Stands for an asyncpg object of a :class:`BoundedConnection`: its calls to
    the server are watched, everything else is the object's own."""

    __slots__ = ("_connection", "_target")

    def __init__(self, target: Any, connection: BoundedConnection) -> None:
        self._target = target
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _Statement(_Proxy):
    """A prepared statement of a :class:`BoundedConnection`."""

    __slots__ = ()

    def cursor(self, *args: Any, **kwargs: Any) -> _Cursors:
        kwargs["timeout"] = kwargs.get("timeout") or self._connection.bound
        return _Cursors(self._target.cursor(*args, **kwargs), self._connection)


for _name in ("fetch", "fetchval", "fetchrow", "fetchmany", "executemany", "explain"):
    setattr(_Statement, _name, _bounded(PreparedStatement, _name))


class _Cursors(_Proxy):
    """A cursor factory: iterated (``async for``), each fetch carries the bound
    as asyncpg's own ``timeout`` (one timer per batch of rows); awaited, it
    gives a cursor whose fetches are watched."""

    __slots__ = ()

    def __aiter__(self) -> Any:
        return self._target.__aiter__()

    def __await__(self) -> Generator[Any, None, _CursorProxy]:
        cursor = yield from cast(CursorFactory, self._target).__await__()
        return _CursorProxy(cursor, self._connection)


class _CursorProxy(_Proxy):
    """A cursor of a :class:`BoundedConnection`."""

    __slots__ = ()


for _name in ("fetch", "fetchrow", "forward"):
    setattr(_CursorProxy, _name, _bounded(Cursor, _name))
del _name


@functools.cache
def bounded_connection_class(bound: float) -> type[BoundedConnection]:
    """The :class:`BoundedConnection` class whose calls end within ``bound``
    seconds, for asyncpg's ``connection_class`` (one class per bound)."""
    # asyncpg's metaclass makes the class, as it made BoundedConnection
    metaclass: Any = type(BoundedConnection)
    made: type[BoundedConnection] = metaclass(
        "BoundedConnection", (BoundedConnection,), {"__slots__": (), "bound": bound}
    )
    return made
