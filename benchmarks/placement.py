"""Where a run's work runs: the event loop on one CPU, the database's work on another.

On a small machine, a round trip's cost depends on whether the process (or
thread) answering it runs on the caller's CPU. Measured on the 2-CPU machine
of BENCHMARKS.md with one asyncpg connection and a one-row query: about 25
µs when the server process shared the client's CPU, about 85 µs when the
kernel had put it on the other one, and a connection kept its placement for
its whole life. Each subject's connections thus drew a cost that had nothing
to do with its code, and the same run repeated moved a ratio by up to a
third. Pinning both sides makes that cost the same for every subject.

Modes:

* ``split`` (the default): the event loop's thread on the first CPU; the
  database's work on the second: the server processes (PostgreSQL) or threads
  (MariaDB) serving the scratch database, and the process's other threads
  (aiosqlite's worker threads). The client and the database do not compete for
  a CPU, as with a server on its own host.
* ``shared``: everything on the first CPU (a one-CPU host).
* ``free``: nothing pinned; the kernel decides (the behaviour before pinning).

Pinning is applied before every timed batch (untimed), so threads and
server connections opened since are placed too. A server's processes are
pinned only when it runs on this machine (a loopback or socket address) and
each one is checked to be the server's (``/proc``); the original placement of
every pinned server process or thread is restored when the dialect's run ends
(MariaDB keeps the threads of closed connections for new ones). Where the
system refuses (another user's server, no ``sched_setaffinity``), the run goes
on and the report says what was not pinned.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

MODES = ("split", "shared", "free")
#: the names a server's process goes by in ``/proc/<pid>/comm``
_SERVER_COMMANDS = {
    "postgresql": frozenset({"postgres"}),
    "mysql": frozenset({"mariadbd", "mysqld"}),
}
_LOCAL_HOSTS = frozenset({None, "", "localhost", "127.0.0.1", "::1"})


class Placement:
    """Pins the client and the database's work to CPUs (see the module docstring).

    Args:
        mode: one of :data:`MODES`.
    """

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"placement must be one of {', '.join(MODES)}, not {mode!r}")
        self.requested = mode
        self.mode = mode
        self.client_cpu: int | None = None
        self.server_cpu: int | None = None
        self.notes: list[str] = []
        self._main_before: set[int] | None = None
        #: server processes or threads pinned, with the CPUs each had before and
        #: the server's process names (checked again before restoring)
        self._servers: dict[int, tuple[set[int], frozenset[str]]] = {}
        self._refused: set[int] = set()
        self._server: _ServerList | None = None

    def start(self) -> None:
        """Pin the calling (event loop) thread; choose the CPUs."""
        if self.mode == "free":
            return
        if not hasattr(os, "sched_setaffinity"):
            self._give_up("this system cannot pin threads to CPUs (no sched_setaffinity)")
            return
        cpus = sorted(os.sched_getaffinity(0))
        if self.mode == "split" and len(cpus) < 2:
            self.notes.append("split needs two CPUs and this process may use one: ran shared")
            self.mode = "shared"
        self.client_cpu = cpus[0]
        self.server_cpu = cpus[1] if self.mode == "split" else cpus[0]
        self._main_before = set(os.sched_getaffinity(0))
        # pid 0 is the calling thread (Linux): the event loop's, not the process's others
        os.sched_setaffinity(0, {self.client_cpu})
        # a thread starts on its creator's CPUs, the loop's; one started during a
        # batch (the legacy module opens a connection, and its thread, per call)
        # moves itself to the server CPU before it runs anything
        threading.setprofile(self._place_new_thread)

    def stop(self) -> None:
        """Give the calling thread back its CPUs and every pinned server process its own."""
        threading.setprofile(None)
        self.restore_servers()
        if self._main_before is not None:
            os.sched_setaffinity(0, self._main_before)
            self._main_before = None

    def describe(self) -> str:
        """One line for the report."""
        if self.mode == "free":
            text = "free: nothing pinned, the kernel placed every thread and server process"
        else:
            text = (
                f"{self.mode}: event loop on CPU {self.client_cpu}, the database's work "
                f"(server processes, SQLite's threads) on CPU {self.server_cpu}"
            )
        return "; ".join([text, *self.notes])

    def to_json(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "mode": self.mode,
            "client_cpu": self.client_cpu,
            "server_cpu": self.server_cpu,
            "notes": list(self.notes),
        }

    def _place_new_thread(self, _frame: Any, _event: str, _arg: Any) -> None:
        # a profile function, run once in each new thread, then removed
        sys.setprofile(None)
        if self.server_cpu is not None:
            os.sched_setaffinity(0, {self.server_cpu})

    def pin_threads(self) -> None:
        """Every thread of this process but the calling one, to the server CPU."""
        if self.server_cpu is None:
            return
        me = threading.get_native_id()
        for thread in threading.enumerate():
            native = thread.native_id
            if native is None or native == me or not thread.is_alive():
                continue
            # a thread that ended since enumerate() is gone: nothing to place
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(native, {self.server_cpu})

    async def attach(self, dialect: str, admin_url: URL | None, database: str) -> None:
        """Watch the server of ``database`` (one admin connection, kept open so
        that no connection is made just before a timed batch); nothing for
        SQLite, ``free``, or a server on another host."""
        if self.server_cpu is None or dialect not in _SERVER_COMMANDS or admin_url is None:
            return
        if admin_url.host not in _LOCAL_HOSTS:
            self._note_once(f"{dialect} server on {admin_url.host}: its processes not pinned")
            return
        self._server = await _ServerList.open(dialect, admin_url, database)

    async def detach(self) -> None:
        """Close the admin connection; restore every pinned server process."""
        server, self._server = self._server, None
        try:
            if server is not None:
                await server.close()
        finally:
            self.restore_servers()

    async def pin(self) -> None:
        """Before a timed batch: this process's other threads and the attached
        server's processes for the scratch database, to the server CPU."""
        self.pin_threads()
        if self._server is not None:
            self._pin_server(self._server.dialect, await self._server.ids())

    def _pin_server(self, dialect: str, idents: list[int]) -> None:
        assert self.server_cpu is not None
        commands = _SERVER_COMMANDS[dialect]
        for ident in idents:
            if ident in self._refused:
                continue
            if ident in self._servers:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.sched_setaffinity(ident, {self.server_cpu})
                continue
            if not _belongs_to_server(ident, commands):
                self._refused.add(ident)
                self._note_once(
                    f"{dialect}: a process serving the database is not a local server "
                    "process (a container?): not pinned"
                )
                continue
            try:
                before = set(os.sched_getaffinity(ident))
                os.sched_setaffinity(ident, {self.server_cpu})
            except PermissionError as exc:
                self._refused.add(ident)
                self._note_once(f"{dialect} server processes not pinned: {exc.strerror}")
                continue
            except ProcessLookupError:
                continue  # the connection closed meanwhile
            self._servers[ident] = (before, commands)

    def restore_servers(self) -> None:
        """Every pinned server process or thread back on the CPUs it had."""
        servers, self._servers = self._servers, {}
        self._refused.clear()
        for ident, (before, commands) in servers.items():
            # a PostgreSQL backend exits with its connection, and its pid may
            # since name another process: only the server's own is touched
            if not _belongs_to_server(ident, commands):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(ident, before)

    def _give_up(self, reason: str) -> None:
        self.notes.append(f"{reason}: ran free")
        self.mode = "free"

    def _note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


def _belongs_to_server(ident: int, commands: frozenset[str]) -> bool:
    """``ident`` is a process, or a thread of a process, named one of ``commands``."""
    try:
        status = Path(f"/proc/{ident}/status").read_text()
    except OSError:
        return False
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    owner = fields.get("Tgid", "").strip()
    try:
        command = Path(f"/proc/{owner}/comm").read_text().strip()
    except OSError:
        return False
    return command in commands


class _ServerList:
    """An admin connection that lists the server ids serving one database: backend
    pids (PostgreSQL) or connection thread ids (MariaDB)."""

    def __init__(self, dialect: str, conn: Any, database: str) -> None:
        self.dialect = dialect
        self._conn = conn
        self._database = database

    @classmethod
    async def open(cls, dialect: str, url: URL, database: str) -> _ServerList:
        if dialect == "postgresql":
            import asyncpg

            conn: Any = await asyncpg.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                database=url.database or "postgres",
                timeout=5,
            )
        else:
            import aiomysql

            conn = await aiomysql.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 3306,
                user=url.username or "root",
                password=url.password or "",
                connect_timeout=5,
                autocommit=True,
            )
        return cls(dialect, conn, database)

    async def ids(self) -> list[int]:
        if self.dialect == "postgresql":
            rows = await self._conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1", self._database
            )
            return [int(row[0]) for row in rows]
        async with self._conn.cursor() as cursor:
            await cursor.execute(
                "SELECT TID FROM information_schema.PROCESSLIST WHERE DB = %s", (self._database,)
            )
            rows = await cursor.fetchall()
        return [int(row[0]) for row in rows if row[0] is not None]

    async def close(self) -> None:
        if self.dialect == "postgresql":
            await self._conn.close()
        else:
            self._conn.close()
