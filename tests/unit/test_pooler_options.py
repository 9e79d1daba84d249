"""``pooler_mode`` and the driver options of a PostgreSQL URL's query, with no server."""

from __future__ import annotations

from typing import Any

import pytest

from contextstore import ConfigurationError, Settings
from contextstore._dialects import dialect_for
from contextstore._dialects._pgbound import bounded_connection_class
from contextstore.engine import engine_options


def connect_args(url: str, **values: Any) -> dict[str, Any]:
    settings = Settings(database_url=url, **values)
    found: dict[str, Any] = engine_options(settings.effective_database_url, settings)[
        "connect_args"
    ]
    return found


def test_pooler_mode_defaults_to_none() -> None:
    assert Settings(database_url="postgresql://u@h/db").pooler_mode == "none"


def test_pooler_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTSTORE_POOLER_MODE", "transaction")
    assert Settings(database_url="postgresql://u@h/db").pooler_mode == "transaction"


def test_unknown_pooler_mode_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="pooler_mode"):
        Settings(database_url="postgresql://u@h/db", pooler_mode="statement")


@pytest.mark.parametrize("url", ["sqlite:///./x.db", "mysql://u@h/db", "sqlite://"])
@pytest.mark.parametrize("mode", ["session", "transaction"])
def test_pooler_mode_outside_postgresql_is_refused(url: str, mode: str) -> None:
    with pytest.raises(ConfigurationError, match=f"pooler_mode '{mode}' applies to PostgreSQL"):
        Settings(database_url=url, pooler_mode=mode)


def test_transaction_mode_startup_has_no_statement_timeout() -> None:
    found = connect_args("postgresql://u@h/db", pooler_mode="transaction")
    assert found == {
        "timeout": 10.0,
        "connection_class": bounded_connection_class(32.0),
        # the only startup parameter besides PgBouncer's own: application_name
        "server_settings": {"application_name": "contextstore"},
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
    }


def test_session_mode_startup_has_no_statement_timeout_and_keeps_caches() -> None:
    found = connect_args("postgresql://u@h/db", pooler_mode="session")
    assert found == {
        "timeout": 10.0,
        "connection_class": bounded_connection_class(32.0),
        "server_settings": {"application_name": "contextstore"},
    }


def test_transaction_mode_runs_every_call_in_a_transaction_with_set_local() -> None:
    settings = Settings(database_url="postgresql://u@h/db", pooler_mode="transaction")
    recipe = dialect_for(settings.effective_database_url)
    assert recipe.transactions_only(settings)
    wire = recipe.wire_factory(settings)(object())
    assert wire._begin == "BEGIN; SET LOCAL statement_timeout = 30000"  # type: ignore[attr-defined]


def test_without_a_statement_timeout_reads_stay_in_autocommit() -> None:
    settings = Settings(
        database_url="postgresql://u@h/db", pooler_mode="transaction", statement_timeout=None
    )
    assert not dialect_for(settings.effective_database_url).transactions_only(settings)
    assert not dialect_for(settings.effective_database_url).transactions_only(
        Settings(database_url="postgresql://u@h/db")
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("statement_cache_size=0", {"statement_cache_size": 0}),
        ("prepared_statement_cache_size=0", {"prepared_statement_cache_size": 0}),
        ("max_cacheable_statement_size=2048", {"max_cacheable_statement_size": 2048}),
        ("max_cached_statement_lifetime=60", {"max_cached_statement_lifetime": 60}),
        ("direct_tls=false", {"direct_tls": False}),
        ("direct_tls=TRUE", {"direct_tls": True}),
    ],
)
def test_query_options_are_typed(query: str, expected: dict[str, Any]) -> None:
    found = connect_args(f"postgresql://u@h/db?{query}")
    for name, value in expected.items():
        assert found[name] == value
        assert type(found[name]) is type(value)


@pytest.mark.parametrize(
    "query",
    [
        "statement_cache_size=none",
        "statement_cache_size=-1",
        "statement_cache_size=1.5",
        "prepared_statement_cache_size=abc",
        "direct_tls=maybe",
        "statement_cache_size=0&statement_cache_size=1",
    ],
)
def test_bad_query_options_are_refused_by_name(query: str) -> None:
    name = query.split("=", 1)[0]
    with pytest.raises(ConfigurationError, match=f"database_url: the query option '{name}'"):
        Settings(database_url=f"postgresql://u:secret@h/db?{query}")


@pytest.mark.parametrize(
    ("name", "setting"),
    [("timeout", "connect_timeout"), ("command_timeout", "statement_timeout")],
)
def test_query_options_contextstore_sets_point_to_the_setting(name: str, setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"use the {setting} setting") as raised:
        Settings(database_url=f"postgresql://u:secret@h/db?{name}=5")
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("name", ["statement_cache_size", "prepared_statement_cache_size"])
def test_a_statement_cache_in_transaction_mode_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{name}=100 prepares named statements"):
        Settings(database_url=f"postgresql://u@h/db?{name}=100", pooler_mode="transaction")
    # 0 is what transaction mode sets anyway
    assert connect_args(f"postgresql://u@h/db?{name}=0", pooler_mode="transaction")[name] == 0
