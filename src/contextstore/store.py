"""Store: the facade services use; picks the core or legacy backend from settings."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from .connection import ConnectionManager
from .errors import ConfigurationError, ContextStoreError
from .settings import Settings

if TYPE_CHECKING:
    from .models import HealthReport

__all__ = ["Store"]


class Store:
    """Entry point: ``async with Store(Settings(...)) as store: ...``.

    Constructing a Store does no I/O; ``connect()`` opens the pool (and, with
    ``auto_migrate``, brings the schema to the newest revision).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._db: ConnectionManager | None = None
        self._connected = False
        self._closed = False

    def __repr__(self) -> str:
        state = "open" if self._connected else ("closed" if self._closed else "new")
        return f"<Store {self.backend} {self._settings.safe_url} ({state})>"

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def backend(self) -> str:
        """``"core"`` or ``"legacy"``."""
        return self._settings.backend

    @property
    def dialect(self) -> str:
        """``"sqlite"``, ``"postgresql"`` or ``"mysql"``."""
        from ._dialects import dialect_for

        return dialect_for(self._settings.effective_database_url).name

    @property
    def db(self) -> ConnectionManager:
        """The core backend's ConnectionManager, for services' own Core statements."""
        self._check_open()
        if self._db is None:
            raise ConfigurationError("store.db exists only with backend 'core'")
        return self._db

    def _check_open(self) -> None:
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        if not self._connected:
            raise ContextStoreError(
                "Store is not connected; use 'async with Store(...)' or "
                "'await store.connect()' first"
            )

    async def connect(self) -> Store:
        """Open the backend (and migrate when ``auto_migrate``); returns self."""
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        if self._connected:
            return self
        self._db = ConnectionManager(self._settings)
        self._connected = True
        return self

    async def close(self) -> None:
        """Release every connection; the Store cannot be used afterwards."""
        db, self._db = self._db, None
        self._connected = False
        self._closed = True
        if db is not None:
            await db.dispose()

    async def health(self, timeout: float = 5.0) -> HealthReport:
        """Probe the database; never raises (``ok=False`` with ``error`` instead)."""
        from .models import HealthReport

        if self._db is None:
            state = "closed" if self._closed else "not connected"
            return HealthReport(
                ok=False, backend=self.backend, dialect=self.dialect, error=f"Store is {state}"
            )
        return await self._db.health_check(timeout=timeout)

    async def __aenter__(self) -> Store:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
