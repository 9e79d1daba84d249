"""MySQL and MariaDB through aiomysql.

Invariants: every connection speaks ``utf8mb4`` and has the session time zone
UTC (DATETIME columns hold UTC wall time); a statement time limit is set per
session (MariaDB ``max_statement_time`` in seconds, MySQL
``max_execution_time`` in milliseconds); ``pool_recycle`` stays below the
server's default ``wait_timeout`` (8 h) so the pool never hands out a
connection the server already closed. Errors are classified by errno
(https://mariadb.com/kb/en/mariadb-error-code-reference/).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from ._base import Dialect, ErrorKind, queue_pool_options

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from ..settings import Settings

_BY_ERRNO: dict[int, ErrorKind] = {
    1062: ErrorKind.CONFLICT,  # ER_DUP_ENTRY
    1586: ErrorKind.CONFLICT,  # ER_DUP_ENTRY_WITH_KEY_NAME
    1022: ErrorKind.CONFLICT,  # ER_DUP_KEY
    1451: ErrorKind.CONFLICT,  # ER_ROW_IS_REFERENCED_2
    1452: ErrorKind.NOT_FOUND,  # ER_NO_REFERENCED_ROW_2
    1216: ErrorKind.NOT_FOUND,  # ER_NO_REFERENCED_ROW
    3819: ErrorKind.INVALID,  # ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
    4025: ErrorKind.INVALID,  # ER_CONSTRAINT_FAILED (MariaDB)
    1048: ErrorKind.INVALID,  # ER_BAD_NULL_ERROR
    1406: ErrorKind.INVALID,  # ER_DATA_TOO_LONG
    1366: ErrorKind.INVALID,  # ER_TRUNCATED_WRONG_VALUE_FOR_FIELD
    1292: ErrorKind.INVALID,  # ER_TRUNCATED_WRONG_VALUE
    1264: ErrorKind.INVALID,  # ER_WARN_DATA_OUT_OF_RANGE
    1969: ErrorKind.TIMEOUT,  # ER_STATEMENT_TIMEOUT (MariaDB)
    3024: ErrorKind.TIMEOUT,  # ER_QUERY_TIMEOUT (MySQL)
    1213: ErrorKind.RETRYABLE,  # ER_LOCK_DEADLOCK (transaction rolled back)
    1205: ErrorKind.BUSY,  # ER_LOCK_WAIT_TIMEOUT
    2006: ErrorKind.DISCONNECT,  # CR_SERVER_GONE_ERROR
    2013: ErrorKind.DISCONNECT,  # CR_SERVER_LOST
    2055: ErrorKind.DISCONNECT,  # CR_SERVER_LOST_EXTENDED
    1927: ErrorKind.DISCONNECT,  # ER_CONNECTION_KILLED
    1053: ErrorKind.DISCONNECT,  # ER_SERVER_SHUTDOWN
    2002: ErrorKind.UNAVAILABLE,  # CR_CONNECTION_ERROR
    2003: ErrorKind.UNAVAILABLE,  # CR_CONN_HOST_ERROR
    1045: ErrorKind.UNAVAILABLE,  # ER_ACCESS_DENIED_ERROR
    1049: ErrorKind.UNAVAILABLE,  # ER_BAD_DB_ERROR
    1040: ErrorKind.UNAVAILABLE,  # ER_CON_COUNT_ERROR
}

_DEFAULT_POOL_SIZE = 10
_DEFAULT_MAX_OVERFLOW = 10
_DEFAULT_POOL_TIMEOUT = 30.0
#: well below the server's default wait_timeout of 28,800 s.
_DEFAULT_POOL_RECYCLE = 3600.0


class MySQLDialect(Dialect):
    name = "mysql"
    driver = "aiomysql"
    schemes = ("mysql", "mariadb")
    supports_statement_timeout = True
    native_upsert = True

    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        return {
            **queue_pool_options(
                settings,
                size=_DEFAULT_POOL_SIZE,
                overflow=_DEFAULT_MAX_OVERFLOW,
                timeout=_DEFAULT_POOL_TIMEOUT,
                recycle=_DEFAULT_POOL_RECYCLE,
                pre_ping=True,
            ),
            "connect_args": {
                "charset": "utf8mb4",
                "connect_timeout": max(1, round(settings.connect_timeout)),
                "init_command": "SET time_zone = '+00:00'",
            },
        }

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:
        timeout = settings.statement_timeout
        if timeout is None:
            return

        @event.listens_for(sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT VERSION()")
                row = cursor.fetchone()
                if "mariadb" in str(row[0]).lower():
                    cursor.execute(f"SET SESSION max_statement_time = {float(timeout):.3f}")
                else:
                    cursor.execute(f"SET SESSION max_execution_time = {int(timeout * 1000)}")
            finally:
                cursor.close()

    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        args = getattr(orig, "args", ())
        if args and isinstance(args[0], int):
            kind = _BY_ERRNO.get(args[0])
            if kind is not None:
                return kind
        text = str(orig)
        if "Lost connection" in text or "Not connected" in text or "server has gone away" in text:
            return ErrorKind.DISCONNECT
        return None

    def server_version_sql(self) -> str:
        return "SELECT VERSION()"
