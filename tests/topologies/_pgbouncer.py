"""PgBouncer in front of PostgreSQL, started from the installed binary (Debian's 1.18).

Each :class:`PgBouncer` is a child process on a free loopback port with its
own ini file, log and Unix socket folder in a temporary directory, removed at
the end. Its configuration is PgBouncer's DEFAULT apart from what a pooler
needs to run at all: where to listen, ``auth_type = trust`` with an
``auth_file`` holding ``"postgres" ""``, the ``pool_mode`` under test, and a
fallback database entry ``* = host=... port=...`` that lets any database name
through (every test's fresh database). No ``ignore_startup_parameters``, no
``max_prepared_statements`` (1.21+; 1.18 refuses to start with it), default
pool sizes unless a test asks for a small ``default_pool_size``.

Fixtures:

* ``pgbouncer_postgres``: a private PostgreSQL (``tests.faults._instances``)
  for the topology tests, one per session (per xdist worker);
* ``pgbouncer_transaction`` / ``pgbouncer_session``: PgBouncer in each mode in
  front of it;
* ``shared_pgbouncer``: transaction mode in front of the shared server, for
  the contract suite's ``core-postgresql-pgbouncer`` backend, and
  ``postgresql_pgbouncer_empty_url``: a fresh database on the shared server,
  its URL pointed at that PgBouncer.

A missing ``pgbouncer`` binary skips (fails under
``CONTEXTSTORE_REQUIRE_SERVERS=1``) with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests._servers import Server
from tests.faults._instances import PrivatePostgres, free_port, unavailable

PGBOUNCER = "/usr/sbin/pgbouncer"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 5


def _is_root() -> bool:
    return os.geteuid() == 0


class PgBouncer:
    """One PgBouncer process in ``pool_mode`` ``mode`` in front of ``host:port``.

    Args:
        server_port: the PostgreSQL port it forwards to (on 127.0.0.1).
        mode: ``"transaction"`` or ``"session"``.
        default_pool_size: a small server pool for a test (None: PgBouncer's default, 20).
    """

    def __init__(self, server_port: int, mode: str, *, default_pool_size: int | None = None):
        if not Path(PGBOUNCER).exists():
            unavailable(f"no PgBouncer binary {PGBOUNCER} (apt-get install pgbouncer)")
        self.server_port = server_port
        self.mode = mode
        self.default_pool_size = default_pool_size
        self.base = Path(tempfile.mkdtemp(prefix="cs-pgbouncer-"))
        os.chmod(self.base, 0o755)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """A contextstore URL for ``database`` through this PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _write_config(self) -> Path:
        (self.base / "userlist.txt").write_text('"postgres" ""\n')
        lines = [
            "[databases]",
            f"* = host=127.0.0.1 port={self.server_port}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {self.port}",
            f"unix_socket_dir = {self.base}",
            "auth_type = trust",
            f"auth_file = {self.base / 'userlist.txt'}",
            f"pool_mode = {self.mode}",
            f"logfile = {self.base / 'pgbouncer.log'}",
            f"pidfile = {self.base / 'pgbouncer.pid'}",
            "admin_users = postgres",
        ]
        if self.default_pool_size is not None:
            lines.append(f"default_pool_size = {self.default_pool_size}")
        ini = self.base / "pgbouncer.ini"
        ini.write_text("\n".join(lines) + "\n")
        if _is_root():
            for path in (self.base, *self.base.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        return ini

    def start(self) -> None:
        """Start on a free port; a start that loses its port to another process is retried."""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            ini = self._write_config()
            self.process = subprocess.Popen(
                [PGBOUNCER, str(ini)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self.base,
                user="postgres" if _is_root() else None,
                start_new_session=True,
            )
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"PgBouncer did not start:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        import socket

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return True
            time.sleep(0.02)
        return False

    def log_tail(self) -> str:
        log = self.base / "pgbouncer.log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""

    def admin(self, command: str) -> list[list[str]]:
        """Rows of an admin console command (``SHOW SERVERS``...) through psql,
        which speaks the simple protocol the console needs."""
        psql = shutil.which("psql") or "/usr/bin/psql"
        done = subprocess.run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-At",
                "-F",
                "|",
                "-c",
                command,
                "pgbouncer",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return [line.split("|") for line in done.stdout.splitlines() if line]

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: PgBouncer exits at once
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def running(server_port: int, mode: str, **options: int | None) -> Iterator[PgBouncer]:
    """A started :class:`PgBouncer`, destroyed on exit."""
    bouncer = PgBouncer(server_port, mode, **options)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.destroy()


@pytest.fixture(scope="session")
def pgbouncer_postgres() -> Iterator[PrivatePostgres]:
    if not Path(PGBOUNCER).exists():
        unavailable(f"no PgBouncer binary {PGBOUNCER} (apt-get install pgbouncer)")
    instance = PrivatePostgres.create()
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()


@pytest.fixture(scope="session")
def pgbouncer_transaction(pgbouncer_postgres: PrivatePostgres) -> Iterator[PgBouncer]:
    with running(pgbouncer_postgres.port, "transaction") as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pgbouncer_session(pgbouncer_postgres: PrivatePostgres) -> Iterator[PgBouncer]:
    with running(pgbouncer_postgres.port, "session") as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def shared_pgbouncer(servers: dict[str, Server]) -> Iterator[PgBouncer]:
    server = servers["postgresql"]
    server.check()
    with running(server.admin_url.port or 5432, "transaction") as bouncer:
        yield bouncer


def _bounced_database(
    server: Server, bouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch, *, migrated: bool
) -> Iterator[str]:
    url = server.create_database(migrated=migrated)
    monkeypatch.setenv("CONTEXTSTORE_POOLER_MODE", "transaction")
    try:
        yield bouncer.url(make_url(url).database or "postgres")
    finally:
        server.drop_database(url)


@pytest.fixture
def postgresql_pgbouncer_empty_url(
    servers: dict[str, Server], shared_pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh database on the shared server, reached through PgBouncer in
    transaction mode; every Settings built in the test says so (the
    environment's ``CONTEXTSTORE_POOLER_MODE``)."""
    yield from _bounced_database(
        servers["postgresql"], shared_pgbouncer, monkeypatch, migrated=False
    )


@pytest.fixture
def postgresql_pgbouncer_migrated_url(
    servers: dict[str, Server], shared_pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The same, at contextstore's newest schema (``Server.create_database(migrated=True)``)."""
    yield from _bounced_database(
        servers["postgresql"], shared_pgbouncer, monkeypatch, migrated=True
    )
