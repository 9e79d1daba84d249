"""Configuration: keyword arguments, then ``CONTEXTSTORE_*`` variables, then ``.env``.

The URL is parsed and normalised once, into a ``sqlalchemy.engine.URL`` whose
``repr`` and ``str`` mask the password; nothing else in contextstore renders
the raw URL. Validation failures become :class:`ConfigurationError` built
without the input values (pydantic would otherwise echo them, password
included) and with no exception chained.

A URL that parses but cannot work is refused here too, not at connect time
where the driver would raise its own untyped error: a port outside 1-65535
(``OverflowError`` from the socket layer).
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ._dialects import dialect_for
from ._facts import is_memory_database
from .errors import ConfigurationError

__all__ = ["Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./contextstore.db"
MAX_PORT = 65535


class Settings(BaseSettings):
    """Everything contextstore needs to know to reach its database.

    Values come from keyword arguments, then ``CONTEXTSTORE_<FIELD>``
    environment variables, then a ``.env`` file in the working directory.
    Pool fields left as ``None`` take the dialect's default (see
    ``contextstore.engine.engine_options``); they are ignored where the
    dialect has no pool (in-memory SQLite). A Settings object is frozen.

    Attributes:
        database_url: any SQLAlchemy URL; ``sqlite://``, ``postgresql://``
            (or ``postgres://``), ``mysql://`` and ``mariadb://`` are
            normalised to their async drivers (aiosqlite, asyncpg, aiomysql).
            Default ``sqlite+aiosqlite:///./contextstore.db``.
        backend: ``"core"`` (SQLAlchemy Core, every dialect; the default) or
            ``"legacy"`` (raw aiosqlite, SQLite files only).
        pool_size: connections kept open (default 5 for a SQLite file, 10
            for a server).
        max_overflow: connections opened beyond ``pool_size`` under load
            (default 10).
        pool_timeout: seconds to wait for a free connection before
            ``PoolExhaustedError`` (default 30).
        pool_recycle: seconds after which a connection is replaced (default
            1800 on PostgreSQL, 3600 on MySQL/MariaDB, never on SQLite).
        pool_pre_ping: test each connection as it leaves the pool (default
            off: a connection that died in the pool fails its first statement
            and the unit is retried on a fresh one).
        connect_timeout: seconds to connect to a server (default 10).
        statement_timeout: seconds a statement may run before
            ``QueryTimeoutError`` (default 30; None for no limit): enforced
            by the server on PostgreSQL and MySQL/MariaDB, by interrupting
            the statement on SQLite (core backend; legacy has no limit).
        auto_migrate: ``Store.connect()`` brings the schema to the newest
            revision (default True).
        echo_sql: log every statement through the ``sqlalchemy.engine``
            logger (default False).

    Raises:
        ConfigurationError: a value is invalid or cannot work (unsupported
            scheme or driver, legacy on a server or in-memory database, a
            port outside 1-65535...). The message names the field and never
            contains a password.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONTEXTSTORE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    backend: Literal["core", "legacy"] = "core"
    pool_size: int | None = Field(default=None, ge=0)
    max_overflow: int | None = Field(default=None, ge=0)
    pool_timeout: float | None = Field(default=None, gt=0)
    pool_recycle: float | None = Field(default=None, gt=0)
    pool_pre_ping: bool | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    statement_timeout: float | None = Field(default=30.0, gt=0)
    auto_migrate: bool = True
    echo_sql: bool = False

    _url: URL = PrivateAttr()

    def __init__(self, **values: Any) -> None:
        problem: str | None = None
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            problem = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
        if problem is not None:
            # raised outside the except block: no chained pydantic error
            # that could carry the input values
            raise ConfigurationError(f"invalid settings: {problem}")

    @field_validator("database_url", mode="before")
    @classmethod
    def _url_as_text(cls, value: Any) -> Any:
        if isinstance(value, URL):
            return value.render_as_string(hide_password=False)
        return value

    @model_validator(mode="after")
    def _normalise(self) -> Settings:
        url = _parse_url(self.database_url)
        _check_url(url)
        recipe = dialect_for(url)
        url = recipe.normalise_url(url)
        if self.backend == "legacy":
            if recipe.is_server:
                raise ConfigurationError(
                    f"backend 'legacy' works on SQLite files only, not {recipe.name} "
                    f"({url!r}); use backend 'core'"
                )
            if is_memory_database(url.database, url.query):
                raise ConfigurationError(
                    "backend 'legacy' needs a SQLite file: it opens a connection per "
                    "operation, and each would see its own empty in-memory database"
                )
        self._url = url
        return self

    @property
    def effective_database_url(self) -> URL:
        """The normalised URL (async driver); its ``repr``/``str`` mask the password."""
        return self._url

    @property
    def safe_url(self) -> str:
        """The normalised URL as text, password masked."""
        return self._url.render_as_string(hide_password=True)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):  # private state (the parsed URL), set while validating
            super().__setattr__(name, value)
            return
        # pydantic's frozen-instance error would quote the value, password included
        raise ConfigurationError(
            f"Settings are frozen: cannot set {name!r}; build a new Settings(...) instead"
        )

    def __repr_args__(self) -> Any:
        yield "database_url", self.safe_url
        yield from super().__repr_args__()


def _parse_url(text: str) -> URL:
    failed = False
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        # SQLAlchemy's message quotes the whole string, password included
        failed = True
    if failed:
        raise ConfigurationError(
            "database_url: not a valid SQLAlchemy URL (expected e.g. "
            "sqlite:///./contextstore.db or postgresql://user:***@host/db)"
        )
    return url


def _check_url(url: URL) -> None:
    """Refuse what parses as a URL but cannot work; messages never quote the URL."""
    if url.port is not None and not 1 <= url.port <= MAX_PORT:
        raise ConfigurationError(
            f"database_url: port must be between 1 and {MAX_PORT}, got {url.port}"
        )
