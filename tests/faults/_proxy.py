"""A loopback TCP proxy in front of a database server that injects network faults.

It runs its own event loop in a thread, so a stalled or busy test loop never
stalls the proxy (and the other way round). Faults:

* :meth:`FaultProxy.cut` aborts every open connection (both sides, RST);
* :meth:`FaultProxy.stall` stops forwarding in both directions, like a hung
  server or network: connections stay open, bytes are held (new connections
  are accepted but get no greeting); :meth:`FaultProxy.resume` delivers them;
* :meth:`FaultProxy.drop_commits` follows the protocol both ways (PostgreSQL
  messages, MySQL packets), lets a write and its COMMIT reach the server, and
  when the server's answer says the write is committed (PostgreSQL
  ``ReadyForQuery`` back to idle, MySQL OK packet without
  ``SERVER_STATUS_IN_TRANS``) throws that answer away and aborts the
  connection: the client cannot know whether its write landed. This covers an
  explicit COMMIT and a single statement committed in autocommit alike.

:class:`ProxyStats` counts what was really done, so a test can assert that the
fault it wanted did happen.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

T = TypeVar("T")

_PG_SSL_REQUEST = 80877103
_PG_GSSENC_REQUEST = 80877104
_PG_CANCEL_REQUEST = 80877102
_MYSQL_COM_QUERY = 0x03
_MYSQL_STATUS_IN_TRANS = 0x0001
_WRITE_WORDS = {b"INSERT", b"UPDATE", b"DELETE", b"REPLACE", b"MERGE", b"COPY"}


@dataclass
class ProxyStats:
    accepted: int = 0
    #: connections aborted by :meth:`FaultProxy.cut`.
    cut: int = 0
    #: server acknowledgements of a committed write (COMMIT or autocommit statement).
    commits_seen: int = 0
    #: of those, thrown away (the connection aborted instead).
    commits_dropped: int = 0
    #: connections the client closed while the proxy was stalled (it gave up on them).
    closed_by_client_while_stalled: int = 0
    stalls: int = 0


class _PostgresWire:
    """Follows one PostgreSQL connection in both directions and spots a committed write.

    Client side: a ``Q`` (simple query) or a ``B`` (bind of a statement whose
    ``P`` parse text was an INSERT/UPDATE/DELETE) marks the connection dirty;
    ``ROLLBACK`` clears it. Server side: a ``ReadyForQuery`` with status ``I``
    (idle: no transaction open) after a dirty, error-free exchange means a write
    was just committed, by an explicit COMMIT or by a statement in autocommit.
    """

    def __init__(self) -> None:
        self._from_client = bytearray()
        self._from_server = bytearray()
        self._typed = False  # after the startup packet every message has a type byte
        self._ssl_answers = 0  # one-byte answers the server owes to SSL/GSS requests
        self._statements: dict[bytes, bool] = {}
        self._dirty = False
        self._failed = False

    def client(self, data: bytes) -> None:
        buffer = self._from_client
        buffer.extend(data)
        while True:
            if not self._typed:
                if len(buffer) < 8:
                    return
                (length,) = struct.unpack("!i", buffer[:4])
                if len(buffer) < length:
                    return
                (code,) = struct.unpack("!i", buffer[4:8])
                del buffer[:length]
                if code in (_PG_SSL_REQUEST, _PG_GSSENC_REQUEST):
                    self._ssl_answers += 1
                elif code != _PG_CANCEL_REQUEST:
                    self._typed = True  # the StartupMessage itself
                continue
            if len(buffer) < 5:
                return
            kind = buffer[0:1]
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                return
            body = bytes(buffer[5 : 1 + length])
            del buffer[: 1 + length]
            if kind == b"P":  # Parse: statement name, query text
                name, _, rest = body.partition(b"\x00")
                self._statements[name] = _is_write(rest.partition(b"\x00")[0])
            elif kind == b"B":  # Bind: portal name, statement name
                statement = body.partition(b"\x00")[2].partition(b"\x00")[0]
                if self._statements.get(statement):
                    self._mark()
            elif kind == b"Q":
                sql = body.rstrip(b"\x00")
                if _first_word(sql) == b"ROLLBACK":
                    self._dirty = False
                elif _is_write(sql):
                    self._mark()

    def _mark(self) -> None:
        if not self._dirty:
            self._failed = False
        self._dirty = True

    def server(self, data: bytes) -> bool:
        """True when ``data`` completes the server's acknowledgement of a committed write."""
        buffer = self._from_server
        buffer.extend(data)
        committed = False
        while self._ssl_answers and buffer:
            del buffer[:1]
            self._ssl_answers -= 1
        while len(buffer) >= 5:
            kind = buffer[0:1]
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                break
            body = bytes(buffer[5 : 1 + length])
            del buffer[: 1 + length]
            if kind == b"E" and self._dirty:
                self._failed = True
            elif kind == b"Z" and body[:1] == b"I":
                if self._dirty and not self._failed:
                    committed = True
                self._dirty = False
                self._failed = False
        return committed


class _MySQLWire:
    """Follows one MySQL connection in both directions and spots a committed write.

    Client side: a ``COM_QUERY`` whose text is a write marks the connection
    dirty, ``ROLLBACK`` clears it. Server side: the OK packet answering a write
    or a COMMIT, with ``SERVER_STATUS_IN_TRANS`` clear, means a write was just
    committed (by the COMMIT, or by the statement itself in autocommit). A
    write with RETURNING (MariaDB) is answered by a result set instead: its
    closing EOF packet carries the status flags (pymysql does not ask for
    ``CLIENT_DEPRECATE_EOF``, so a result set is: column count, column
    definitions, EOF, rows, EOF).
    """

    def __init__(self) -> None:
        self._from_client = bytearray()
        self._from_server = bytearray()
        self._dirty = False
        self._awaiting_answer = False
        #: EOF packets seen of the result set answering the write (None: not in one)
        self._result_eofs: int | None = None

    def client(self, data: bytes) -> None:
        buffer = self._from_client
        buffer.extend(data)
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:3], "little")
            if len(buffer) < 4 + length:
                return
            payload = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            if payload[:1] != bytes([_MYSQL_COM_QUERY]):
                continue
            sql = payload[1:]
            word = _first_word(sql)
            if word == b"ROLLBACK":
                self._dirty = False
            elif _is_write(sql):
                self._dirty = True
            self._awaiting_answer = self._dirty and (word == b"COMMIT" or _is_write(sql))

    def server(self, data: bytes) -> bool:
        buffer = self._from_server
        buffer.extend(data)
        committed = False
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:3], "little")
            if len(buffer) < 4 + length:
                break
            payload = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            if not self._awaiting_answer:
                continue
            if self._result_eofs is not None:
                if payload[:1] == b"\xff":  # ERR inside the result set
                    self._result_eofs = None
                    self._awaiting_answer = False
                elif payload[:1] == b"\xfe" and len(payload) < 9:  # EOF packet
                    self._result_eofs += 1
                    if self._result_eofs == 2:
                        self._result_eofs = None
                        self._awaiting_answer = False
                        status = int.from_bytes(payload[3:5], "little")
                        if not status & _MYSQL_STATUS_IN_TRANS:
                            committed = True
                            self._dirty = False
                continue
            if payload[:1] == b"\x00":  # OK packet
                self._awaiting_answer = False
                status = _ok_status(payload)
                if status is not None and not status & _MYSQL_STATUS_IN_TRANS:
                    committed = True
                    self._dirty = False
            elif payload[:1] == b"\xff":  # ERR packet
                self._awaiting_answer = False
            else:  # the column count of a result set (INSERT ... RETURNING)
                self._result_eofs = 0
        return committed


def _ok_status(payload: bytes) -> int | None:
    """The status flags of a MySQL OK packet (after two length-encoded integers)."""
    position = 1
    for _ in range(2):
        if position >= len(payload):
            return None
        first = payload[position]
        position += {0xFC: 3, 0xFD: 4, 0xFE: 9}.get(first, 1)
    if position + 2 > len(payload):
        return None
    return int.from_bytes(payload[position : position + 2], "little")


def _first_word(sql: bytes) -> bytes:
    words = sql.strip().split(None, 1)
    return words[0].rstrip(b";").upper() if words else b""


def _is_write(sql: bytes) -> bool:
    return _first_word(sql) in _WRITE_WORDS


class _Link:
    """One client connection and its upstream twin."""

    def __init__(
        self,
        client: asyncio.StreamWriter,
        server: asyncio.StreamWriter,
        wire: _PostgresWire | _MySQLWire,
    ) -> None:
        self.client = client
        self.server = server
        self.wire = wire
        self.closed = False
        #: bytes held while stalled, per destination.
        self.to_server = bytearray()
        self.to_client = bytearray()

    def abort(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.client.transport.abort()
        self.server.transport.abort()

    def flush(self) -> None:
        if self.closed:
            return
        if self.to_server:
            self.server.write(bytes(self.to_server))
            self.to_server.clear()
        if self.to_client:
            self.client.write(bytes(self.to_client))
            self.to_client.clear()


class FaultProxy:
    """A proxy on 127.0.0.1 in front of ``upstream_port``, speaking ``protocol``'s framing.

    Args:
        upstream_port: the server's port on 127.0.0.1.
        protocol: ``"postgresql"`` or ``"mysql"`` (how to recognise a committed write).
    """

    def __init__(self, upstream_port: int, *, protocol: str) -> None:
        if protocol not in ("postgresql", "mysql"):
            raise ValueError(f"protocol: expected 'postgresql' or 'mysql', got {protocol!r}")
        self.upstream_port = upstream_port
        self.protocol = protocol
        self.stats = ProxyStats()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing: asyncio.Event | None = None
        self._drop_left = 0
        self._drop_every = 1
        self._commits_since_armed = 0

    # -- lifecycle (called from the test thread) ----------------------------

    def start(self) -> FaultProxy:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen)
        return self

    def close(self) -> None:
        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, url: str) -> str:
        """``url`` pointed at the proxy instead of the server."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    # -- faults (called from the test thread) -------------------------------

    def cut(self) -> int:
        """Abort every open connection now; return how many."""

        async def cut() -> int:
            links = [link for link in self._links if not link.closed]
            for link in links:
                link.abort()
            self.stats.cut += len(links)
            return len(links)

        return self._call(cut)

    def stall(self) -> None:
        """Stop forwarding bytes either way until :meth:`resume`."""

        async def stall() -> None:
            assert self._flowing is not None
            self._flowing.clear()
            self.stats.stalls += 1

        self._call(stall)

    def resume(self) -> None:
        """Deliver what was held and forward again."""

        async def resume() -> None:
            assert self._flowing is not None
            self._flowing.set()
            for link in list(self._links):
                link.flush()

        self._call(resume)

    def drop_commits(self, count: int, *, every: int = 1) -> None:
        """Drop ``count`` acknowledgements of committed writes: the 1st, then every ``every``-th.

        With ``every=2`` the commit of a retry that follows a dropped one goes
        through, so a client that retries is not starved.
        """

        async def arm() -> None:
            self._drop_left = count
            self._drop_every = every
            self._commits_since_armed = 0

        self._call(arm)

    @property
    def open_connections(self) -> int:
        return sum(1 for link in list(self._links) if not link.closed)

    def wait_for(self, predicate: Callable[[ProxyStats], bool], timeout: float) -> bool:
        """Poll ``predicate(stats)`` until true or ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not predicate(self.stats):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    # -- inside the proxy's loop -------------------------------------------

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        if self._loop is None:
            raise RuntimeError("proxy is not running")
        return asyncio.run_coroutine_threadsafe(make(), self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            # only _shutdown cancels: end quietly (asyncio would log a cancelled handler)
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        wire = _PostgresWire() if self.protocol == "postgresql" else _MySQLWire()
        link = _Link(writer, up_writer, wire)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(link, reader, upstream=True),
                self._pump(link, up_reader, upstream=False),
            )
        finally:
            link.abort()
            self._links.discard(link)

    async def _pump(self, link: _Link, reader: asyncio.StreamReader, *, upstream: bool) -> None:
        assert self._flowing is not None
        while not link.closed:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                if upstream and not self._flowing.is_set() and not link.closed:
                    self.stats.closed_by_client_while_stalled += 1
                link.abort()
                return
            if upstream:
                link.wire.client(data)
                link.to_server.extend(data)
            else:
                if link.wire.server(data):
                    self.stats.commits_seen += 1
                    if self._drop_left > 0:
                        drop = self._commits_since_armed % self._drop_every == 0
                        self._commits_since_armed += 1
                        if drop:
                            # the write is committed; its acknowledgement never arrives
                            self._drop_left -= 1
                            self.stats.commits_dropped += 1
                            link.abort()
                            return
                link.to_client.extend(data)
            if self._flowing.is_set():
                link.flush()
