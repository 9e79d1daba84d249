"""Private PostgreSQL and MariaDB instances that fault tests may stop, restart and freeze.

The shared servers on 5432/3306 serve other test runs at the same time, so
nothing here ever touches them: each instance is a fresh data directory in a
temporary folder, on a free loopback port, started once per test session and
removed at its end. By default durability is switched off (``fsync=off``,
``innodb_flush_log_at_trx_commit=2``): a test crash only loses a throwaway
directory, and the suite runs faster. The crash tests ask for ``durable=True``
instead: the settings a production server runs with (``fsync``,
``synchronous_commit`` and ``full_page_writes`` on; InnoDB flushing its log at
every commit, the binary log on and synced at every commit), so that what a
SIGKILL of the server may lose is what the server itself gives away, not what
the suite switched off.

PostgreSQL refuses to run as root, so when the tests run as root its tools run
as the ``postgres`` OS user (``runuser``); MariaDB runs as ``mysql`` likewise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy.engine import make_url

from tests._servers import Server, require_servers

PG_BIN_ROOT = Path("/usr/lib/postgresql")
MARIADBD = "/usr/sbin/mariadbd"
MARIADB_INSTALL_DB = "/usr/bin/mariadb-install-db"
#: seconds a start or stop may take before the fixture gives up.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
FREEZE_TIMEOUT = 5.0


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unavailable(reason: str) -> NoReturn:
    """Skip (or fail under CONTEXTSTORE_REQUIRE_SERVERS=1) when no private instance can run."""
    if require_servers():
        pytest.fail(f"CONTEXTSTORE_REQUIRE_SERVERS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(command: list[str], *, timeout: float, log: Path) -> None:
    """Run a server tool in ``log``'s folder; its output goes to ``log`` (never a pipe
    a daemon could inherit)."""
    with open(log, "ab") as out:
        completed = subprocess.run(
            command,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            timeout=timeout,
            check=False,
        )
    if completed.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{command[0]} exited {completed.returncode}:\n{tail}")


class Instance(ABC):
    """One private server: its port, lifecycle, and an admin ``Server`` for databases."""

    dialect: str
    #: the server log line that says a start is a crash recovery (one per recovery).
    recovery_line: str

    def __init__(self, base: Path, *, durable: bool = False) -> None:
        self.base = base
        self.port = free_port()
        self.durable = durable
        self._server: Server | None = None

    @property
    @abstractmethod
    def admin_url(self) -> str:
        """Superuser URL (sync driver names, as tests/_servers.py expects)."""

    def server(self) -> Server:
        """The ``tests._servers.Server`` helper pointed at this instance (one per instance:
        it numbers the databases it creates)."""
        if self._server is None:
            self._server = Server(dialect=self.dialect, admin_url=make_url(self.admin_url))
        return self._server

    @abstractmethod
    def launch(self) -> None:
        """Start the server process and return at once (see :meth:`wait_ready`)."""

    def start(self) -> float:
        """Start and return the moment (``time.monotonic``) the server accepted a session."""
        self.launch()
        return self.wait_ready()

    @abstractmethod
    def stop(self) -> None:
        """Stop cleanly (fast shutdown: sessions are disconnected) and wait for the exit."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Every process of the server (SIGSTOP must freeze all of them)."""

    @abstractmethod
    def crash(self) -> None:
        """SIGKILL every process of the server at once and wait until they are gone: no
        shutdown, no checkpoint; the next start runs crash recovery."""

    def recoveries(self) -> int:
        """How many starts so far were crash recoveries (counted in the server log)."""
        log = self.base / "server.log"
        return log.read_text(errors="replace").count(self.recovery_line) if log.exists() else 0

    @abstractmethod
    def is_ready(self) -> bool:
        """The server accepts a new session right now."""

    @abstractmethod
    def destroy(self) -> None:
        """Stop whatever runs and remove the data directory."""

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Poll until a new session is accepted; return that moment (``time.monotonic``)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.is_ready():
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"private {self.dialect} did not become ready in {timeout} s:\n"
                    + self.log_tail()
                )
            time.sleep(0.02)

    def log_tail(self) -> str:
        log = self.base / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def freeze(self) -> None:
        """SIGSTOP every server process: a hung server (sockets open, nothing answers)."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        # kill() returns before the stop lands: a thread running on another
        # CPU may still answer a query, so wait until every thread is stopped
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while (running := [pid for pid in pids if not _all_threads_stopped(pid)]) != []:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server processes {running} not stopped after SIGSTOP")
            time.sleep(0.001)

    def thaw(self) -> None:
        """SIGCONT every server process; safe to call when not frozen."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


class PrivatePostgres(Instance):
    """A PostgreSQL cluster made by ``initdb``, run with ``pg_ctl``."""

    dialect = "postgresql"
    recovery_line = "database system was not properly shut down; automatic recovery in progress"

    def __init__(self, base: Path, bindir: Path, *, durable: bool = False) -> None:
        super().__init__(base, durable=durable)
        self.bindir = bindir

    @classmethod
    def create(cls, *, durable: bool = False) -> PrivatePostgres:
        """A new cluster, not started; ``durable`` for production settings (see the module)."""
        bindir = _pg_bindir()
        if bindir is None or not (bindir / "initdb").exists():
            unavailable(f"no PostgreSQL server binaries under {PG_BIN_ROOT}")
        base = Path(tempfile.mkdtemp(prefix="cs-faults-pg-"))
        os.chmod(base, 0o755)
        instance = cls(base, bindir, durable=durable)
        if _is_root():
            shutil.chown(base, "postgres", "postgres")
        instance._as_owner(
            [
                str(bindir / "initdb"),
                "-D",
                str(instance.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            timeout=START_TIMEOUT,
        )
        return instance

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, command: list[str], *, timeout: float) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if _is_root() else []
        _run(prefix + command, timeout=timeout, log=self.base / "tools.log")

    def _options(self) -> str:
        durability = "on" if self.durable else "off"
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.base),
            "fsync": durability,
            "synchronous_commit": durability,
            "full_page_writes": durability,
            "max_connections": "100",
            "shared_buffers": "32MB",
            "ssl": "off",
        }
        return f"-p {self.port} " + " ".join(f"-c {k}={v}" for k, v in settings.items())

    def launch(self) -> None:
        self._as_owner(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-W",  # no waiting: wait_ready measures the moment it answers
                "-o",
                self._options(),
            ],
            timeout=START_TIMEOUT,
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(
            [
                str(self.bindir / "pg_ctl"),
                "stop",
                "-D",
                str(self.data),
                "-m",
                mode,
                "-w",
                "-t",
                str(int(STOP_TIMEOUT)),
            ],
            timeout=STOP_TIMEOUT + 5,
        )

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.data / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first)

    def pids(self) -> list[int]:
        postmaster = self.postmaster_pid()
        if postmaster is None:
            return []
        found = [postmaster]
        # backends and auxiliary processes are the postmaster's children
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if entry.isdigit() and _parent_of(int(entry)) == postmaster:
                    found.append(int(entry))
        return found

    def crash(self) -> None:
        postmaster = self.postmaster_pid()
        if postmaster is None:
            raise RuntimeError("no postmaster.pid: the server is not running")
        # pg_ctl makes the postmaster a process group leader, and every backend
        # and auxiliary process it forks stays in that group: one killpg reaches
        # them all at the same instant, so none can notice the others die first
        os.killpg(postmaster, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _group_alive(postmaster):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of group {postmaster} alive after SIGKILL")
            time.sleep(0.005)
        if _is_zombie(postmaster):
            # not reaped yet (its parent is whoever adopted the orphan): a new
            # postmaster would take the pid in the lock files for a running
            # one; they mean nothing to crash recovery
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for lock in self.base.glob(".s.PGSQL.*.lock"):
                lock.unlink(missing_ok=True)

    def is_ready(self) -> bool:
        probe = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
        return probe.returncode == 0

    def destroy(self) -> None:
        try:
            self.thaw()
            if self.postmaster_pid() is not None:
                self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def _pg_bindir() -> Path | None:
    if not PG_BIN_ROOT.is_dir():
        return None
    versions = sorted(
        (p for p in PG_BIN_ROOT.iterdir() if (p / "bin" / "pg_ctl").exists()),
        key=lambda p: int(p.name) if p.name.isdigit() else 0,
    )
    return versions[-1] / "bin" if versions else None


def _all_threads_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped; a vanished process or thread counts as stopped."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
        except OSError:
            continue
        # the command name may contain spaces: the state follows the last ')'
        if stat[stat.rfind(")") + 2] not in "TtZX":  # stopped, or already gone
            return False
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from the state on (the name may contain spaces and ')')."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] == "Z"


def _group_alive(group: int) -> bool:
    """A process of process group ``group`` still runs (zombies do not count)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _stat_fields(int(entry))
                if fields is not None and int(fields[2]) == group and fields[0] not in "ZX":
                    return True
    return False


def _parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


class PrivateMariaDB(Instance):
    """A MariaDB server made by ``mariadb-install-db``, run as a child process."""

    dialect = "mysql"
    # the binary log's recovery, which a durable instance (binary log on) runs at
    # every start after a crash, even when InnoDB has nothing to redo
    recovery_line = "Recovering after a crash using"

    def __init__(self, base: Path, *, durable: bool = False) -> None:
        super().__init__(base, durable=durable)
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls, *, durable: bool = False) -> PrivateMariaDB:
        """A new data directory, not started; ``durable`` for production settings."""
        for binary in (MARIADBD, MARIADB_INSTALL_DB):
            if not Path(binary).exists():
                unavailable(f"no MariaDB server binary {binary}")
        base = Path(tempfile.mkdtemp(prefix="cs-faults-my-"))
        os.chmod(base, 0o755)
        instance = cls(base, durable=durable)
        # temporary tables of its own: in the shared /tmp, another MariaDB
        # starting up (a private one, or the shared server) may remove a
        # bootstrap's temporary table files ("Unknown table
        # 'mysql.tmp_proxies_priv'")
        instance.tmp.mkdir()
        if _is_root():
            shutil.chown(base, "mysql", "mysql")  # the server writes its log and socket here
            shutil.chown(instance.tmp, "mysql", "mysql")
        command = [
            MARIADB_INSTALL_DB,
            "--no-defaults",  # never the machine's my.cnf (the shared server's)
            f"--datadir={instance.data}",
            f"--tmpdir={instance.tmp}",
            "--auth-root-authentication-method=normal",  # root, empty password, over TCP
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        if _is_root():
            command.append("--user=mysql")
        _run(command, timeout=START_TIMEOUT, log=base / "install.log")
        return instance

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def admin_url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/mysql"

    def launch(self) -> None:
        command = [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.data}",
            f"--tmpdir={self.tmp}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.base / 'mysqld.sock'}",
            f"--pid-file={self.base / 'mysqld.pid'}",
            f"--log-error={self.base / 'server.log'}",
            "--skip-name-resolve",
            "--max-connections=200",
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-dump-at-shutdown=OFF",
            "--innodb-buffer-pool-load-at-startup=OFF",
        ]
        if self.durable:
            # a commit is on disk in the redo log and in the binary log before
            # it is acknowledged; with the binary log on, a crash recovery also
            # settles the two-phase commit between the two
            command += [
                "--innodb-flush-log-at-trx-commit=1",
                "--innodb-doublewrite=ON",
                "--log-bin=mysql-bin",
                "--server-id=1",
                "--sync-binlog=1",
            ]
        else:
            command += ["--skip-log-bin", "--innodb-flush-log-at-trx-commit=2"]
        if _is_root():
            command.append("--user=mysql")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base,
            start_new_session=True,
        )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()  # SIGTERM: a normal shutdown, clients are disconnected
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def pids(self) -> list[int]:
        if self.process is None or self.process.poll() is not None:
            return []
        return [self.process.pid]

    def crash(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            raise RuntimeError("the server is not running")
        process.kill()  # one process: SIGKILL stops every thread at once
        process.wait(timeout=STOP_TIMEOUT)

    def is_ready(self) -> bool:
        import pymysql

        try:
            conn = pymysql.connect(
                host="127.0.0.1", port=self.port, user="root", password="", connect_timeout=1
            )
        except pymysql.err.MySQLError:
            return False
        conn.close()
        return True

    def execute(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        """Run admin SQL on this instance (sync) and return the rows."""
        import pymysql

        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            connect_timeout=5,
            read_timeout=10,
            write_timeout=10,
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def destroy(self) -> None:
        try:
            self.thaw()
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class Admin(ABC):
    """A superuser session on a private instance, outside any test database."""

    @abstractmethod
    async def sessions(self, database: str, *, busy: bool = False) -> list[int]:
        """Ids of the client sessions connected to ``database`` (not this one);
        with ``busy``, only those running a statement or inside a transaction."""

    async def wait_no_sessions(self, database: str, timeout: float = 10.0) -> list[int]:
        """Poll until no session is connected to ``database``; return what is left."""
        import asyncio

        deadline = time.monotonic() + timeout
        while True:
            left = await self.sessions(database)
            if not left or time.monotonic() > deadline:
                return left
            await asyncio.sleep(0.1)

    @abstractmethod
    async def kill(self, session_id: int) -> bool:
        """Terminate one session; False when it was already gone."""

    @abstractmethod
    async def scalar(self, sql: str) -> Any:
        """The first value of ``sql``."""

    @abstractmethod
    async def close(self) -> None: ...


class _PostgresAdmin(Admin):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def sessions(self, database: str, *, busy: bool = False) -> list[int]:
        rows = await self._conn.fetch(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            + (" AND state <> 'idle'" if busy else ""),
            database,
        )
        return [int(row["pid"]) for row in rows]

    async def kill(self, session_id: int) -> bool:
        return bool(await self._conn.fetchval("SELECT pg_terminate_backend($1)", session_id))

    async def scalar(self, sql: str) -> Any:
        return await self._conn.fetchval(sql)

    async def close(self) -> None:
        await self._conn.close(timeout=5)


class _MariaDBAdmin(Admin):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def _rows(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        async with self._conn.cursor() as cursor:
            await cursor.execute(sql, args)
            return list(await cursor.fetchall())

    async def sessions(self, database: str, *, busy: bool = False) -> list[int]:
        rows = await self._rows(
            "SELECT id FROM information_schema.processlist "
            "WHERE db = %s AND id <> CONNECTION_ID() AND command <> 'Killed'"
            + (" AND command <> 'Sleep'" if busy else ""),
            (database,),
        )
        return [int(row[0]) for row in rows]

    async def kill(self, session_id: int) -> bool:
        import pymysql

        try:
            await self._rows(f"KILL CONNECTION {int(session_id)}")
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1094:  # ER_NO_SUCH_THREAD: already gone
                return False
            raise
        return True

    async def scalar(self, sql: str) -> Any:
        rows = await self._rows(sql)
        return rows[0][0] if rows else None

    async def close(self) -> None:
        self._conn.close()


async def connect_admin(instance: Instance) -> Admin:
    """An admin session on ``instance`` (raw driver: it must not share the code under test)."""
    if instance.dialect == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(
            host="127.0.0.1", port=instance.port, user="postgres", database="postgres", timeout=5
        )
        return _PostgresAdmin(conn)
    import aiomysql

    conn = await aiomysql.connect(
        host="127.0.0.1", port=instance.port, user="root", password="", autocommit=True
    )
    return _MariaDBAdmin(conn)
