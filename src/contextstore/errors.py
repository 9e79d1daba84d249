"""The one error tree of contextstore.

Every failure that crosses the public API is one of these; driver and
SQLAlchemy exceptions are translated in ``contextstore._translate`` and chained
as ``__cause__``::

    ContextStoreError
    ├── ValidationError (also ValueError)   bad input; nothing was written
    ├── NotFoundError (also LookupError)    update/add against a missing session or parent
    ├── ConflictError                       unique key taken, overwrite=False
    ├── ConfigurationError                  settings that cannot work
    ├── QueryTimeoutError                   statement_timeout passed
    └── DatabaseUnavailableError            cannot reach the database after retries
        └── PoolExhaustedError              no connection within pool_timeout

Messages never contain a password: URLs are rendered through
``sqlalchemy.engine.URL``, which masks it.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "ContextStoreError",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PoolExhaustedError",
    "QueryTimeoutError",
    "ValidationError",
]


class ContextStoreError(Exception):
    """Base of every error contextstore raises."""


class ValidationError(ContextStoreError, ValueError):
    """Input broke a documented limit; it was rejected before any SQL ran."""


class NotFoundError(ContextStoreError, LookupError):
    """The session, parent message or row an operation needs does not exist."""


class ConflictError(ContextStoreError):
    """A unique key is already taken (for example ``overwrite=False`` on a live key)."""


class ConfigurationError(ContextStoreError):
    """The settings cannot work (unknown scheme, sync-only driver, bad pool size...)."""


class QueryTimeoutError(ContextStoreError):
    """A statement ran longer than ``statement_timeout``; its transaction was rolled back."""


class DatabaseUnavailableError(ContextStoreError):
    """The database could not be reached, or the connection was lost.

    Attributes:
        may_have_committed: ``True`` when the connection was lost while a write
            or its COMMIT was in flight, so the outcome is unknown; ``False``
            when nothing can have been written.
    """

    def __init__(self, message: str, *, may_have_committed: bool = False) -> None:
        super().__init__(message)
        self.may_have_committed = may_have_committed


class PoolExhaustedError(DatabaseUnavailableError):
    """No pooled connection became free within ``pool_timeout``."""
