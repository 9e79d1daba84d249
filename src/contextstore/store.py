"""Store: the facade services use; picks the core or legacy backend from settings.

The legacy module is imported here and nowhere else, only when
``settings.backend == "legacy"``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from .connection import ConnectionManager
from .errors import ConfigurationError, ContextStoreError
from .models import HealthReport
from .settings import Settings

if TYPE_CHECKING:
    from .repositories.protocols import (
        AuditRepository,
        MemoryRepository,
        MessageRepository,
        ParticipantRepository,
        SessionRepository,
    )

__all__ = ["Store"]


class _Backend(Protocol):
    """What both backends give the Store: five repositories, health and close."""

    sessions: SessionRepository
    messages: MessageRepository
    memory: MemoryRepository
    audit: AuditRepository
    participants: ParticipantRepository

    async def health(self, timeout: float) -> HealthReport: ...

    async def close(self) -> None: ...


class _CoreBackend:
    """The SQLAlchemy Core repositories on one ConnectionManager."""

    def __init__(self, db: ConnectionManager) -> None:
        from .repositories.audit import CoreAuditRepository
        from .repositories.memory import CoreMemoryRepository
        from .repositories.messages import CoreMessageRepository
        from .repositories.participants import CoreParticipantRepository
        from .repositories.sessions import CoreSessionRepository

        self.db = db
        self.sessions: SessionRepository = CoreSessionRepository(db)
        self.messages: MessageRepository = CoreMessageRepository(db)
        self.memory: MemoryRepository = CoreMemoryRepository(db)
        self.audit: AuditRepository = CoreAuditRepository(db)
        self.participants: ParticipantRepository = CoreParticipantRepository(db)

    async def health(self, timeout: float) -> HealthReport:
        return await self.db.health_check(timeout=timeout)

    async def close(self) -> None:
        await self.db.dispose()


class Store:
    """Entry point: ``async with Store(Settings(...)) as store: ...``.

    Constructing a Store does no I/O; ``connect()`` opens the backend (and,
    with ``auto_migrate``, brings the schema to the newest revision).

    Args:
        settings: where and how to connect; ``None`` reads the environment.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings if settings is not None else Settings()
        self._backend: _Backend | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "open" if self._backend else ("closed" if self._closed else "new")
        return f"<Store {self.backend} {self._settings.safe_url} ({state})>"

    @property
    def settings(self) -> Settings:
        """The settings this Store was built with."""
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

    def _open(self) -> _Backend:
        if self._backend is not None:
            return self._backend
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        raise ContextStoreError(
            "Store is not connected; use 'async with Store(...)' or 'await store.connect()' first"
        )

    @property
    def db(self) -> ConnectionManager:
        """The core backend's ConnectionManager, for services' own Core statements.

        It runs on the same pool as the repositories. Raises
        ``ConfigurationError`` with backend ``"legacy"``, and
        ``ContextStoreError`` when the Store is not connected or closed.
        """
        backend = self._open()
        if not isinstance(backend, _CoreBackend):
            raise ConfigurationError("store.db exists only with backend 'core'")
        return backend.db

    @property
    def sessions(self) -> SessionRepository:
        """The sessions repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().sessions

    @property
    def messages(self) -> MessageRepository:
        """The messages repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().messages

    @property
    def memory(self) -> MemoryRepository:
        """The agent memory repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().memory

    @property
    def audit(self) -> AuditRepository:
        """The audit log repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().audit

    @property
    def participants(self) -> ParticipantRepository:
        """The participants repository; ``ContextStoreError`` when not connected or closed."""
        return self._open().participants

    async def connect(self) -> Store:
        """Open the backend (and migrate when ``auto_migrate``); returns self.

        Calling it again on a connected Store does nothing.

        Returns:
            This Store, connected.

        Raises:
            DatabaseUnavailableError: the database cannot be reached (nothing
                is left open then).
            ConfigurationError: the driver refuses the settings.
            ContextStoreError: the Store was closed, or the schema cannot be
                migrated (nothing is left open then).
        """
        if self._backend is not None:
            return self
        if self._closed:
            raise ContextStoreError("Store is closed; create a new Store")
        if self._settings.backend == "legacy":
            from .legacy import open_legacy

            legacy: Any = open_legacy(self._settings, head_revision=_head_revision())
            await legacy.connect()
            self._backend = legacy
            return self
        db = ConnectionManager(self._settings)
        try:
            await self._prepare_schema(db)
        except BaseException:
            await db.dispose()
            raise
        self._backend = _CoreBackend(db)
        return self

    async def _prepare_schema(self, db: ConnectionManager) -> None:
        """Bring the schema to head when ``auto_migrate`` is on."""
        if not self._settings.auto_migrate:
            return
        from . import _migrations
        from .legacy import adopt_unversioned

        await _migrations.upgrade(db.engine, adopt=adopt_unversioned)

    async def close(self) -> None:
        """Release every connection; the Store cannot be used afterwards."""
        backend, self._backend = self._backend, None
        self._closed = True
        if backend is not None:
            await backend.close()

    async def health(self, timeout: float = 5.0) -> HealthReport:
        """Probe the database with a real round trip; never raises.

        Args:
            timeout: seconds to wait for the answer; the report comes back
                within it even when the server hangs.

        Returns:
            The report: ``ok=False`` with ``error`` set when the database
            does not answer in time, fails, or the Store is not connected.
        """
        if self._backend is None:
            state = "closed" if self._closed else "not connected"
            return HealthReport(
                ok=False, backend=self.backend, dialect=self.dialect, error=f"Store is {state}"
            )
        return await self._backend.health(timeout)

    async def __aenter__(self) -> Store:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _head_revision() -> str | None:
    """The newest schema revision, or None when the migration scripts cannot be read."""
    from . import _migrations

    try:
        return _migrations.head_revision()
    except Exception:
        return None
