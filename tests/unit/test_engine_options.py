"""engine_options per dialect, as exact dicts, with no server (the recipe is pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pymysql import converters as pymysql_converters
from pymysql.constants import FIELD_TYPE
from sqlalchemy.pool import AsyncAdaptedQueuePool, StaticPool

from contextstore import ConfigurationError, Settings
from contextstore._dialects import dialect_for
from contextstore._dialects import mysql as mysql_recipe
from contextstore._dialects._drivers.aiomysql import READ_TIMEOUT_ARG, connect_within_timeout
from contextstore._dialects._drivers.aiosqlite import STATEMENT_TIMEOUT_ARG
from contextstore._dialects._drivers.aiosqlite import connect as one_hop_connect
from contextstore._dialects._pgbound import bounded_connection_class
from contextstore._facts import json_loads, json_text
from contextstore.engine import create_engine, engine_options

#: pymysql's decoders with DATETIME and TIMESTAMP parsed by contextstore's
#: fromisoformat decoder, written out here rather than by the recipe's decoders()
FAST_DATETIME_DECODERS = {
    **pymysql_converters.decoders,
    FIELD_TYPE.DATETIME: mysql_recipe._datetime,
    FIELD_TYPE.TIMESTAMP: mysql_recipe._datetime,
}

#: MySQL/MariaDB's default wait_timeout: a pooled connection idle longer is dead.
MYSQL_WAIT_TIMEOUT = 28_800


def options(url: str, **values: Any) -> dict[str, Any]:
    settings = Settings(database_url=url, **values)
    found = engine_options(settings.effective_database_url, settings)
    # every dialect: JSON columns through the codec both backends share
    assert found.pop("json_serializer") is json_text
    assert found.pop("json_deserializer") is json_loads
    return found


# -- SQLite ------------------------------------------------------------------


def test_sqlite_file() -> None:
    assert options("sqlite:///./data.db") == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": 30.0,
        "pool_recycle": -1,
        "pool_pre_ping": False,
        "connect_args": {
            "timeout": 30.0,
            "async_creator_fn": one_hop_connect,
            STATEMENT_TIMEOUT_ARG: 30.0,
        },
    }


def test_sqlite_file_with_overrides() -> None:
    assert options(
        "sqlite:///./data.db",
        pool_size=2,
        max_overflow=0,
        pool_timeout=1.5,
        pool_recycle=60,
        pool_pre_ping=True,
        echo_sql=True,
        statement_timeout=None,
    ) == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 2,
        "max_overflow": 0,
        "pool_timeout": 1.5,
        "pool_recycle": 60.0,
        "pool_pre_ping": True,
        "connect_args": {
            "timeout": 30.0,
            "async_creator_fn": one_hop_connect,
            STATEMENT_TIMEOUT_ARG: None,
        },
        "echo": True,
    }


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:shared?mode=memory&uri=true"]
)
def test_sqlite_memory_gets_one_static_connection(url: str) -> None:
    expected = {
        "poolclass": StaticPool,
        "connect_args": {
            "timeout": 30.0,
            "async_creator_fn": one_hop_connect,
            STATEMENT_TIMEOUT_ARG: 30.0,
            "check_same_thread": False,
        },
    }
    assert options(url) == expected
    # pool knobs are ignored: StaticPool accepts none of them
    assert options(url, pool_size=3, max_overflow=1, pool_timeout=2, pool_recycle=5) == expected


# -- PostgreSQL --------------------------------------------------------------


def test_postgresql() -> None:
    assert options("postgresql://u@h/db") == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 30.0,
        "pool_recycle": 1800.0,
        # no ping per checkout: a dead connection is retried by ConnectionManager
        "pool_pre_ping": False,
        "connect_args": {
            "timeout": 10.0,
            "connection_class": bounded_connection_class(32.0),
            "server_settings": {"application_name": "contextstore", "statement_timeout": "30000"},
        },
    }


def test_postgresql_with_overrides() -> None:
    assert options(
        "postgres://u@h/db",
        pool_size=4,
        max_overflow=1,
        pool_timeout=3,
        pool_recycle=300,
        pool_pre_ping=True,
        connect_timeout=2.5,
        statement_timeout=0.5,
    ) == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 4,
        "max_overflow": 1,
        "pool_timeout": 3.0,
        "pool_recycle": 300.0,
        "pool_pre_ping": True,
        "connect_args": {
            "timeout": 2.5,
            "connection_class": bounded_connection_class(2.5),
            "server_settings": {"application_name": "contextstore", "statement_timeout": "500"},
        },
    }


def test_postgresql_without_statement_timeout() -> None:
    connect_args = options("postgresql://u@h/db", statement_timeout=None)["connect_args"]
    assert connect_args == {
        "timeout": 10.0,
        "server_settings": {"application_name": "contextstore"},
    }


@pytest.mark.parametrize(
    ("seconds", "millis"), [(1.001, "1001"), (0.3, "300"), (0.0004, "1"), (2.0, "2000")]
)
def test_postgresql_statement_timeout_is_rounded_never_zero(seconds: float, millis: str) -> None:
    # 0 would mean "no limit" to PostgreSQL
    connect_args = options("postgresql://u@h/db", statement_timeout=seconds)["connect_args"]
    assert connect_args["server_settings"]["statement_timeout"] == millis


# -- MySQL / MariaDB ---------------------------------------------------------


@pytest.mark.parametrize("url", ["mysql://u@h/db", "mariadb://u@h/db"])
def test_mysql_and_mariadb(url: str) -> None:
    assert options(url) == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 10,
        "max_overflow": 10,
        "pool_timeout": 30.0,
        "pool_recycle": 3600.0,
        "pool_pre_ping": False,
        "connect_args": {
            "charset": "utf8mb4",
            "connect_timeout": 10.0,
            "init_command": "SET time_zone = '+00:00'",
            # DATETIME text parsed by datetime.fromisoformat
            "conv": FAST_DATETIME_DECODERS,
            "autocommit": True,
            "async_creator_fn": connect_within_timeout,
            # every wait for a reply: the statement limit plus the margin
            READ_TIMEOUT_ARG: 32.0,
        },
    }
    assert options(url)["pool_recycle"] < MYSQL_WAIT_TIMEOUT


def test_mysql_with_overrides() -> None:
    assert options(
        "mysql://u@h/db",
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.5,
        pool_recycle=600,
        pool_pre_ping=True,
        connect_timeout=0.5,
        statement_timeout=None,
        echo_sql=True,
    ) == {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": 1,
        "max_overflow": 0,
        "pool_timeout": 0.5,
        "pool_recycle": 600.0,
        "pool_pre_ping": True,
        "connect_args": {
            "charset": "utf8mb4",
            "connect_timeout": 0.5,
            "init_command": "SET time_zone = '+00:00'",
            # DATETIME text parsed by datetime.fromisoformat
            "conv": FAST_DATETIME_DECODERS,
            "autocommit": True,
            "async_creator_fn": connect_within_timeout,
            READ_TIMEOUT_ARG: None,
        },
        "echo": True,
    }


# -- the recipe is pure and its output is accepted ------------------------------


def test_engine_options_does_no_io_and_returns_fresh_dicts() -> None:
    settings = Settings(database_url="postgresql://u@unresolvable.invalid/db")
    first = engine_options(settings.effective_database_url, settings)
    first["connect_args"]["server_settings"]["application_name"] = "changed"
    second = engine_options(settings.effective_database_url, settings)
    assert second["connect_args"]["server_settings"]["application_name"] == "contextstore"


@pytest.mark.parametrize(
    ("url", "pool_class", "size"),
    [
        ("sqlite:///./data.db", AsyncAdaptedQueuePool, 3),
        ("sqlite://", StaticPool, None),
        ("postgresql://u@unresolvable.invalid/db", AsyncAdaptedQueuePool, 3),
        ("mysql://u@unresolvable.invalid/db", AsyncAdaptedQueuePool, 3),
    ],
)
async def test_create_engine_accepts_every_option(
    url: str, pool_class: type, size: int | None
) -> None:
    # creating the engine connects nowhere; unknown kwargs would raise TypeError here
    engine = create_engine(Settings(database_url=url, pool_size=3))
    try:
        assert type(engine.pool) is pool_class
        if size is not None:
            assert engine.pool.size() == size  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


def test_unknown_dialect_is_a_configuration_error() -> None:
    from sqlalchemy.engine import make_url

    with pytest.raises(ConfigurationError, match="unsupported scheme 'oracle'"):
        dialect_for(make_url("oracle://u@h/db"))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1/db",
        "postgresql://u@127.0.0.2:5433/db",
        "postgresql://u@localhost/db",
        "postgresql://u@[::1]/db",
        "postgresql:///db",
    ],
)
def test_postgresql_on_this_machine_skips_the_tls_request(url: str) -> None:
    assert options(url)["connect_args"]["ssl"] is False


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db.example.org/db",
        "postgresql://u@10.0.0.5/db",
        "postgresql://u@127.0.0.1/db?ssl=require",
        "postgresql://u@localhost/db?sslmode=verify-full",
    ],
)
def test_postgresql_remote_or_explicit_tls_keeps_the_driver_default(url: str) -> None:
    assert "ssl" not in options(url)["connect_args"]


# -- PostgreSQL failover: several hosts ---------------------------------------


def test_several_postgresql_hosts_connect_to_the_one_that_takes_writes() -> None:
    found = options("postgresql://u@/db?host=db1:5432&host=db2:5432")
    assert found["connect_args"]["target_session_attrs"] == "read-write"
    assert "ssl" not in found["connect_args"]  # remote hosts: the driver's default


def test_several_loopback_hosts_skip_the_tls_request() -> None:
    found = options("postgresql://u@/db?host=127.0.0.1:5433&host=localhost:5434")
    assert found["connect_args"]["ssl"] is False
    assert found["connect_args"]["target_session_attrs"] == "read-write"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db1:5432/db",
        "postgresql://u@/db?host=db1:5432",
        "postgresql://u@/db?host=db1:5432&host=db2:5432&target_session_attrs=any",
    ],
)
def test_one_host_or_an_explicit_choice_keeps_the_driver_default(url: str) -> None:
    assert "target_session_attrs" not in options(url)["connect_args"]
