"""PostgreSQL through asyncpg.

Invariants: ``statement_timeout`` and ``application_name`` are server settings
sent in the startup packet (no extra round trip per connection); the client
``command_timeout`` is a little longer than the server's limit, so a server
that stops answering altogether still yields an error; errors are classified
by SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Dialect, ErrorKind, queue_pool_options

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ..settings import Settings

APPLICATION_NAME = "contextstore"
#: seconds the client waits beyond the server's own statement timeout.
CLIENT_TIMEOUT_MARGIN = 2.0

_BY_SQLSTATE: dict[str, ErrorKind] = {
    "23505": ErrorKind.CONFLICT,  # unique_violation
    "23503": ErrorKind.NOT_FOUND,  # foreign_key_violation
    "23502": ErrorKind.INVALID,  # not_null_violation
    "23514": ErrorKind.INVALID,  # check_violation
    "22001": ErrorKind.INVALID,  # string_data_right_truncation
    "22021": ErrorKind.INVALID,  # character_not_in_repertoire (NUL)
    "22P02": ErrorKind.INVALID,  # invalid_text_representation
    "22P05": ErrorKind.INVALID,  # untranslatable_character
    "22003": ErrorKind.INVALID,  # numeric_value_out_of_range
    "57014": ErrorKind.TIMEOUT,  # query_canceled (statement_timeout)
    "40001": ErrorKind.RETRYABLE,  # serialization_failure
    "40P01": ErrorKind.RETRYABLE,  # deadlock_detected
    "55P03": ErrorKind.BUSY,  # lock_not_available
    "57P01": ErrorKind.DISCONNECT,  # admin_shutdown (terminated backend)
    "57P02": ErrorKind.DISCONNECT,  # crash_shutdown
    "57P03": ErrorKind.UNAVAILABLE,  # cannot_connect_now (starting up)
    "3D000": ErrorKind.UNAVAILABLE,  # invalid_catalog_name
    "53300": ErrorKind.UNAVAILABLE,  # too_many_connections
}
_BY_CLASS: dict[str, ErrorKind] = {
    "08": ErrorKind.DISCONNECT,  # connection_exception
    "28": ErrorKind.UNAVAILABLE,  # invalid_authorization_specification
}

_DEFAULT_POOL_SIZE = 10
_DEFAULT_MAX_OVERFLOW = 10
_DEFAULT_POOL_TIMEOUT = 30.0
_DEFAULT_POOL_RECYCLE = 1800.0


class PostgreSQLDialect(Dialect):
    name = "postgresql"
    driver = "asyncpg"
    schemes = ("postgresql", "postgres")
    supports_statement_timeout = True
    native_upsert = True

    def normalise_url(self, url: URL) -> URL:
        if url.get_backend_name() == "postgres":
            url = url.set(drivername=url.drivername.replace("postgres", "postgresql", 1))
        return super().normalise_url(url)

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        server_settings = {"application_name": APPLICATION_NAME}
        connect_args: dict[str, Any] = {
            "timeout": settings.connect_timeout,
            "server_settings": server_settings,
        }
        if settings.statement_timeout is not None:
            server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
            connect_args["command_timeout"] = settings.statement_timeout + CLIENT_TIMEOUT_MARGIN
        return {
            **queue_pool_options(
                settings,
                size=_DEFAULT_POOL_SIZE,
                overflow=_DEFAULT_MAX_OVERFLOW,
                timeout=_DEFAULT_POOL_TIMEOUT,
                recycle=_DEFAULT_POOL_RECYCLE,
                pre_ping=True,
            ),
            "connect_args": connect_args,
        }

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        sqlstate = getattr(orig, "sqlstate", None)
        if isinstance(sqlstate, str):
            kind = _BY_SQLSTATE.get(sqlstate) or _BY_CLASS.get(sqlstate[:2])
            if kind is not None:
                return kind
            if sqlstate == "0A000" and "cached plan" in str(orig):
                return ErrorKind.RETRYABLE  # stale prepared statement after DDL
        text = str(orig)
        if "connection is closed" in text or "ConnectionDoesNotExistError" in text:
            return ErrorKind.DISCONNECT
        if "InvalidCachedStatementError" in text:
            return ErrorKind.RETRYABLE
        return None

    def server_version_sql(self) -> str:
        return "SHOW server_version"
