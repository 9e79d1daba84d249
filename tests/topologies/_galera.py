"""A private three-node MariaDB Galera cluster, started from the installed binaries.

Each node is a child process of the test run (never daemonised: a daemon
lingers as a zombie on these machines) with its own data directory, its own
``--defaults-file`` (always passed, to ``mariadb-install-db`` and to
``mariadbd``: the server hands it to the state-transfer script too, so
nothing is ever read from ``/etc/mysql``, the shared server's), and four free
loopback ports: client, group communication (gmcast), incremental state
transfer (IST) and snapshot state transfer (SST, rsync).

Start: node 1 bootstraps the cluster (``--wsrep-new-cluster``), then nodes 2
and 3 join one at a time, each polled until ``wsrep_local_state_comment`` is
``Synced`` (joining two at once churns the membership and takes twice as
long). A start that fails because a port was taken between ``free_port()`` and
the bind is retried once on new ports. Everything is removed at the end.

The cluster shared by a worker's tests keeps Galera's own group-communication
timeouts: a node is suspected after 5 s of silence and evicted after 15 s.
Only a cluster of a test that kills a node shortens them
(:data:`FAST_EVICTION`), so the killed node is evicted after about 2 s
instead of 5.4 s. With the short timeouts the shared clusters were not safe on
a loaded machine: CI starts one per pytest-xdist worker, twelve nodes on two
cores, and a node whose threads waited more than 2 s for a CPU was evicted.

Before each test, the shared cluster is checked (:meth:`GaleraCluster.check`):
a cluster found broken is restarted, and that test fails with what each node
said, so one break costs one test, not every test after it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._servers import Server, migrate_database
from tests.faults._instances import (
    MARIADB_INSTALL_DB,
    MARIADBD,
    START_TIMEOUT,
    STOP_TIMEOUT,
    free_port,
    unavailable,
)
from tests.topologies._registry import REPLICA_URLS

#: the Galera provider library of Debian's ``galera-4`` package.
GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so"
RSYNC = "/usr/bin/rsync"
#: a node killed with SIGKILL is suspected after 1 s and evicted after 2 s
#: (defaults: 5 s and 15 s), so writes on the others resume within about 2 s;
#: only for a cluster of a test's own, which kills a node.
FAST_EVICTION = (
    "evs.suspect_timeout=PT1S;evs.inactive_timeout=PT2S;evs.keepalive_period=PT0.2S;"
    "evs.inactive_check_period=PT0.3S;evs.install_timeout=PT2S"
)
#: seconds a node may take to reach Synced.
SYNC_TIMEOUT = 90.0
CLUSTER_NAME = "contextstore_test"


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class GaleraNode:
    """One node: its folder, ports and process."""

    number: int
    base: Path
    port: int = 0
    gmcast_port: int = 0
    ist_port: int = 0
    sst_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    #: extra ``wsrep_provider_options`` (:data:`FAST_EVICTION` or nothing).
    provider_options: str = ""

    def pick_ports(self) -> None:
        self.port, self.gmcast_port, self.ist_port, self.sst_port = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        )

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"

    @property
    def defaults_file(self) -> Path:
        return self.base / "my.cnf"

    @property
    def log(self) -> Path:
        return self.base / "server.log"

    @property
    def admin_url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/mysql"

    def url_for(self, database: str) -> str:
        """URL of ``database`` on this node (the form tests/_servers.py gives)."""
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def write_defaults(self, cluster_address: str) -> None:
        options = f"gmcast.listen_addr=tcp://127.0.0.1:{self.gmcast_port};"
        options += f"ist.recv_addr=127.0.0.1:{self.ist_port};"
        options += f"base_port={self.gmcast_port};gcache.size=64M"
        if self.provider_options:
            options += f";{self.provider_options}"
        lines = [
            "[mysqld]",
            f"datadir={self.data}",
            f"tmpdir={self.tmp}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            f"socket={self.base / 'mysqld.sock'}",
            f"pid-file={self.base / 'mysqld.pid'}",
            f"log-error={self.log}",
            "skip-name-resolve",
            "max-connections=200",
            "innodb-buffer-pool-size=64M",
            "innodb-log-file-size=16M",
            "innodb-buffer-pool-dump-at-shutdown=OFF",
            "innodb-buffer-pool-load-at-startup=OFF",
            "innodb-flush-log-at-trx-commit=2",
            # what Galera requires
            "binlog-format=ROW",
            "default-storage-engine=InnoDB",
            "innodb-autoinc-lock-mode=2",
            "wsrep-on=ON",
            f"wsrep-provider={GALERA_PROVIDER}",
            f"wsrep-cluster-name={CLUSTER_NAME}",
            f"wsrep-cluster-address={cluster_address}",
            "wsrep-node-address=127.0.0.1",
            f"wsrep-node-name=node{self.number}",
            f'wsrep-provider-options="{options}"',
            "wsrep-sst-method=rsync",
            f"wsrep-sst-receive-address=127.0.0.1:{self.sst_port}",
        ]
        if _is_root():
            lines.append("user=mysql")
        self.defaults_file.write_text("\n".join(lines) + "\n")

    def install(self) -> None:
        """A fresh data directory by ``mariadb-install-db`` (its own defaults file only)."""
        shutil.rmtree(self.data, ignore_errors=True)
        command = [
            MARIADB_INSTALL_DB,
            f"--defaults-file={self.defaults_file}",
            "--auth-root-authentication-method=normal",  # root, empty password, over TCP
            "--skip-test-db",
        ]
        with open(self.base / "install.log", "ab") as out:
            done = subprocess.run(
                command,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=START_TIMEOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = (self.base / "install.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mariadb-install-db exited {done.returncode}:\n{tail}")

    def launch(self, *, bootstrap: bool) -> None:
        command = [MARIADBD, f"--defaults-file={self.defaults_file}"]
        if bootstrap:
            command.append("--wsrep-new-cluster")
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.base,
            start_new_session=True,
        )

    def status(self, name: str) -> str | None:
        """A ``SHOW STATUS`` value, or None when the node does not answer."""
        import pymysql

        try:
            rows = self.execute("SHOW STATUS LIKE %s", (name,), timeout=2)
        except pymysql.err.MySQLError:
            return None
        return str(rows[0][1]) if rows else None

    def execute(self, sql: str, args: Any = None, *, timeout: float = 10) -> list[tuple[Any, ...]]:
        """Run admin SQL on this node (sync, autocommit) and return the rows."""
        import pymysql

        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            connect_timeout=min(timeout, 5),
            read_timeout=timeout,
            write_timeout=timeout,
            autocommit=True,
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def wait_synced(self, timeout: float = SYNC_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.status("wsrep_local_state_comment") != "Synced":
            if not self.running():
                raise RuntimeError(f"node {self.number} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"node {self.number} not Synced in {timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def port_clash(self) -> bool:
        """The node's log says one of its ports was taken."""
        text = self.log_tail() + (
            (self.base / "install.log").read_text(errors="replace")
            if (self.base / "install.log").exists()
            else ""
        )
        return "Address already in use" in text or "Can't start server: Bind" in text

    def kill(self) -> None:
        """SIGKILL the node (no shutdown, no goodbye to the group) and reap it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            raise RuntimeError(f"node {self.number} is not running")
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class GaleraCluster:
    """Three nodes on loopback; :attr:`start_seconds` is how long the start took."""

    base: Path
    nodes: list[GaleraNode] = field(default_factory=list)
    start_seconds: float = 0.0
    _server: Server | None = None

    @classmethod
    def create(cls, size: int = 3, *, fast_eviction: bool = False) -> GaleraCluster:
        for binary in (MARIADBD, MARIADB_INSTALL_DB, GALERA_PROVIDER, RSYNC):
            if not Path(binary).exists():
                unavailable(f"no {binary} (Galera needs the galera-4 and rsync packages)")
        base = Path(tempfile.mkdtemp(prefix="cs-galera-"))
        os.chmod(base, 0o755)
        cluster = cls(base)
        for number in range(1, size + 1):
            node_base = base / f"node{number}"
            node_base.mkdir()
            node = GaleraNode(
                number, node_base, provider_options=FAST_EVICTION if fast_eviction else ""
            )
            node.tmp.mkdir()
            if _is_root():
                shutil.chown(node_base, "mysql", "mysql")
                shutil.chown(node.tmp, "mysql", "mysql")
            cluster.nodes.append(node)
        return cluster

    def _configure(self) -> None:
        for node in self.nodes:
            node.pick_ports()
        address = "gcomm://" + ",".join(f"127.0.0.1:{n.gmcast_port}" for n in self.nodes)
        for node in self.nodes:
            node.write_defaults(address)
            node.install()

    def start(self) -> None:
        """Bootstrap node 1, join the others one at a time; retry once on a port clash."""
        began = time.monotonic()
        for attempt in range(3):
            self._configure()
            try:
                for node in self.nodes:
                    node.launch(bootstrap=node is self.nodes[0])
                    node.wait_synced()
            except RuntimeError:
                clash = any(node.port_clash() for node in self.nodes)
                for node in self.nodes:
                    node.stop()
                if not clash or attempt == 2:
                    raise
                for node in self.nodes:
                    node.log.unlink(missing_ok=True)
                continue
            break
        self.start_seconds = time.monotonic() - began

    def problems(self, timeout: float = 30.0) -> list[str]:
        """What is wrong, node by node: empty once every node runs, is Synced and
        is in one Primary component of all the nodes. A node that is still
        catching up gets until ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [problem for node in self.nodes if (problem := self._problem(node))]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def _problem(self, node: GaleraNode) -> str | None:
        import pymysql

        if not node.running():
            code = None if node.process is None else node.process.returncode
            return f"node {node.number}: not running (exit code {code})"
        try:
            rows = node.execute(
                "SHOW STATUS WHERE Variable_name IN "
                "('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_cluster_size')",
                timeout=5,
            )
        except pymysql.err.MySQLError as exc:
            return f"node {node.number}: no answer ({exc})"
        status = {str(name): str(value) for name, value in rows}
        healthy = {
            "wsrep_local_state_comment": "Synced",
            "wsrep_cluster_status": "Primary",
            "wsrep_cluster_size": str(len(self.nodes)),
        }
        return None if status == healthy else f"node {node.number}: {status}"

    def check(self) -> None:
        """Raise, after restarting the cluster for the tests that follow, when it is
        broken (see :meth:`problems`); the error holds each node's log."""
        found = self.problems()
        if not found:
            return
        logs = "".join(f"\n--- node {node.number}'s log\n{node.log_tail()}" for node in self.nodes)
        for node in self.nodes:
            node.stop()
            node.log.unlink(missing_ok=True)
        self._server = None
        self.start()
        raise RuntimeError(
            "the shared Galera cluster was broken before this test (restarted for the "
            "tests that follow):\n" + "\n".join(found) + logs
        )

    def server(self) -> Server:
        """Creates and drops databases through node 1 (DDL replicates to the others)."""
        if self._server is None:
            from sqlalchemy.engine import make_url

            self._server = Server(dialect="mysql", admin_url=make_url(self.nodes[0].admin_url))
        return self._server

    def running(self) -> list[GaleraNode]:
        return [node for node in self.nodes if node.running()]

    def wait_size(self, size: int, timeout: float = 30.0) -> None:
        """Poll until every running node reports a primary component of ``size`` nodes."""
        deadline = time.monotonic() + timeout
        while True:
            live = self.running()
            if all(
                node.status("wsrep_cluster_size") == str(size)
                and node.status("wsrep_cluster_status") == "Primary"
                for node in live
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not at {size} nodes in {timeout} s")
            time.sleep(0.1)

    def destroy(self) -> None:
        try:
            for node in reversed(self.nodes):
                node.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def galera_database(cluster: GaleraCluster) -> Iterator[str]:
    """A fresh database created through node 1; its URL on node 1. Dropped afterwards
    (through a node still running)."""
    server = cluster.server()
    url = server.create_database()
    yield url
    name = url.rsplit("/", 1)[1]
    for node in cluster.running():
        with contextlib.suppress(Exception):
            node.execute(f"DROP DATABASE IF EXISTS `{name}`")
            break


@pytest.fixture(scope="session")
def galera_cluster() -> Iterator[GaleraCluster]:
    """A running three-node cluster for the whole session (tests that kill a node
    use :func:`galera_cluster_own` instead)."""
    cluster = GaleraCluster.create()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def _cluster_database(galera_cluster: GaleraCluster, *, migrated: bool) -> Iterator[str]:
    # migrated by Alembic itself, the way a user's database is made, not
    # copied from a template (a search that missed a 100,000-character message
    # just written was first blamed on the copy; it was InnoDB's full-text sync
    # window, tests/contract/_fulltext_window.py, which copies and migrated
    # databases share)
    galera_cluster.check()
    for url in galera_database(galera_cluster):
        if migrated:
            migrate_database(url)
        name = url.rsplit("/", 1)[1]
        REPLICA_URLS[url] = [node.url_for(name) for node in galera_cluster.nodes[1:]]
        try:
            yield url
        finally:
            REPLICA_URLS.pop(url, None)


@pytest.fixture
def mysql_galera_empty_url(galera_cluster: GaleraCluster) -> Iterator[str]:
    """A fresh empty database on the Galera cluster, its URL on node 1; nodes 2 and 3
    serve its reads (in :data:`REPLICA_URLS`)."""
    yield from _cluster_database(galera_cluster, migrated=False)


@pytest.fixture
def mysql_galera_migrated_url(galera_cluster: GaleraCluster) -> Iterator[str]:
    """The same, at contextstore's newest schema."""
    yield from _cluster_database(galera_cluster, migrated=True)
