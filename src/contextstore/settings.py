"""Configuration: keyword arguments, then ``CONTEXTSTORE_*`` variables, then ``.env``.

The URL is parsed and normalised once, into a ``sqlalchemy.engine.URL`` whose
``repr`` and ``str`` mask the password; nothing else in contextstore renders
the raw URL. Validation failures become :class:`ConfigurationError` built
without the input values (pydantic would otherwise echo them, password
included) and with no exception chained.

A URL that parses but cannot work is refused here too, not at connect time
where the driver would raise its own untyped error: a port outside 1-65535
(``OverflowError`` from the socket layer). A password given in the query
string (``?password=``, which the drivers honour) is moved into the URL's own
password, the one place SQLAlchemy masks; ``database_url`` itself reads back
masked, so no dump of the settings carries the password, and a Settings that
holds one refuses to be pickled.

A name the settings do not know is refused rather than ignored: a misspelt
keyword, a ``CONTEXTSTORE_`` environment variable or such a ``.env`` key (a
``.env`` key without the prefix belongs to the service and is left alone, as
are the test suite's ``CONTEXTSTORE_TEST_*`` and
``CONTEXTSTORE_REQUIRE_SERVERS``).
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ._dialects import dialect_for
from ._facts import is_memory_database
from .errors import ConfigurationError

__all__ = ["Settings"]

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./contextstore.db"
MAX_PORT = 65535
ENV_PREFIX = "CONTEXTSTORE_"
#: the query-string keys the drivers read a password from (asyncpg, aiomysql)
_PASSWORD_KEYS = ("password", "passwd")
#: words that turn a timeout off when given as text (the environment, .env)
_NO_LIMIT = frozenset({"none", "off"})


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
        pool_size: connections kept open, at least 1 (default 5 for a SQLite
            file, 10 for a server).
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
            ``QueryTimeoutError`` (default 30; None, or ``none``/``off`` in
            the environment, for no limit): enforced
            by the server on PostgreSQL and MySQL/MariaDB, by interrupting
            the statement on SQLite (core backend; legacy has no limit).
        auto_migrate: ``Store.connect()`` brings the schema to the newest
            revision (default True).
        echo_sql: log every statement through the ``sqlalchemy.engine``
            logger (default False).
        slow_statement_ms: log a warning on the ``contextstore.slow`` logger
            (statement text and duration, never parameters) for every
            statement that runs longer than this many milliseconds; a
            positive finite number, or None (the default; ``none``/``off``
            in the environment) for no such log (core backend).
        replica_urls: read-only servers beside the primary (PostgreSQL hot
            standbys), each URL normalised like ``database_url`` and of the
            same dialect; single reads outside a unit of work go to them
            (core backend; see the scale-out guide). In the environment or
            ``.env``: a JSON list (``["postgresql://u@h1/db", ...]``) or the
            URLs separated by commas. Default: none. The field reads back
            masked; ``effective_replica_urls`` are the working URLs.
        pooler_mode: what sits between contextstore and PostgreSQL:
            ``"none"`` (the default: the server itself), ``"session"`` or
            ``"transaction"`` (PgBouncer's ``pool_mode``, or a pooler that
            behaves alike). PostgreSQL only; see the "Scale-out" guide.

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
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
    )

    database_url: str = Field(default=DEFAULT_DATABASE_URL, repr=False)
    backend: Literal["core", "legacy"] = "core"
    # 0 would mean "no limit" to SQLAlchemy's QueuePool: refused, not passed on
    pool_size: int | None = Field(default=None, ge=1)
    max_overflow: int | None = Field(default=None, ge=0)
    pool_timeout: float | None = Field(default=None, gt=0)
    pool_recycle: float | None = Field(default=None, gt=0)
    pool_pre_ping: bool | None = None
    connect_timeout: float = Field(default=10.0, gt=0)
    statement_timeout: float | None = Field(default=30.0, gt=0)
    auto_migrate: bool = True
    echo_sql: bool = False
    slow_statement_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # NoDecode: the environment's text is parsed below (JSON or commas), not
    # by pydantic-settings, whose JSON error would quote the value
    replica_urls: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    pooler_mode: Literal["none", "session", "transaction"] = "none"

    _url: URL = PrivateAttr()
    _replicas: tuple[URL, ...] = PrivateAttr(default=())

    def __init__(self, **values: Any) -> None:
        problem: str | None = None
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            problem = "; ".join(
                _problem(error) for error in exc.errors(include_input=False, include_url=False)
            )
        if problem is not None:
            # raised outside the except block: no chained pydantic error
            # that could carry the input values
            raise ConfigurationError(f"invalid settings: {problem}")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _Unknown(settings_cls, env_settings, _prefixed_environment),
            _Unknown(settings_cls, dotenv_settings, _prefixed_only),
            file_secret_settings,
        )

    @field_validator("database_url", mode="before")
    @classmethod
    def _url_as_text(cls, value: Any) -> Any:
        if isinstance(value, URL):
            return value.render_as_string(hide_password=False)
        return value

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _replica_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _split_urls(value)
        if isinstance(value, (list, tuple)):
            return [
                each.render_as_string(hide_password=False) if isinstance(each, URL) else each
                for each in value
            ]
        return value

    @field_validator("statement_timeout", "slow_statement_ms", mode="before")
    @classmethod
    def _no_limit(cls, value: Any) -> Any:
        # an environment variable cannot be None: "none" or "off" says it
        if isinstance(value, str) and value.strip().lower() in _NO_LIMIT:
            return None
        return value

    @model_validator(mode="after")
    def _normalise(self) -> Settings:
        url = _password_from_query(_parse_url(self.database_url))
        _check_url(url)
        recipe = dialect_for(url)
        url = recipe.normalise_url(url)
        recipe.check_settings(url, self)
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
        if self.replica_urls and self.backend == "legacy":
            raise ConfigurationError(
                "replica_urls: backend 'legacy' has no read replicas; use backend 'core' "
                "or leave replica_urls empty"
            )
        self._replicas = tuple(
            _replica_url(text, index, recipe.name) for index, text in enumerate(self.replica_urls)
        )
        # the fields keep the URLs masked: dumps, vars() and copies carry no
        # password; the working URLs are effective_database_url and
        # effective_replica_urls
        self.__dict__["database_url"] = self.safe_url
        self.__dict__["replica_urls"] = self.safe_replica_urls
        return self

    @property
    def effective_database_url(self) -> URL:
        """The normalised URL (async driver); its ``repr``/``str`` mask the password."""
        return self._url

    @property
    def safe_url(self) -> str:
        """The normalised URL as text, password masked."""
        return self._url.render_as_string(hide_password=True)

    @property
    def effective_replica_urls(self) -> list[URL]:
        """The normalised replica URLs (async driver); each masks its password."""
        return list(self._replicas)

    @property
    def safe_replica_urls(self) -> list[str]:
        """The normalised replica URLs as text, passwords masked."""
        return [url.render_as_string(hide_password=True) for url in self._replicas]

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
        if self._replicas:
            yield "replica_urls", self.safe_replica_urls
        yield from super().__repr_args__()

    def __getstate__(self) -> dict[Any, Any]:
        if self._url.password is not None or any(
            each.password is not None for each in self._replicas
        ):
            # a pickle is a dump that cannot mask: it would carry the password in clear
            raise ConfigurationError(
                "Settings holding a password cannot be pickled; build the Settings where "
                "they are needed (from that process's environment or .env) instead"
            )
        state: dict[Any, Any] = super().__getstate__()
        return state


class _Unknown(PydanticBaseSettingsSource):
    """A settings source whose names that are not fields are kept, for the model
    (``extra="forbid"``) to refuse by name, or dropped when they are not ours.

    pydantic-settings reads only the fields' own environment variables, so a
    misspelt ``CONTEXTSTORE_`` variable would pass unseen; and it would refuse
    every foreign key of a ``.env`` file, the service's own included.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        source: PydanticBaseSettingsSource,
        unknown: Any,
    ) -> None:
        super().__init__(settings_cls)
        self._source = source
        self._unknown = unknown

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._source.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        data = self._source()
        fields = self.settings_cls.model_fields
        known = {name: value for name, value in data.items() if name in fields}
        strays = {name: value for name, value in data.items() if name not in fields}
        for name, value in self._unknown(strays, fields).items():
            known[name.upper()] = value
        return known


def _ours(name: str, fields: Any) -> bool:
    """A ``CONTEXTSTORE_`` name that should be a setting and is not one."""
    lowered = name.lower()
    prefix = ENV_PREFIX.lower()
    return (
        lowered.startswith(prefix)
        and lowered[len(prefix) :] not in fields
        and not lowered.startswith(f"{prefix}test_")
        and lowered != f"{prefix}require_servers"
    )


def _prefixed_environment(_strays: dict[str, Any], fields: Any) -> dict[str, Any]:
    return {name: value for name, value in os.environ.items() if _ours(name, fields)}


def _prefixed_only(strays: dict[str, Any], fields: Any) -> dict[str, Any]:
    return {name: value for name, value in strays.items() if _ours(name, fields)}


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "settings"
    if error["type"] == "extra_forbidden":
        return f"{where}: not a setting (the settings are {', '.join(Settings.model_fields)})"
    return f"{where}: {error['msg']}"


def _password_from_query(url: URL) -> URL:
    """``url`` with a password given as a query parameter moved to its password."""
    given = [key for key in url.query if key.lower() in _PASSWORD_KEYS]
    if not given:
        return url
    passwords: set[str] = set()
    for key in given:
        value = url.query[key]
        # a key given twice reads as a tuple of its values
        passwords.update((value,) if isinstance(value, str) else value)
    if url.password is not None:
        passwords.add(url.password)
    if len(passwords) != 1:
        raise ConfigurationError(
            "database_url: more than one password given (in the user part and the query "
            "string, or twice in the query string); give it once"
        )
    return url.difference_update_query(given).set(password=passwords.pop())


def _split_urls(text: str) -> list[str]:
    """A list of URLs from the environment: a JSON list, or URLs separated by commas."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        failed = False
        try:
            parsed = json.loads(stripped)
        except ValueError:
            failed = True
        # the JSON error would quote the text, passwords included
        if failed or not isinstance(parsed, list):
            raise ConfigurationError(
                "replica_urls: not a JSON list of URLs (give a JSON list such as "
                '["postgresql://user@standby1/db"], or the URLs separated by commas)'
            )
        return [str(each) for each in parsed]
    return [each.strip() for each in stripped.split(",") if each.strip()]


def _replica_url(text: str, index: int, dialect: str) -> URL:
    """One replica URL, normalised like ``database_url``; refused if not of ``dialect``."""
    name = f"replica_urls[{index}]"
    try:
        url = _password_from_query(_parse_url(text))
        _check_url(url)
        recipe = dialect_for(url)
        url = recipe.normalise_url(url)
    except ConfigurationError as exc:
        problem = str(exc).replace("database_url", name)
        failed = True
    else:
        failed = False
    if failed:
        raise ConfigurationError(problem)
    if recipe.name != dialect:
        raise ConfigurationError(
            f"{name}: a {recipe.name} server cannot be a replica of a {dialect} primary "
            f"({url!r}); every replica must be of the primary's dialect"
        )
    if not recipe.is_server:
        raise ConfigurationError(
            f"{name}: {recipe.name} has no replicas; replica_urls name read-only servers"
        )
    return url


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
