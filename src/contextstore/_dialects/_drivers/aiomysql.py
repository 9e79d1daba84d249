"""aiomysql (0.2-0.3) shims: a bound on every wait for the server.

Quarantined here because they use aiomysql's private ``Connection._connect``,
``_read_bytes`` and ``_reader._buffer``: aiomysql has no public read timeout,
and its connect timeout covers only the TCP connect. ``tests/dialects/test_mysql.py``
and the frozen-server fault tests show the bounds hold; remove a shim when
aiomysql offers the bound itself. The canaries in
``tests/dialects/test_driver_shims.py``:

* ``test_aiomysql_still_has_no_read_timeout`` fails when aiomysql gains a
  timeout parameter or attribute besides ``connect_timeout``: then revisit
  ``BoundedConnection`` (the ``_read_bytes`` bound);
* ``test_aiomysql_connect_timeout_still_covers_only_the_tcp_connect`` fails
  when ``connect_timeout`` bounds the handshake too: then revisit
  :func:`connect_within_timeout`;
* ``test_aiomysql_private_names_the_shims_use`` fails when aiomysql renames or
  reshapes ``_connect``, ``connect_timeout``, ``_read_bytes``, ``_reader`` or
  ``_reader._buffer``, or stops reading replies through ``_read_bytes``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["CR_CONN_HOST_ERROR", "CR_SERVER_LOST", "READ_TIMEOUT_ARG", "connect_within_timeout"]

#: CR_CONN_HOST_ERROR, what aiomysql raises when it cannot connect.
CR_CONN_HOST_ERROR = 2003
#: CR_SERVER_LOST, what aiomysql raises when the server closes the connection.
CR_SERVER_LOST = 2013
#: connect_args key (removed before aiomysql sees it): seconds any one reply may take.
READ_TIMEOUT_ARG = "contextstore_read_timeout"


def _bounded_connection_class() -> type[Any]:
    """aiomysql's Connection with a bound on every wait for the server.

    aiomysql has no read timeout: a server that stops answering (SIGSTOP, a
    dead network path) would hold a statement, a COMMIT or a ping forever.
    Here each wait for bytes that are not already buffered is bounded; past it
    the socket is closed and the error is aiomysql's own "Lost connection"
    (CR_SERVER_LOST), so SQLAlchemy discards the connection and the retry
    policy treats it like any other lost connection.
    """
    import aiomysql
    from pymysql.err import OperationalError

    class BoundedConnection(aiomysql.Connection):  # type: ignore[misc]
        read_timeout: float | None = None

        def _read_bytes(self, num_bytes: int) -> Awaitable[bytes]:
            # a plain method handing back aiomysql's own coroutine when the
            # bytes are buffered already (most reads of a reply): a row's
            # reply is read in dozens of pieces, and a wrapping coroutine
            # would cost a frame for each
            reader = self._reader
            if (
                self.read_timeout is None
                or reader is None
                or len(reader._buffer) >= num_bytes  # already here: no timer needed
            ):
                return super()._read_bytes(num_bytes)  # type: ignore[no-any-return]
            return self._read_bytes_within(num_bytes, self.read_timeout)

        async def _read_bytes_within(self, num_bytes: int, timeout: float) -> bytes:
            try:
                async with asyncio.timeout(timeout):
                    return await super()._read_bytes(num_bytes)  # type: ignore[no-any-return]
            except TimeoutError as exc:
                self.close()
                raise OperationalError(
                    CR_SERVER_LOST,
                    f"Lost connection to MySQL server: no reply within {timeout:g} s",
                ) from exc

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
    connection.read_timeout = read_timeout
    return connection
