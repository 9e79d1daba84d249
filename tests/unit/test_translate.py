"""_translate: driver and SQLAlchemy errors mapped to the contextstore tree, no server.

SQLite errors are real (raised by the sqlite3 module); PostgreSQL errors are
stand-ins carrying a ``sqlstate`` the way SQLAlchemy's asyncpg adapter does;
MySQL errors are real pymysql exception objects with their errno.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pymysql.err
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from contextstore import (
    ConfigurationError,
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    PoolExhaustedError,
    QueryTimeoutError,
    ValidationError,
)
from contextstore._dialects import Dialect, ErrorKind, dialect_for
from contextstore._translate import Progress, translate, translating
from contextstore.errors import REFUSALS

SENTINEL = "S3ntinel-pw"
SQLITE = dialect_for(make_url("sqlite+aiosqlite://"))
POSTGRESQL = dialect_for(make_url("postgresql+asyncpg://"))
MYSQL = dialect_for(make_url("mysql+aiomysql://"))


def wrapped(orig: BaseException, cls: type[sa_exc.DBAPIError] = sa_exc.DBAPIError) -> Exception:
    """``orig`` as SQLAlchemy raises it, with a secret among the parameters."""
    return cls("INSERT INTO secrets VALUES (:p)", {"p": SENTINEL}, orig)


def run(dialect: Dialect, error: Exception, progress: Progress | None = None) -> BaseException:
    """Raise ``error`` inside ``translating`` and return what comes out."""
    try:
        with translating(dialect, progress or Progress()):
            raise error
    except BaseException as raised:
        return raised
    raise AssertionError("translating swallowed the error")


# -- SQLite: real errors -----------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.executescript(
        """
        PRAGMA foreign_keys = ON;
        CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE CHECK (name <> ''));
        CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL REFERENCES p (id));
        INSERT INTO p VALUES (1, 'one');
        """
    )
    yield conn
    conn.close()


def sqlite_error(conn: sqlite3.Connection, sql: str) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute(sql)
    return caught.value


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("INSERT INTO p VALUES (2, 'one')", ConflictError),  # UNIQUE
        ("INSERT INTO p VALUES (1, 'two')", ConflictError),  # PRIMARY KEY
        ("INSERT INTO c VALUES (1, 99)", NotFoundError),  # FOREIGN KEY
        ("INSERT INTO p VALUES (3, NULL)", ValidationError),  # NOT NULL
        ("INSERT INTO p VALUES (4, '')", ValidationError),  # CHECK
    ],
)
def test_sqlite_constraint_errors(
    sqlite_db: sqlite3.Connection, sql: str, expected: type[ContextStoreError]
) -> None:
    orig = sqlite_error(sqlite_db, sql)
    error = wrapped(orig, sa_exc.IntegrityError)
    translated = run(SQLITE, error)
    assert type(translated) is expected
    assert translated.__cause__ is error
    assert SENTINEL not in str(translated)
    assert "INSERT INTO" not in str(translated)  # the statement stays out of the message


def test_sqlite_busy_is_unavailable_and_nothing_written(
    sqlite_db: sqlite3.Connection, tmp_path: Path
) -> None:
    sqlite_db.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(tmp_path / "t.db", timeout=0, isolation_level=None)
    try:
        orig = sqlite_error(other, "BEGIN IMMEDIATE")
    finally:
        other.close()
        sqlite_db.execute("ROLLBACK")
    progress = Progress(write=True, sent=True, committing=True)
    translated = run(SQLITE, wrapped(orig, sa_exc.OperationalError), progress)
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is False
    assert progress.kind is ErrorKind.BUSY


def test_sqlite_cannot_open_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.Error) as caught:
        sqlite3.connect(tmp_path / "missing" / "t.db")
    translated = run(SQLITE, wrapped(caught.value, sa_exc.OperationalError))
    assert type(translated) is DatabaseUnavailableError


def test_sqlite_unclassified_error_is_the_base_class(sqlite_db: sqlite3.Connection) -> None:
    orig = sqlite_error(sqlite_db, "SELECT * FROM nowhere")
    translated = run(SQLITE, wrapped(orig, sa_exc.OperationalError))
    assert type(translated) is ContextStoreError
    # the database's own text stays in the original, not in the message
    assert str(translated) == REFUSALS["error"]
    assert "nowhere" not in str(translated)


# -- PostgreSQL: SQLSTATE ------------------------------------------------------------


class PgError(Exception):
    """Stands in for SQLAlchemy's adapted asyncpg error, which carries ``sqlstate``."""

    def __init__(self, sqlstate: str, message: str = "server said no") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "expected", "kind"),
    [
        ("23505", ConflictError, ErrorKind.CONFLICT),
        ("23503", NotFoundError, ErrorKind.NOT_FOUND),
        ("23502", ValidationError, ErrorKind.INVALID),
        ("23514", ValidationError, ErrorKind.INVALID),
        ("22001", ValidationError, ErrorKind.INVALID),
        ("57014", QueryTimeoutError, ErrorKind.TIMEOUT),
        ("40001", DatabaseUnavailableError, ErrorKind.RETRYABLE),
        ("40P01", DatabaseUnavailableError, ErrorKind.RETRYABLE),
        ("55P03", DatabaseUnavailableError, ErrorKind.BUSY),
        ("57P01", DatabaseUnavailableError, ErrorKind.DISCONNECT),
        ("08006", DatabaseUnavailableError, ErrorKind.DISCONNECT),  # by class 08
        ("28P01", ConfigurationError, ErrorKind.AUTH),  # by class 28: a refused login
        ("3D000", DatabaseUnavailableError, ErrorKind.UNAVAILABLE),
        ("42P01", ContextStoreError, None),  # undefined table: no better class
    ],
)
def test_postgresql_sqlstates(
    sqlstate: str, expected: type[ContextStoreError], kind: ErrorKind | None
) -> None:
    progress = Progress(write=True, sent=True)
    translated = run(POSTGRESQL, wrapped(PgError(sqlstate)), progress)
    assert type(translated) is expected
    assert progress.kind is kind
    assert SENTINEL not in str(translated)


def test_postgresql_sqlstate_found_on_the_chained_driver_error() -> None:
    adapted = RuntimeError("adapted")
    adapted.__cause__ = PgError("23505")
    assert type(run(POSTGRESQL, wrapped(adapted))) is ConflictError


# -- MySQL / MariaDB: errno -------------------------------------------------------


@pytest.mark.parametrize(
    ("orig", "expected"),
    [
        (pymysql.err.IntegrityError(1062, "Duplicate entry 'x' for key 'name'"), ConflictError),
        (pymysql.err.IntegrityError(1452, "Cannot add or update a child row"), NotFoundError),
        (pymysql.err.IntegrityError(1048, "Column 'name' cannot be null"), ValidationError),
        (pymysql.err.DataError(1406, "Data too long for column 'name'"), ValidationError),
        (pymysql.err.IntegrityError(4025, "CONSTRAINT `c` failed"), ValidationError),
        (pymysql.err.OperationalError(1969, "max_statement_time exceeded"), QueryTimeoutError),
        (pymysql.err.OperationalError(3024, "maximum statement execution time"), QueryTimeoutError),
        (pymysql.err.OperationalError(1213, "Deadlock found"), DatabaseUnavailableError),
        (
            pymysql.err.OperationalError(
                1047, "WSREP has not yet prepared node for application use"
            ),
            DatabaseUnavailableError,
        ),
        (pymysql.err.OperationalError(2013, "Lost connection to server"), DatabaseUnavailableError),
        (
            pymysql.err.OperationalError(2003, "Can't connect to MySQL server"),
            DatabaseUnavailableError,
        ),
        (pymysql.err.OperationalError(1045, "Access denied for user"), ConfigurationError),
        (pymysql.err.InterfaceError(0, "Not connected"), DatabaseUnavailableError),
        (pymysql.err.ProgrammingError(1146, "Table 'x' doesn't exist"), ContextStoreError),
    ],
)
def test_mysql_errnos(orig: Exception, expected: type[ContextStoreError]) -> None:
    translated = run(MYSQL, wrapped(orig))
    assert type(translated) is expected
    assert isinstance(translated.__cause__, sa_exc.DBAPIError)
    assert translated.__cause__.orig is orig


# -- dialect-independent fallbacks ----------------------------------------------


def test_pool_timeout_is_pool_exhausted() -> None:
    error = sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")
    translated = run(SQLITE, error)
    assert type(translated) is PoolExhaustedError
    assert isinstance(translated, DatabaseUnavailableError)
    assert translated.may_have_committed is False
    assert translated.__cause__ is error


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL, MYSQL], ids=lambda d: d.name)
def test_bare_timeout_before_any_statement_is_unavailable(dialect: Dialect) -> None:
    # asyncpg's connect timeout: nothing was sent, the database is unreachable
    translated = run(dialect, TimeoutError(), Progress(write=True))
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is False


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL, MYSQL], ids=lambda d: d.name)
def test_bare_timeout_during_a_statement_is_a_query_timeout(dialect: Dialect) -> None:
    # asyncpg's command_timeout: a statement ran too long
    translated = run(dialect, TimeoutError(), Progress(write=True, sent=True))
    assert type(translated) is QueryTimeoutError


def test_refused_connection_is_unavailable() -> None:
    translated = run(POSTGRESQL, ConnectionRefusedError(111, "Connect call failed"))
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is False


@pytest.mark.parametrize(
    ("progress", "may_have_committed"),
    [
        (Progress(write=True, sent=True, committing=True), True),  # COMMIT in flight
        (Progress(write=True, sent=True), False),  # before COMMIT: rolled back
        (Progress(write=False, sent=True, committing=True), False),  # a read
        (Progress(write=True), False),  # never got a connection
    ],
)
def test_lost_connection_may_have_committed_only_during_commit(
    progress: Progress, may_have_committed: bool
) -> None:
    translated = run(POSTGRESQL, ConnectionResetError(104, "Connection reset by peer"), progress)
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is may_have_committed
    assert progress.kind is ErrorKind.DISCONNECT


def test_invalidated_connection_is_a_disconnect() -> None:
    error = sa_exc.DBAPIError("SELECT 1", {}, Exception("weird"), connection_invalidated=True)
    progress = Progress(write=True, sent=True, committing=True)
    translated = run(MYSQL, error, progress)
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is True


def test_unclassified_sqlalchemy_error_is_the_base_class() -> None:
    error = sa_exc.InvalidRequestError("this Connection is closed")
    translated = run(SQLITE, error)
    assert type(translated) is ContextStoreError
    assert translated.__cause__ is error


def test_contextstore_errors_pass_unchanged() -> None:
    error = ConflictError("already there")
    assert run(SQLITE, error) is error


def test_errors_that_are_not_the_databases_pass_unchanged() -> None:
    error = KeyError("a bug in the caller's code")
    assert run(SQLITE, error) is error
    assert translate.__module__ == "contextstore._translate"


def test_cancellation_passes_unchanged() -> None:
    cancelled = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError) as caught, translating(SQLITE):
        raise cancelled
    assert caught.value is cancelled


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL, MYSQL], ids=lambda d: d.name)
def test_bare_timeout_while_a_write_commits_leaves_the_outcome_unknown(dialect: Dialect) -> None:
    # an autocommit INSERT (or a COMMIT) sent to a server that stopped answering:
    # the server may still carry it out, so "nothing was written" would be a lie
    translated = run(dialect, TimeoutError(), Progress(write=True, sent=True, committing=True))
    assert type(translated) is DatabaseUnavailableError
    assert translated.may_have_committed is True


@pytest.mark.parametrize(
    ("errno", "cause"),
    [(2003, TimeoutError()), (2013, TimeoutError())],
    ids=["handshake-timeout", "read-timeout"],
)
def test_mysql_client_side_bounds_are_hung_not_disconnects(
    errno: int, cause: BaseException
) -> None:
    error = pymysql.err.OperationalError(errno, "no answer within 2 s")
    error.__cause__ = cause
    assert MYSQL.classify_error(error) is ErrorKind.HUNG
    refused = pymysql.err.OperationalError(2003, "Can't connect")
    refused.__cause__ = ConnectionRefusedError(111, "refused")
    assert MYSQL.classify_error(refused) is ErrorKind.UNAVAILABLE  # retried: a restart


@pytest.mark.parametrize(
    "error",
    [
        TypeError("connect() got an unexpected keyword argument 'sslmode'"),
        OverflowError("connect(): port must be 0-65535."),
    ],
    ids=["unknown-option", "port-range"],
)
def test_driver_refusing_connect_options_is_a_configuration_error(error: Exception) -> None:
    translated = run(POSTGRESQL, error, Progress(write=True))
    assert type(translated) is ConfigurationError
    assert translated.__cause__ is error


def test_type_error_after_work_began_is_not_hidden() -> None:
    # once statements run, a TypeError is a bug, not a setting: it must surface as it is
    error = TypeError("unsupported operand")
    assert run(POSTGRESQL, error, Progress(write=True, sent=True)) is error
