"""Fixtures of the fault-injection suite: private servers, fresh databases, admin sessions.

Tests that restart, freeze or reconfigure a server use the private instances
started here (``_instances``), never the shared servers on 5432/3306 that other
test runs use at the same time. Every server-side fault test uses them, so a
fault never disturbs anyone else. Each test gets a fresh database on the
instance, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from contextstore import Settings

from ._instances import Admin, Instance, PrivateMariaDB, PrivatePostgres, connect_admin
from ._workload import FIGURES, FIGURES_PROPERTY

#: short timeouts, so a fault shows within seconds.
CONNECT_TIMEOUT = 2.0
STATEMENT_TIMEOUT = 5.0
POOL_TIMEOUT = 5.0


@dataclass
class FaultDatabase:
    """A fresh database on a private instance."""

    instance: Instance
    name: str
    url: str

    @property
    def dialect(self) -> str:
        return self.instance.dialect

    def settings(self, url: str | None = None, **overrides: Any) -> Settings:
        """Settings for this database (or ``url``, e.g. through a proxy) with short timeouts."""
        values: dict[str, Any] = {
            "database_url": url or self.url,
            "connect_timeout": CONNECT_TIMEOUT,
            "statement_timeout": STATEMENT_TIMEOUT,
            "pool_timeout": POOL_TIMEOUT,
        }
        values.update(overrides)
        return Settings(**values)


def _instance(kind: type[PrivatePostgres] | type[PrivateMariaDB]) -> Iterator[Instance]:
    instance = kind.create()
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()  # thawed, stopped and removed whatever the tests did


@pytest.fixture(scope="session")
def private_postgresql() -> Iterator[Instance]:
    yield from _instance(PrivatePostgres)


@pytest.fixture(scope="session")
def private_mysql() -> Iterator[Instance]:
    yield from _instance(PrivateMariaDB)


@pytest.fixture(
    params=[
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
def instance(request: pytest.FixtureRequest) -> Instance:
    """A private server of each dialect in turn, running and answering."""
    found: Instance = request.getfixturevalue(f"private_{request.param}")
    found.thaw()  # a failed test of a frozen server must not leak into the next
    if not found.is_ready():
        found.start()
    return found


@pytest.fixture
def fault_db(instance: Instance) -> Iterator[FaultDatabase]:
    """A fresh empty database on ``instance``, dropped after the test."""
    yield from _database(instance)


@pytest.fixture
def mysql_fault_db(private_mysql: Instance) -> Iterator[FaultDatabase]:
    """A fresh empty database on the private MariaDB, dropped after the test."""
    yield from _database(private_mysql)


def _database(instance: Instance) -> Iterator[FaultDatabase]:
    server = instance.server()
    url = server.create_database()
    try:
        yield FaultDatabase(instance=instance, name=str(make_url(url).database), url=url)
    finally:
        instance.thaw()
        if not instance.is_ready():
            instance.start()
        server.drop_database(url)


@pytest.fixture
async def admin(instance: Instance) -> AsyncIterator[Admin]:
    """A superuser session on ``instance``, outside the test database."""
    session = await connect_admin(instance)
    try:
        yield session
    finally:
        await session.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Carry the figures a test measured on its report: pytest-xdist sends
    reports to the controller, whose terminal summary prints them
    (``tests/conftest.py``)."""
    report = yield
    while FIGURES:
        test_id, figures = FIGURES.pop(0)
        report.user_properties.append((FIGURES_PROPERTY, [test_id, figures]))
    return report
