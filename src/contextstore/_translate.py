"""The one boundary where driver and SQLAlchemy errors become contextstore errors.

Classification asks the dialect recipe (SQLSTATE, MySQL errno, SQLite result
code); only what it cannot classify falls back to the exception type. The
original is always chained as ``__cause__``. ``CancelledError`` and other
``BaseException``s pass through untouched.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc

from ._dialects import ErrorKind
from .errors import (
    REFUSALS,
    ConfigurationError,
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    PoolExhaustedError,
    QueryTimeoutError,
    ValidationError,
)

if TYPE_CHECKING:
    from ._dialects import Dialect


@dataclass
class Progress:
    """How far one attempt got; decides ``may_have_committed`` and retry safety."""

    write: bool = False
    #: a connection was checked out and work began: failures from here on are
    #: the statements' (before it, a timeout can only be the connect timeout).
    sent: bool = False
    #: COMMIT was sent: a lost connection now leaves the outcome unknown.
    committing: bool = False
    #: the translated failure's kind (None when unclassified).
    kind: ErrorKind | None = None


def classify(dialect: Dialect, error: BaseException) -> ErrorKind | None:
    """Classify ``error`` (SQLAlchemy-wrapped or raw driver error).

    How far the attempt got does not change the kind; ``translate`` uses it to
    pick the error (a hung connect and a hung COMMIT are both ``HUNG``).
    """
    if isinstance(error, sa_exc.TimeoutError):
        return None  # pool timeout: handled by the caller as PoolExhaustedError
    orig: BaseException = error
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        orig = error.orig
    kind = dialect.classify_error(orig)
    if kind is None and orig.__cause__ is not None:
        kind = dialect.classify_error(orig.__cause__)
    if kind is not None:
        return kind
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return ErrorKind.DISCONNECT
    if isinstance(orig, ConnectionRefusedError | ConnectionAbortedError | ConnectionResetError):
        return (
            ErrorKind.UNAVAILABLE
            if isinstance(orig, ConnectionRefusedError)
            else (ErrorKind.DISCONNECT)
        )
    if isinstance(orig, TimeoutError | asyncio.TimeoutError):
        # asyncpg's connect timeout and the client's bound on a call: a bare TimeoutError,
        # the server did not answer in time (see ``translate`` for what it means)
        return ErrorKind.HUNG
    if isinstance(orig, OSError):
        return ErrorKind.UNAVAILABLE
    return None


def _describe(error: BaseException) -> str:
    """A short description of the driver error, without the SQL statement: only
    for the driver's refusal of connection options (the database never saw
    them, so this is no database text)."""
    orig = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    text = str(orig).strip() or type(orig).__name__
    first_line = text.splitlines()[0]
    return first_line[:300]


def translate(dialect: Dialect, error: Exception, progress: Progress) -> ContextStoreError:
    """Return the contextstore error for ``error`` (to be raised ``from error``).

    Messages are the same on every dialect and never carry the database's own
    text (tables, constraints, values); the original is the ``__cause__``.
    A refusal of a write says what was refused in general terms; the
    repository that knows which session or key rewords it (``errors._in_terms``).
    """
    if isinstance(error, ContextStoreError):
        return error
    if isinstance(error, sa_exc.TimeoutError):
        return PoolExhaustedError("no pooled connection became free within pool_timeout")
    kind = classify(dialect, error)
    progress.kind = kind
    if kind is ErrorKind.CONFLICT:
        return ConflictError(REFUSALS["conflict"])
    if kind is ErrorKind.NOT_FOUND:
        return NotFoundError(REFUSALS["not_found"])
    if kind is ErrorKind.INVALID:
        return ValidationError(REFUSALS["invalid"])
    if kind is ErrorKind.TOO_LARGE:
        # never a disconnect, never retried: the same request would be refused again
        return ValidationError(REFUSALS["too_large"])
    if kind is ErrorKind.AUTH:
        return ConfigurationError(REFUSALS["auth"])
    if kind is ErrorKind.TIMEOUT:
        return QueryTimeoutError("the statement ran past statement_timeout")
    if kind in (ErrorKind.RETRYABLE, ErrorKind.BUSY):
        return DatabaseUnavailableError(REFUSALS["busy"], may_have_committed=False)
    if kind is ErrorKind.READ_ONLY:
        return DatabaseUnavailableError(
            "the database server accepts no writes (a standby, or a primary lost in a "
            "failover); nothing was written",
            may_have_committed=False,
        )
    if kind is ErrorKind.DISCONNECT:
        return DatabaseUnavailableError(
            "connection to the database lost",
            may_have_committed=progress.write and progress.committing,
        )
    if kind is ErrorKind.HUNG:
        if not progress.sent:
            return DatabaseUnavailableError("cannot reach the database (no answer)")
        if progress.write and progress.committing:
            # the statement (an autocommit write) or its COMMIT reached a server
            # that may still carry it out
            return DatabaseUnavailableError(
                "no answer from the database; the write may have committed",
                may_have_committed=True,
            )
        # a statement that ran past statement_timeout (the server did not cut
        # it short): its connection is discarded, so its transaction rolls back
        return QueryTimeoutError("statement timed out (no answer in time)")
    if kind is ErrorKind.UNAVAILABLE:
        return DatabaseUnavailableError(REFUSALS["unavailable"])
    if not progress.sent and isinstance(error, TypeError | ValueError | OverflowError):
        # raised by the driver's connect() for options it cannot take (an
        # unknown URL query key, a value out of range); not worth a retry
        return ConfigurationError(
            f"database_url: the driver refused the connection options: {_describe(error)}"
        )
    if isinstance(error, sa_exc.SQLAlchemyError | OSError) or _is_driver_error(error):
        return ContextStoreError(REFUSALS["error"])
    raise error


def _is_driver_error(error: BaseException) -> bool:
    module = type(error).__module__
    return module.split(".")[0] in {"asyncpg", "aiomysql", "pymysql", "sqlite3", "aiosqlite"}


# lower case: it reads as the function it replaced, ``with translating(...)``
class translating:
    """Translate every driver/SQLAlchemy error raised inside into contextstore's tree.

    A class rather than a ``contextmanager`` generator: every unit of work
    enters one for its BEGIN and one for its COMMIT, and the generator's
    machinery costs several times the class's two attributes.
    """

    __slots__ = ("_dialect", "_progress")

    def __init__(self, dialect: Dialect, progress: Progress | None = None) -> None:
        self._dialect = dialect
        self._progress = progress or Progress()

    def __enter__(self) -> Progress:
        return self._progress

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # contextstore's own errors, and what is not an Exception (a
        # cancellation), pass unchanged
        if isinstance(error, Exception) and not isinstance(error, ContextStoreError):
            raise translate(self._dialect, error, self._progress) from error
