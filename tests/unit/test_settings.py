"""Settings: sources and their order, URL normalisation, validation, no password leaks.

The autouse ``_clean_environment`` fixture (tests/conftest.py) removes every
``CONTEXTSTORE_*`` variable and runs each test inside its own ``tmp_path``, so
``.env`` files written here are the only ones read.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from contextstore import ConfigurationError, ContextStoreError, Settings

SENTINEL = "S3ntinel-pw"


def write_env(*lines: str) -> None:
    Path(".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and everything reachable through ``__cause__``/``__context__``."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__]
    return found


def assert_no_sentinel(error: BaseException) -> None:
    for link in chain(error):
        assert SENTINEL not in str(link)
        assert SENTINEL not in repr(link)
        assert all(SENTINEL not in repr(arg) for arg in link.args)


# -- sources -----------------------------------------------------------------


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./contextstore.db"
    assert settings.effective_database_url == make_url("sqlite+aiosqlite:///./contextstore.db")
    assert settings.backend == "core"
    assert settings.pool_size is None
    assert settings.max_overflow is None
    assert settings.pool_timeout is None
    assert settings.pool_recycle is None
    assert settings.pool_pre_ping is None
    assert settings.connect_timeout == 10.0
    assert settings.statement_timeout == 30.0
    assert settings.auto_migrate is True
    assert settings.echo_sql is False


def test_environment_variables_use_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", "postgresql://u@db.example/app")
    monkeypatch.setenv("CONTEXTSTORE_POOL_SIZE", "7")
    monkeypatch.setenv("CONTEXTSTORE_POOL_PRE_PING", "false")
    monkeypatch.setenv("CONTEXTSTORE_AUTO_MIGRATE", "0")
    monkeypatch.setenv("CONTEXTSTORE_STATEMENT_TIMEOUT", "2.5")
    monkeypatch.setenv("POOL_SIZE", "99")  # no prefix: not ours
    settings = Settings()
    assert settings.effective_database_url.render_as_string() == (
        "postgresql+asyncpg://u@db.example/app"
    )
    assert settings.pool_size == 7
    assert settings.pool_pre_ping is False
    assert settings.auto_migrate is False
    assert settings.statement_timeout == 2.5


def test_dotenv_file_is_read() -> None:
    write_env(
        "# a comment",
        "CONTEXTSTORE_DATABASE_URL=mysql://u@db.example/app",
        "CONTEXTSTORE_MAX_OVERFLOW=3",
        "CONTEXTSTORE_BACKEND=core",
        "SOMETHING_ELSE=ignored",
    )
    settings = Settings()
    assert settings.effective_database_url.drivername == "mysql+aiomysql"
    assert settings.max_overflow == 3


def test_keyword_beats_environment_beats_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(
        "CONTEXTSTORE_POOL_SIZE=1", "CONTEXTSTORE_MAX_OVERFLOW=1", "CONTEXTSTORE_POOL_TIMEOUT=1"
    )
    monkeypatch.setenv("CONTEXTSTORE_POOL_SIZE", "2")
    monkeypatch.setenv("CONTEXTSTORE_MAX_OVERFLOW", "2")
    settings = Settings(pool_size=3)
    assert settings.pool_size == 3  # keyword
    assert settings.max_overflow == 2  # environment over .env
    assert settings.pool_timeout == 1.0  # .env alone


def test_dotenv_of_another_directory_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env("CONTEXTSTORE_POOL_SIZE=4")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert Settings().pool_size is None


# -- URL normalisation -------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "effective"),
    [
        ("sqlite://", "sqlite+aiosqlite://"),
        ("sqlite:///./data.db", "sqlite+aiosqlite:///./data.db"),
        ("sqlite:////abs/data.db", "sqlite+aiosqlite:////abs/data.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("mysql://u@h:3307/db", "mysql+aiomysql://u@h:3307/db"),
        ("mariadb://u@h/db", "mariadb+aiomysql://u@h/db"),
        ("mysql+aiomysql://u@h/db?charset=utf8mb4", "mysql+aiomysql://u@h/db?charset=utf8mb4"),
    ],
)
def test_urls_are_normalised_to_async_drivers(given: str, effective: str) -> None:
    settings = Settings(database_url=given)
    assert isinstance(settings.effective_database_url, URL)
    assert settings.effective_database_url.render_as_string(hide_password=False) == effective
    assert settings.safe_url == effective


def test_a_url_object_is_accepted() -> None:
    url = URL.create("postgresql", username="u", password=SENTINEL, host="h", database="db")
    settings = Settings(database_url=url)
    assert settings.effective_database_url.password == SENTINEL
    assert settings.effective_database_url.drivername == "postgresql+asyncpg"


def test_safe_url_masks_the_password() -> None:
    settings = Settings(database_url=f"postgresql://app:{SENTINEL}@db.example:5432/ctx")
    assert settings.safe_url == "postgresql+asyncpg://app:***@db.example:5432/ctx"
    # the real password is still there for the driver
    assert settings.effective_database_url.password == SENTINEL
    for rendered in (
        repr(settings),
        str(settings),
        settings.safe_url,
        str(settings.effective_database_url),
        repr(settings.effective_database_url),
    ):
        assert SENTINEL not in rendered
    assert "***" in repr(settings)


# -- validation --------------------------------------------------------------

BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"database_url": f"oracle://u:{SENTINEL}@h/db"}, "unsupported scheme 'oracle'"),
    ({"database_url": f"postgresql+psycopg2://u:{SENTINEL}@h/db"}, "driver 'psycopg2'"),
    ({"database_url": f"postgresql+psycopg://u:{SENTINEL}@h/db"}, "driver 'psycopg'"),
    ({"database_url": f"mysql+pymysql://u:{SENTINEL}@h/db"}, "driver 'pymysql'"),
    ({"database_url": f"mariadb+mysqldb://u:{SENTINEL}@h/db"}, "driver 'mysqldb'"),
    ({"database_url": "sqlite+pysqlite:///x.db"}, "driver 'pysqlite'"),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "backend": "legacy"},
        "backend 'legacy' works on SQLite files only",
    ),
    (
        {"database_url": f"mysql://u:{SENTINEL}@h/db", "backend": "legacy"},
        "backend 'legacy' works on SQLite files only",
    ),
    ({"database_url": "sqlite://", "backend": "legacy"}, "backend 'legacy' needs a SQLite file"),
    (
        {"database_url": "sqlite:///file:mem?mode=memory&uri=true", "backend": "legacy"},
        "backend 'legacy' needs a SQLite file",
    ),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "backend": "orm"}, "backend"),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "pool_size": -1}, "pool_size"),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "max_overflow": -5}, "max_overflow"),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "pool_timeout": 0}, "pool_timeout"),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "connect_timeout": -1}, "connect_timeout"),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "statement_timeout": 0},
        "statement_timeout",
    ),
    ({"database_url": f"postgresql://u:{SENTINEL}@h/db", "pool_size": "many"}, "pool_size"),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "slow_statement_ms": 0},
        "slow_statement_ms",
    ),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "slow_statement_ms": -2.5},
        "slow_statement_ms",
    ),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "slow_statement_ms": float("inf")},
        "slow_statement_ms",
    ),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "slow_statement_ms": float("nan")},
        "slow_statement_ms",
    ),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h/db", "slow_statement_ms": "slow"},
        "slow_statement_ms",
    ),
    ({"database_url": f"postgresql://u:{SENTINEL}@h:port/db"}, "not a valid SQLAlchemy URL"),
    ({"database_url": f"not a url {SENTINEL}"}, "not a valid SQLAlchemy URL"),
    # parses as a URL, but the socket layer would raise OverflowError at connect
    ({"database_url": f"mysql://u:{SENTINEL}@h:-5/db"}, "port must be between 1 and 65535, got -5"),
    ({"database_url": f"mysql://u:{SENTINEL}@h:0/db"}, "port must be between 1 and 65535, got 0"),
    (
        {"database_url": f"postgresql://u:{SENTINEL}@h:65536/db"},
        "port must be between 1 and 65535, got 65536",
    ),
    ({"database_url": ""}, "not a valid SQLAlchemy URL"),
]


@pytest.mark.parametrize(("values", "message"), BAD_SETTINGS)
def test_bad_settings_raise_configuration_error(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings(**values)
    assert message in str(caught.value)
    assert isinstance(caught.value, ContextStoreError)
    assert_no_sentinel(caught.value)


@pytest.mark.parametrize(
    ("url", "port"), [("postgresql://u@h:1/db", 1), ("mysql://u@h:65535/db", 65535)]
)
def test_ports_at_the_edges_are_accepted(url: str, port: int) -> None:
    assert Settings(database_url=url).effective_database_url.port == port


def test_messages_name_the_field() -> None:
    with pytest.raises(ConfigurationError, match=r"^invalid settings: pool_size: .*greater than"):
        Settings(pool_size=-1)


@pytest.mark.parametrize(("values", "message"), BAD_SETTINGS)
def test_bad_settings_from_the_environment_do_not_leak_either(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], message: str
) -> None:
    for name, value in values.items():
        monkeypatch.setenv(f"CONTEXTSTORE_{name.upper()}", str(value))
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    assert message in str(caught.value)
    assert_no_sentinel(caught.value)


def test_bad_dotenv_value_does_not_leak() -> None:
    write_env(f"CONTEXTSTORE_DATABASE_URL=postgresql+psycopg2://u:{SENTINEL}@h/db")
    with pytest.raises(ConfigurationError) as caught:
        Settings()
    assert_no_sentinel(caught.value)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ConfigurationError, match="frozen: cannot set 'database_url'") as caught:
        settings.database_url = f"postgresql://u:{SENTINEL}@h/db"  # type: ignore[misc]
    assert_no_sentinel(caught.value)
    assert settings.database_url == "sqlite+aiosqlite:///./contextstore.db"
    assert settings.effective_database_url.drivername == "sqlite+aiosqlite"


# -- unknown names, switching a limit off, pool_size 0 ------------------------


def test_a_misspelt_keyword_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"databse_url: not a setting") as caught:
        Settings(databse_url=f"postgresql://u:{SENTINEL}@h/db")
    assert "database_url" in str(caught.value)  # the list of what is a setting
    assert_no_sentinel(caught.value)


def test_a_misspelt_environment_variable_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTEXTSTORE_DATABSE_URL", f"postgresql://u:{SENTINEL}@h/db")
    with pytest.raises(ConfigurationError, match=r"CONTEXTSTORE_DATABSE_URL: not a setting"):
        Settings()
    # explicit keywords do not make the stray variable any less wrong
    with pytest.raises(ConfigurationError, match=r"CONTEXTSTORE_DATABSE_URL"):
        Settings(database_url="sqlite:///./x.db")


def test_a_misspelt_dotenv_key_is_refused_and_the_services_own_keys_are_not() -> None:
    write_env("SERVICE_TOKEN=abc", "CONTEXTSTORE_POOL_SIZE=3", "CONTEXTSTORE_POOLSIZE=4")
    with pytest.raises(ConfigurationError, match=r"CONTEXTSTORE_POOLSIZE: not a setting"):
        Settings()
    write_env("SERVICE_TOKEN=abc", "CONTEXTSTORE_POOL_SIZE=3")
    assert Settings().pool_size == 3


def test_the_test_suites_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTEXTSTORE_TEST_POSTGRES_URL", "postgresql://u@h/db")
    monkeypatch.setenv("CONTEXTSTORE_REQUIRE_SERVERS", "1")
    assert Settings().backend == "core"


@pytest.mark.parametrize("word", ["none", "None", "off", " OFF "])
def test_statement_timeout_can_be_switched_off_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    monkeypatch.setenv("CONTEXTSTORE_STATEMENT_TIMEOUT", word)
    assert Settings().statement_timeout is None
    write_env(f"CONTEXTSTORE_STATEMENT_TIMEOUT={word}")
    monkeypatch.delenv("CONTEXTSTORE_STATEMENT_TIMEOUT")
    assert Settings().statement_timeout is None


def test_slow_statement_ms_is_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().slow_statement_ms is None
    assert Settings(slow_statement_ms=250).slow_statement_ms == 250.0
    monkeypatch.setenv("CONTEXTSTORE_SLOW_STATEMENT_MS", "12.5")
    assert Settings().slow_statement_ms == 12.5
    monkeypatch.setenv("CONTEXTSTORE_SLOW_STATEMENT_MS", "off")
    assert Settings().slow_statement_ms is None


def test_pool_size_zero_is_refused() -> None:
    # SQLAlchemy's QueuePool would read 0 as "no limit at all"
    with pytest.raises(ConfigurationError, match=r"pool_size: .*greater than or equal to 1"):
        Settings(pool_size=0)
    assert Settings(pool_size=1, max_overflow=0).max_overflow == 0


# -- a password anywhere in the URL ------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SENTINEL}@h/db?ssl=disable",
        f"postgresql://u@h/db?password={SENTINEL}&ssl=disable",
        f"mysql://u@h/db?passwd={SENTINEL}",
        f"mariadb://u:{SENTINEL}@h/db?password={SENTINEL}",
    ],
)
def test_no_dump_of_the_settings_holds_the_password(url: str) -> None:
    settings = Settings(database_url=url)
    shown = [
        repr(settings),
        str(settings),
        settings.safe_url,
        repr(settings.effective_database_url),
        str(settings.effective_database_url),
        settings.database_url,
        repr(settings.model_dump()),
        settings.model_dump_json(),
        repr(vars(settings)),
        repr(settings.model_copy()),
    ]
    assert all(SENTINEL not in text for text in shown), shown
    # the working URL still carries it, in the one place the drivers read
    assert settings.effective_database_url.password == SENTINEL
    assert not {"password", "passwd"} & set(settings.effective_database_url.query)
    with pytest.raises(ConfigurationError, match="cannot be pickled") as caught:
        pickle.dumps(settings)
    assert_no_sentinel(caught.value)


def test_settings_without_a_password_pickle() -> None:
    settings = Settings(database_url="postgresql://u@h/db")
    assert pickle.loads(pickle.dumps(settings)) == settings


def test_two_different_passwords_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="more than one password") as caught:
        Settings(database_url=f"postgresql://u:{SENTINEL}@h/db?password=other")
    assert_no_sentinel(caught.value)
