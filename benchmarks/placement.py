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
server connections opened since are placed too; a thread started during a
batch places itself before it runs. A server's processes are pinned only
when it runs on this machine (a loopback address), and only ids that name a
process of the server's name that has not been replaced since (its start
time, from ``/proc``, is kept). Every thread and server process moved is
given back its CPUs: server ones when the dialect's run ends (MariaDB hands
a closed connection's thread to the next connection), the process's own when
the run ends. Where anything refuses (another user's server, a server that
does not report its connections' thread ids, no ``sched_setaffinity``), the
run goes on and the report says what was not pinned. A run killed outright
(SIGKILL) cannot restore anything: MariaDB's cached threads then keep their
CPU until they end or the server restarts.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .scratch import connect_admin

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

MODES = ("split", "shared", "free")
#: the names a server's process goes by in ``/proc/<pid>/comm``
_SERVER_COMMANDS = {
    "postgresql": frozenset({"postgres"}),
    "mysql": frozenset({"mariadbd", "mysqld"}),
}
#: hosts the benchmark's connections reach on this machine (None: the default, 127.0.0.1)
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
        self._active = False
        self._profile_before: Any = None
        #: this process's threads moved, with the CPUs each had before
        self._threads: dict[int, set[int]] = {}
        #: server processes or threads moved: the CPUs each had before and
        #: who it was (process names, start time), checked again before touching it
        self._servers: dict[int, tuple[set[int], _Identity]] = {}
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
        self._profile_before = threading.getprofile()
        self._active = True
        threading.setprofile(self._place_new_thread)

    def stop(self) -> None:
        """Give back their CPUs: the calling thread, the process's other threads
        moved, and every server process still pinned."""
        self._active = False  # a thread starting from now on stays where it is
        if self._main_before is not None:
            threading.setprofile(self._profile_before)
        self.restore_servers()
        threads, self._threads = self._threads, {}
        for native, before in list(threads.items()):
            # a thread of this process that has ended since: nothing to give back
            with contextlib.suppress(OSError):
                os.sched_setaffinity(native, before)
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
                f"(the connections' server processes, SQLite's threads) on CPU {self.server_cpu}"
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
        # a profile function, run once in each new thread (before its target)
        # and removed; it must not raise: the thread would die before its
        # target runs, and whoever waits for it (aiosqlite's connect) forever
        sys.setprofile(None)
        server = self.server_cpu
        if not self._active or server is None or self._main_before is None:
            return
        native = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {server})
            # given back the loop's original CPUs at stop(), not its pinned one
            self._threads.setdefault(native, set(self._main_before))

    def pin_threads(self) -> None:
        """Every thread of this process but the calling one, to the server CPU."""
        if self.server_cpu is None:
            return
        me = threading.get_native_id()
        for native in _own_threads():
            if native == me:
                continue
            # a thread that has ended since it was listed: nothing to place
            with contextlib.suppress(OSError):
                before = set(os.sched_getaffinity(native))
                os.sched_setaffinity(native, {self.server_cpu})
                self._threads.setdefault(native, before)

    async def attach(self, dialect: str, admin_url: URL | None, database: str) -> None:
        """Watch the server of ``database`` (one admin connection, kept open so
        that no connection is made just before a timed batch); nothing for
        SQLite, ``free``, or a server on another host."""
        if self.server_cpu is None or dialect not in _SERVER_COMMANDS or admin_url is None:
            return
        if admin_url.host not in _LOCAL_HOSTS:
            self._note_once(f"{dialect} server on {admin_url.host}: its processes not pinned")
            return
        try:
            self._server = await _ServerList.open(dialect, admin_url, database)
        except Exception as exc:
            self._note_once(f"{dialect} server processes not pinned: {type(exc).__name__}: {exc}")

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
        server = self._server
        if server is None:
            return
        try:
            idents = await server.ids()
        except Exception as exc:
            # MySQL, say, reports no thread id for a connection: stop trying
            self._server = None
            await _closed_quietly(server)
            self._note_once(
                f"{server.dialect} server processes not pinned: {type(exc).__name__}: {exc}"
            )
            return
        self._pin_server(server.dialect, idents)

    def _pin_server(self, dialect: str, idents: list[int]) -> None:
        assert self.server_cpu is not None
        commands = _SERVER_COMMANDS[dialect]
        for ident in idents:
            if ident in self._refused:
                continue
            known = self._servers.get(ident)
            if known is not None:
                if _identity(ident) == known[1]:
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(ident, {self.server_cpu})
                    continue
                # the id now names another process (a new backend): restore
                # nothing to it, take it as new
                del self._servers[ident]
            identity = _identity(ident)
            if identity is None or identity.command not in commands:
                self._refused.add(ident)
                self._note_once(
                    f"{dialect}: a process serving the database is not a local server "
                    "process (a container?): not pinned"
                )
                continue
            try:
                before = set(os.sched_getaffinity(ident))
                os.sched_setaffinity(ident, {self.server_cpu})
            except ProcessLookupError:
                continue  # the connection closed meanwhile
            except OSError as exc:
                # EPERM (another user's server), EINVAL (its cgroup excludes the CPU)
                self._refused.add(ident)
                self._note_once(f"{dialect} server processes not pinned: {exc.strerror}")
                continue
            self._servers[ident] = (before, identity)

    def restore_servers(self) -> None:
        """Every pinned server process or thread back on the CPUs it had."""
        servers, self._servers = self._servers, {}
        self._refused.clear()
        for ident, (before, identity) in servers.items():
            # a PostgreSQL backend exits with its connection, and its pid may
            # since name another process: only the one pinned is touched
            if _identity(ident) != identity:
                continue
            with contextlib.suppress(OSError):
                os.sched_setaffinity(ident, before)

    def _give_up(self, reason: str) -> None:
        self.notes.append(f"{reason}: ran free")
        self.mode = "free"

    def _note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)


class _Identity:
    """Who a process or thread id names: its process's name and its own start
    time (clock ticks after boot), so a reused id is told apart."""

    __slots__ = ("command", "started")

    def __init__(self, command: str, started: str) -> None:
        self.command = command
        self.started = started

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and (self.command, self.started) == (
            other.command,
            other.started,
        )

    def __hash__(self) -> int:
        return hash((self.command, self.started))


def _identity(ident: int) -> _Identity | None:
    """The process name (of the thread's process) and start time of ``ident``."""
    try:
        status = Path(f"/proc/{ident}/status").read_text()
        stat = Path(f"/proc/{ident}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    owner = fields.get("Tgid", "").strip()
    try:
        command = Path(f"/proc/{owner}/comm").read_text().strip()
    except OSError:
        return None
    # the name in parentheses may hold spaces; field 22 (start time) counts from after it
    after_name = stat.rsplit(")", 1)[-1].split()
    return _Identity(command, after_name[19] if len(after_name) > 19 else "")


def _own_threads() -> list[int]:
    """The native ids of this process's threads, those ``threading`` does not know included."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return [t.native_id for t in threading.enumerate() if t.native_id is not None]


async def _closed_quietly(server: _ServerList) -> None:
    with contextlib.suppress(Exception):
        await server.close()


class _ServerList:
    """An admin connection that lists the server ids serving one database: backend
    pids (PostgreSQL) or connection thread ids (MariaDB)."""

    def __init__(self, dialect: str, conn: Any, database: str) -> None:
        self.dialect = dialect
        self._conn = conn
        self._database = database

    @classmethod
    async def open(cls, dialect: str, url: URL, database: str) -> _ServerList:
        return cls(dialect, await connect_admin(dialect, url), database)

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
