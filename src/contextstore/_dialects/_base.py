"""What every dialect recipe provides.

Code outside ``_dialects`` asks a :class:`Dialect` for options, hooks,
capabilities and error classes; it never compares dialect names itself.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from ..settings import Settings


#: execution option ConnectionManager sets on every connection it checks out:
#: ``True`` when the work may write. Recipes use it to choose how to BEGIN.
WRITE_INTENT = "contextstore_write"


class ErrorKind(enum.Enum):
    """How a driver error should be treated, independent of dialect."""

    CONFLICT = "conflict"  # unique or primary key taken
    NOT_FOUND = "not_found"  # foreign key points nowhere
    INVALID = "invalid"  # CHECK, NOT NULL, value too long: bad input
    TIMEOUT = "timeout"  # statement_timeout passed
    RETRYABLE = "retryable"  # server rolled back the transaction (deadlock, serialization)
    BUSY = "busy"  # lock not granted; nothing was written
    DISCONNECT = "disconnect"  # connection lost; outcome of in-flight work unknown
    UNAVAILABLE = "unavailable"  # cannot connect at all (refused, auth, unknown db)


class Dialect(ABC):
    """The per-dialect recipe: pool options, connect hooks, capabilities, errors.

    Attributes:
        name: the public dialect name (``store.dialect``).
        driver: the async DBAPI driver every URL of this dialect is normalised to.
        schemes: SQLAlchemy backend names that belong to this recipe.
    """

    name: ClassVar[str]
    driver: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    #: the server can abort a statement itself after ``statement_timeout``.
    supports_statement_timeout: ClassVar[bool] = False
    #: ``INSERT ... ON CONFLICT/DUPLICATE KEY`` exists.
    native_upsert: ClassVar[bool] = True
    #: a network server (as opposed to an embedded file).
    is_server: ClassVar[bool] = True

    def normalise_url(self, url: URL) -> URL:
        """Point ``url`` at the async driver; reject any other driver."""
        from ..errors import ConfigurationError

        backend = url.get_backend_name()
        driver = url.get_driver_name() if "+" in url.drivername else None
        if driver is None:
            return url.set(drivername=f"{backend}+{self.driver}")
        if driver != self.driver:
            raise ConfigurationError(
                f"database_url: driver {driver!r} is not supported for {backend}; "
                f"contextstore is async and uses {backend}+{self.driver}"
            )
        return url

    @abstractmethod
    def engine_options(self, url: URL, settings: Settings) -> dict[str, Any]:
        """Return ``create_async_engine`` keyword arguments (pure, no I/O)."""

    def install_hooks(self, sync_engine: Engine, settings: Settings) -> None:  # noqa: B027
        """Attach connect/begin event listeners the recipe needs."""

    @abstractmethod
    def classify_error(self, orig: BaseException) -> ErrorKind | None:
        """Classify a DBAPI exception by SQLSTATE, errno or result code."""

    @abstractmethod
    def server_version_sql(self) -> str:
        """A statement returning the server version as one value."""


def or_default(value: Any, default: Any) -> Any:
    """``value`` unless it is None (an unset setting), else the dialect's default."""
    return default if value is None else value


def queue_pool_options(
    settings: Settings,
    *,
    size: int,
    overflow: int,
    timeout: float,
    recycle: float,
    pre_ping: bool,
) -> dict[str, Any]:
    """Queue-pool kwargs: each setting if given, else the dialect's default."""
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    return {
        "poolclass": AsyncAdaptedQueuePool,
        "pool_size": or_default(settings.pool_size, size),
        "max_overflow": or_default(settings.max_overflow, overflow),
        "pool_timeout": or_default(settings.pool_timeout, timeout),
        "pool_recycle": or_default(settings.pool_recycle, recycle),
        "pool_pre_ping": or_default(settings.pool_pre_ping, pre_ping),
    }
