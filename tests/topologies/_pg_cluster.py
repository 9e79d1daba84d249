"""A private PostgreSQL primary with two hot standbys (streaming replication).

Each server is a CHILD process of the test run (``postgres -D dir``, as the
``postgres`` OS user when the tests run as root), on a free loopback port with
a private socket directory, removed at the end: the shared server on 5432 is
never touched. ``synchronous_commit=on``; the standbys are made by
``pg_basebackup -R -X stream -C -S slotN`` and get their own ``port`` and
``cluster_name`` (the name the primary sees as ``application_name``).

The cluster can stop a standby (and start it again), and fail over: stop the
primary immediately (``-m immediate``: SIGQUIT, no shutdown checkpoint) and
promote a standby. ``sync_standby`` makes the primary wait for that standby's
flush at every COMMIT (given on the primary's command line only, so a
promoted standby does not inherit it): the failover test runs with it, so an
acknowledged write is on the standby it promotes.

Fixtures: ``pg_cluster`` (one per pytest-xdist worker) and
``postgresql_replicas_empty_url`` (a fresh database on the primary, replayed
on both standbys before the test starts; its replica URLs in
:data:`REPLICA_URLS`). A missing binary skips with the reason, or fails under
``CONTEXTSTORE_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests._servers import Server
from tests.faults._instances import _parent_of, _pg_bindir, free_port, unavailable
from tests.topologies._registry import REPLICA_URLS

START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


def _is_root() -> bool:
    return os.geteuid() == 0


def _sql(port: int, sql: str, database: str = "postgres") -> Any:
    """The first value of ``sql`` on the server at ``port`` (a thread of its own:
    the caller may be inside a running loop)."""
    import asyncpg

    async def run() -> Any:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", database=database, timeout=5
        )
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


class PgNode:
    """One server of the cluster: its data directory, port and child process."""

    def __init__(self, cluster: PgCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.data = cluster.base / name
        self.port = free_port()
        self.log = cluster.base / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start as a child process and wait until it accepts sessions; a start that
        lost its port to another process is retried on a new one."""
        for _ in range(5):
            self._launch()
            try:
                self._wait_ready()
                return
            except RuntimeError:
                if "could not bind" not in self.log_tail() and "in use" not in self.log_tail():
                    raise
                self.stop("immediate")
                self.port = free_port()
                self._write_port()
        raise RuntimeError(f"{self.name} could not find a free port")

    def _write_port(self) -> None:
        with open(self.data / "postgresql.auto.conf", "a") as conf:
            conf.write(f"port = {self.port}\n")

    def _launch(self) -> None:
        options = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",  # a throwaway cluster; replication is what is tested
            "full_page_writes": "off",
            "synchronous_commit": "on",
            "max_connections": "100",
            "shared_buffers": "16MB",
            "ssl": "off",
            **self.extra,
        }
        command = [
            str(self.cluster.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.cluster.base),
        ]
        for key, value in options.items():
            command += ["-c", f"{key}={value}"]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                user="postgres" if _is_root() else None,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                _sql(self.port, "SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready:\n{self.log_tail()}") from None
                time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop (``fast``, or ``immediate``: no checkpoint) and wait for the exit."""
        self.thaw()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(_SIGNALS[mode])
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def pids(self) -> list[int]:
        """The postmaster and its children (each backend is a session leader of its
        own, so one process group does not reach them)."""
        if self.process is None:
            return []
        postmaster = self.process.pid
        found = [postmaster]
        with contextlib.suppress(OSError):
            for entry in os.listdir("/proc"):
                if entry.isdigit() and _parent_of(int(entry)) == postmaster:
                    found.append(int(entry))
        return found

    def freeze(self) -> None:
        """SIGSTOP the server and every backend: it hangs, its sockets stay open."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the whole server; safe when not frozen."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def promote(self) -> None:
        """Promote this standby and wait until it accepts writes."""
        self.cluster.as_owner(
            [str(self.cluster.bindir / "pg_ctl"), "promote", "-w", "-D", str(self.data)]
        )
        deadline = time.monotonic() + START_TIMEOUT
        while _sql(self.port, "SELECT pg_is_in_recovery()"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} still in recovery:\n{self.log_tail()}")
            time.sleep(0.02)

    def sql(self, sql: str, database: str = "postgres") -> Any:
        return _sql(self.port, sql, database)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


class PgCluster:
    """A primary and two hot standbys, made fresh in a temporary folder."""

    def __init__(self, base: Path, bindir: Path) -> None:
        self.base = base
        self.bindir = bindir
        self.primary = PgNode(self, "primary")
        self.standbys: list[PgNode] = []
        self._server: Server | None = None

    @classmethod
    def create(cls, *, standbys: int = 2, sync_standby: str | None = None) -> PgCluster:
        """Make and start the cluster; ``sync_standby`` names the standby (``standby1``...)
        every COMMIT on the primary waits for."""
        bindir = _pg_bindir()
        if bindir is None or not (bindir / "pg_basebackup").exists():
            unavailable("no PostgreSQL server binaries (initdb, pg_basebackup) installed")
        if _is_root() and shutil.which("runuser") is None:
            unavailable("running as root without runuser to become the postgres user")
        base = Path(tempfile.mkdtemp(prefix="cs-pgcluster-"))
        os.chmod(base, 0o755)
        if _is_root():
            shutil.chown(base, "postgres", "postgres")
        cluster = cls(base, bindir)
        try:
            cluster.as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(cluster.primary.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            )
            with open(cluster.primary.data / "pg_hba.conf", "a") as hba:
                hba.write("host replication all 127.0.0.1/32 trust\n")
            if sync_standby is not None:
                cluster.primary.extra["synchronous_standby_names"] = f'"{sync_standby}"'
            cluster.primary.start()
            for number in range(1, standbys + 1):
                cluster.add_standby(number)
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def add_standby(self, number: int) -> PgNode:
        node = PgNode(self, f"standby{number}")
        self.as_owner(
            [
                str(self.bindir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-D",
                str(node.data),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-N",
                "-C",
                "-S",
                f"slot{number}",
            ]
        )
        with open(node.data / "postgresql.auto.conf", "a") as conf:
            conf.write(f"port = {node.port}\ncluster_name = '{node.name}'\n")
        node.start()
        self.standbys.append(node)
        return node

    def as_owner(self, command: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if _is_root() else []
        with open(self.base / "tools.log", "ab") as out:
            done = subprocess.run(
                prefix + command,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=START_TIMEOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = (self.base / "tools.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{command[0]} exited {done.returncode}:\n{tail}")

    def wait_replayed(self, timeout: float = 30.0) -> None:
        """Wait until every running standby has replayed what the primary has written."""
        target = self.primary.sql("SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        for node in self.standbys:
            if not node.running:
                continue
            while not node.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} has not replayed {target}")
                time.sleep(0.01)

    def server(self) -> Server:
        """The ``tests._servers.Server`` helper on the primary (creates test databases;
        one per cluster: it numbers them)."""
        if self._server is None:
            admin = make_url(f"postgresql://postgres@127.0.0.1:{self.primary.port}/postgres")
            self._server = Server(dialect="postgresql", admin_url=admin)
        return self._server

    def destroy(self) -> None:
        for node in [*self.standbys, self.primary]:
            with contextlib.suppress(Exception):
                node.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A primary and two hot standbys for this worker's whole session."""
    cluster = PgCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _replicated_database(pg_cluster: PgCluster, *, migrated: bool) -> Iterator[str]:
    """A fresh database on the primary, already replayed on every running standby."""
    for node in pg_cluster.standbys:
        if not node.running:
            node.start()
    server = pg_cluster.server()
    url = server.create_database(migrated=migrated)
    name = make_url(url).database
    assert name is not None
    pg_cluster.wait_replayed()
    REPLICA_URLS[url] = [node.url_for(name) for node in pg_cluster.standbys]
    try:
        yield url
    finally:
        REPLICA_URLS.pop(url, None)
        with contextlib.suppress(Exception):
            server.drop_database(url)


@pytest.fixture
def postgresql_replicas_empty_url(pg_cluster: PgCluster) -> Iterator[str]:
    """A fresh empty database on the primary, already replayed on every running standby."""
    yield from _replicated_database(pg_cluster, migrated=False)


@pytest.fixture
def postgresql_replicas_migrated_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The same, at contextstore's newest schema (``Server.create_database(migrated=True)``)."""
    yield from _replicated_database(pg_cluster, migrated=True)
