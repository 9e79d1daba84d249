"""Fixtures for every test: fresh databases per test, backend selection, env isolation.

Database fixtures:

* ``sqlite_empty_url`` / ``postgresql_empty_url`` / ``mysql_empty_url``: a fresh,
  empty database (no tables) for one test, dropped afterwards;
* ``empty_url``: the same, parametrised over the three dialects;
* ``sqlite_migrated_url`` / ``postgresql_migrated_url`` / ``mysql_migrated_url``
  (and the topologies' twins): the same at contextstore's newest schema, a copy
  of a database migrated once per run (``tests._servers``);
* ``store``: a connected ``Store`` at the newest schema, parametrised over the
  backends ``legacy-sqlite``, ``core-sqlite``, ``core-postgresql``,
  ``core-mysql``, ``core-mysql-galera`` (a private three-node cluster, marker
  ``galera``), ``core-postgresql-replicas`` (a private primary with two hot
  standbys serving the reads, marker ``replicas``) and
  ``core-postgresql-pgbouncer`` (the shared PostgreSQL server through a private
  PgBouncer in transaction mode with its default configuration, marker
  ``pgbouncer``); see ``tests/contract`` and ``tests/topologies``.

Server fixtures skip with the reason when a server is unreachable, or fail
when ``CONTEXTSTORE_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from contextstore import Settings, Store
from tests._servers import TEST_VARIABLES, Server
from tests.topologies._galera import (
    galera_cluster,
    mysql_galera_empty_url,
    mysql_galera_migrated_url,
)
from tests.topologies._pg_cluster import pg_cluster as pg_cluster
from tests.topologies._pg_cluster import (
    postgresql_replicas_empty_url as postgresql_replicas_empty_url,
)
from tests.topologies._pg_cluster import (
    postgresql_replicas_migrated_url as postgresql_replicas_migrated_url,
)
from tests.topologies._pgbouncer import (
    postgresql_pgbouncer_empty_url,
    postgresql_pgbouncer_migrated_url,
    shared_pgbouncer,
)
from tests.topologies._registry import REPLICA_URLS

# fixtures of the topologies' backends (BACKENDS below)
__all__ = [
    "galera_cluster",
    "mysql_galera_empty_url",
    "mysql_galera_migrated_url",
    "postgresql_pgbouncer_empty_url",
    "postgresql_pgbouncer_migrated_url",
    "shared_pgbouncer",
]
SERVER_DIALECTS = ("postgresql", "mysql")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CONTEXTSTORE_* variable and no stray .env leaks into a test."""
    for name in list(os.environ):
        if name.startswith("CONTEXTSTORE_") and not name.startswith(TEST_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, Server]]:
    found = {dialect: Server.from_env(dialect) for dialect in SERVER_DIALECTS}
    yield found
    for server in found.values():
        for name in list(server.created):
            server.drop_database(server.url_for(name))


def _server_url(servers: dict[str, Server], dialect: str, *, migrated: bool) -> Iterator[str]:
    server = servers[dialect]
    url = server.create_database(migrated=migrated)
    yield url
    server.drop_database(url)


@pytest.fixture
def sqlite_empty_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'contextstore.db'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run (per xdist worker)."""
    from tests._servers import migrate_database

    path = tmp_path_factory.mktemp("template") / "contextstore.db"
    migrate_database(f"sqlite+aiosqlite:///{path}")
    # the Store closed its last connection: the WAL was checkpointed into the file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture
def sqlite_migrated_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "contextstore.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def postgresql_empty_url(servers: dict[str, Server]) -> Iterator[str]:
    yield from _server_url(servers, "postgresql", migrated=False)


@pytest.fixture
def postgresql_migrated_url(servers: dict[str, Server]) -> Iterator[str]:
    yield from _server_url(servers, "postgresql", migrated=True)


@pytest.fixture
def mysql_empty_url(servers: dict[str, Server]) -> Iterator[str]:
    yield from _server_url(servers, "mysql", migrated=False)


@pytest.fixture
def mysql_migrated_url(servers: dict[str, Server]) -> Iterator[str]:
    yield from _server_url(servers, "mysql", migrated=True)


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def empty_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database on each dialect in turn."""
    url: str = request.getfixturevalue(f"{request.param}_empty_url")
    return url


@pytest.fixture
def dialect_name(empty_url: str) -> str:
    from sqlalchemy.engine import make_url

    backend = make_url(empty_url).get_backend_name()
    return {"mariadb": "mysql", "postgres": "postgresql"}.get(backend, backend)


def pytest_collection_modifyitems(config: pytest.Config, items: list[Any]) -> None:
    """Run fault tests after everything else, all on one pytest-xdist worker: they
    share that worker's private servers, and do not compete with each other."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is not None)
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(pytest.mark.xdist_group("faults"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figures every fault test measured (kills, restarts, latencies...),
    carried on the test reports (``tests/faults/conftest.py``)."""
    figures = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "fault figures"
    ]
    if not figures:
        return
    terminalreporter.section("fault-injection figures")
    for test_id, measured in figures:
        line = ", ".join(f"{name}={value}" for name, value in measured.items())
        terminalreporter.write_line(f"{test_id}: {line}")


BACKENDS = [
    pytest.param(
        "legacy-sqlite", id="legacy-sqlite", marks=[pytest.mark.sqlite, pytest.mark.legacy]
    ),
    pytest.param("core-sqlite", id="core-sqlite", marks=[pytest.mark.sqlite]),
    pytest.param("core-postgresql", id="core-postgresql", marks=[pytest.mark.postgresql]),
    pytest.param("core-mysql", id="core-mysql", marks=[pytest.mark.mysql]),
    # a private three-node Galera cluster (tests/topologies/_galera.py): writes
    # and units of work on node 1, single reads on nodes 2 and 3 (replica_urls)
    pytest.param("core-mysql-galera", id="core-mysql-galera", marks=[pytest.mark.galera]),
    pytest.param(
        "core-postgresql-replicas", id="core-postgresql-replicas", marks=[pytest.mark.replicas]
    ),
    pytest.param(
        "core-postgresql-pgbouncer",
        id="core-postgresql-pgbouncer",
        marks=[pytest.mark.pgbouncer],
    ),
]


def _backend_database(request: pytest.FixtureRequest, kind: str) -> tuple[str, str]:
    """``(backend, url)`` of the ``BACKENDS`` parameter: the fixture
    ``<dialect>_<kind>_url`` ("postgresql-pgbouncer": postgresql_pgbouncer_empty_url)."""
    backend, dialect = str(request.param).split("-", 1)
    url: str = request.getfixturevalue(f"{dialect.replace('-', '_')}_{kind}_url")
    return backend, url


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(backend, url)``: a fresh empty database for one of the backends."""
    return _backend_database(request, "empty")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(backend, url)``: a database for the ``store`` fixture, on each of the
    backends in turn.

    Core gets a copy of a migrated database (its schema check at connect finds
    the newest revision); legacy an empty file, where it creates its own tables
    as it does for its users.
    """
    legacy = str(request.param).startswith("legacy-")
    return _backend_database(request, "empty" if legacy else "migrated")


@pytest.fixture
async def store(store_url: tuple[str, str]) -> AsyncIterator[Store]:
    """A connected Store at the newest schema, on each of the backends in turn."""
    backend, url = store_url
    replicas = REPLICA_URLS.get(url, [])
    settings = Settings(database_url=url, backend=backend, replica_urls=replicas)
    async with Store(settings) as connected:
        yield connected
