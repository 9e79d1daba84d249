"""aiomysql (0.2-0.3) shims: a bound on every wait for the server.

Quarantined here because aiomysql has no read timeout, and its connect timeout
covers only the TCP connect: :func:`connect_within_timeout` bounds the
handshake around aiomysql's private ``Connection._connect``. Every later wait
is bounded with public names only: the methods of ``aiomysql.Connection`` that
wait for a reply (and the fetches of its unbuffered cursors) are watched by
the loop's :class:`~contextstore._dialects._watch.Watch`, as asyncpg's calls
are. ``tests/dialects/test_aiomysql_bound.py`` and the frozen-server fault
tests show the bounds hold; remove a shim when aiomysql offers the bound
itself. The canaries in ``tests/dialects/test_driver_shims.py``:

* ``test_aiomysql_still_has_no_read_timeout`` fails when aiomysql gains a
  timeout parameter or attribute besides ``connect_timeout``: then revisit
  ``BoundedConnection``;
* ``test_aiomysql_connect_timeout_still_covers_only_the_tcp_connect`` fails
  when ``connect_timeout`` bounds the handshake too: then revisit
  :func:`connect_within_timeout`;
* ``test_aiomysql_private_names_the_shims_use`` fails when aiomysql renames or
  reshapes ``_connect`` or ``connect_timeout``;
* ``test_aiomysql_waits_only_in_the_watched_methods`` fails when aiomysql
  gains a public coroutine method that BoundedConnection does not watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .._watch import watch

__all__ = [
    "CR_CONN_HOST_ERROR",
    "CR_SERVER_LOST",
    "READ_TIMEOUT_ARG",
    "WATCHED_CONNECTION_CALLS",
    "WATCHED_CURSOR_CALLS",
    "connect_within_timeout",
]

#: CR_CONN_HOST_ERROR, what aiomysql raises when it cannot connect.
CR_CONN_HOST_ERROR = 2003
#: CR_SERVER_LOST, what aiomysql raises when the server closes the connection.
CR_SERVER_LOST = 2013
#: connect_args key (removed before aiomysql sees it): seconds any one reply may take.
READ_TIMEOUT_ARG = "contextstore_read_timeout"

#: the public methods of ``aiomysql.Connection`` that wait for the server (its
#: handshake's own, ``*_auth``, run inside ``_connect``; ``ensure_closed``
#: waits for no reply)
WATCHED_CONNECTION_CALLS = (
    "autocommit",
    "begin",
    "commit",
    "kill",
    "next_result",
    "ping",
    "query",
    "rollback",
    "select_db",
    "set_charset",
    "show_warnings",
)
#: the public methods of an unbuffered cursor (``SSCursor``) that read rows
#: after its ``execute`` (which reads through ``Connection.query``)
WATCHED_CURSOR_CALLS = ("close", "fetchall", "fetchmany", "fetchone", "nextset", "scroll")


def _watched(method: Callable[..., Awaitable[Any]], *, of_cursor: bool) -> Any:
    """``method`` of a connection (or of one of its unbuffered cursors), with its
    wait for the server bounded by the connection's ``read_timeout``. One
    coroutine, with the watch written out, because it runs for every statement."""

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        connection = self.connection if of_cursor else self
        bound = None if connection is None else connection.read_timeout
        if bound is None or not connection.watch.enter(connection, bound):
            # unbounded, or called by another watched method: its deadline stands
            return await method(self, *args, **kwargs)
        task = connection.waiter = asyncio.current_task()
        expired_before = connection.expired
        try:
            return await method(self, *args, **kwargs)
        except asyncio.CancelledError:
            # the watch cancelled this call (and closed the connection), unless
            # the caller cancelled it too: then the cancellation goes on
            if (
                task is not None
                and connection.expired
                and not expired_before
                and task.uncancel() == 0
            ):
                from pymysql.err import OperationalError

                raise OperationalError(
                    CR_SERVER_LOST,
                    f"Lost connection to MySQL server: no reply within {bound:g} s",
                ) from TimeoutError(f"no reply within {bound:g} s")
            raise
        finally:
            connection.watch.leave(connection)
            connection.waiter = None

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = method.__doc__
    return call


def _bounded_connection_class() -> type[Any]:
    """aiomysql's Connection with a bound on every wait for the server.

    aiomysql has no read timeout: a server that stops answering (SIGSTOP, a
    dead network path) would hold a statement, a COMMIT or a ping forever.
    Here each call that waits for a reply is watched; past its bound the
    connection is closed, the call cancelled, and the error is aiomysql's own
    "Lost connection" (CR_SERVER_LOST), caused by a :class:`TimeoutError`, so
    SQLAlchemy discards the connection and the retry policy treats it like any
    other lost connection that hung.
    """
    import aiomysql
    from aiomysql.cursors import SSCursor

    watched_cursors: dict[type[Any], type[Any]] = {}

    def watched_cursor(cls: type[Any]) -> type[Any]:
        made = watched_cursors.get(cls)
        if made is None:
            calls = {
                name: _watched(getattr(cls, name), of_cursor=True) for name in WATCHED_CURSOR_CALLS
            }
            made = watched_cursors[cls] = type(cls.__name__, (cls,), calls)
        return made

    class BoundedConnection(aiomysql.Connection):  # type: ignore[misc]
        read_timeout: float | None = None
        #: True once the watch ended a call that passed its deadline
        expired = False
        #: the task of the watched call in progress
        waiter: asyncio.Task[Any] | None = None

        def expire(self) -> None:
            """End the watched call, which passed its deadline: the connection is
            closed and the call's task cancelled (the read it waits on ends)."""
            self.expired = True
            self.close()
            if self.waiter is not None:
                self.waiter.cancel()

        def cursor(self, *cursors: type[Any]) -> Any:
            # an unbuffered cursor reads its rows after execute: watched too
            if self.read_timeout is not None and cursors:
                cursors = tuple(
                    watched_cursor(each) if issubclass(each, SSCursor) else each for each in cursors
                )
            return super().cursor(*cursors)

    for name in WATCHED_CONNECTION_CALLS:
        setattr(
            BoundedConnection, name, _watched(getattr(aiomysql.Connection, name), of_cursor=False)
        )
    return BoundedConnection


_BOUNDED_CONNECTION: type[Any] | None = None


async def connect_within_timeout(*args: Any, **kwargs: Any) -> Any:
    """``aiomysql.connect`` with ``connect_timeout`` covering the whole handshake.

    aiomysql applies ``connect_timeout`` to opening the TCP connection only, so
    a server that accepts the connection but never sends its greeting would
    hold a pool checkout forever. It also closes the socket only on
    ``Exception``; here it is closed on cancellation too (no leaked transport).
    A timeout is reported the way aiomysql reports a TCP timeout. The
    connection returned bounds every later wait for the server too (see
    :func:`_bounded_connection_class`).
    """
    from pymysql.err import OperationalError

    global _BOUNDED_CONNECTION
    if _BOUNDED_CONNECTION is None:
        _BOUNDED_CONNECTION = _bounded_connection_class()
    read_timeout = kwargs.pop(READ_TIMEOUT_ARG, None)
    timeout = kwargs.get("connect_timeout")
    connection = _BOUNDED_CONNECTION(*args, **kwargs)
    # the bound below covers the TCP connect too: aiomysql's own
    # asyncio.wait_for around it can swallow a cancellation that arrives as the
    # connection completes (Python 3.11, gh-86296), and the task would go on
    connection.connect_timeout = None
    try:
        async with asyncio.timeout(timeout):
            await connection._connect()
    except TimeoutError as exc:
        connection.close()
        host = kwargs.get("host")
        raise OperationalError(
            CR_CONN_HOST_ERROR,
            f"Can't connect to MySQL server on {host!r} (no handshake within {timeout:g} s)",
        ) from exc
    except BaseException:
        connection.close()
        raise
    connection.watch = watch()
    connection.read_timeout = read_timeout
    return connection
