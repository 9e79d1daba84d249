"""The legacy backend: the older raw-SQL implementation on aiosqlite.

Freeze policy: this module is **frozen** - bug fixes only, no new features.
It implements the same repository protocols as core
(``contextstore.repositories.protocols``) with raw SQL strings (all in
``_sql.py``; no SQLAlchemy), one aiosqlite connection per operation, and the
same validation (``contextstore._validate``) and cursors
(``contextstore._cursor``) as core. It must keep working **on the same SQLite
file as core**: a service can switch ``backend`` back and forth with nothing
lost, so it reads and writes every value in exactly core's representation
and never changes the schema beyond creating the baseline on an empty file.

Schema: on an empty file (and with ``auto_migrate``), ``connect()`` creates
the schema of the Alembic baseline revision with its own DDL and stamps
contextstore's version table, ``contextstore_version``, at that baseline, so
core (``contextstore db upgrade`` or ``Store.connect()``) takes it over and
upgrades it like any other database. Files that legacy created before it
stamped anything are adopted before core upgrades them (see
:func:`adopt_unversioned`, which the caller of
``contextstore._migrations.upgrade`` hands in). A file an older release
stamped in Alembic's default ``alembic_version`` is read as it is (its
revision for ``health()``, its tables as they are) and left for core to move.

Only ``contextstore.store`` (and the operator tools, for adoption) import this
package; it imports no other part of contextstore than the errors, the
records, the shared validation and cursors, and the facts it shares with core
(``contextstore._facts``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._facts import Probes, is_memory_database, sqlite_uri, wait_bound
from ..errors import ConfigurationError
from ..models import HealthReport
from . import _sql
from ._adopt import FIRST, OLD_VERSION, VERSION, adopt_unversioned, revision_from
from ._db import BoundDatabase, Database
from .repositories import (
    LegacyAuditRepository,
    LegacyMemoryRepository,
    LegacyMessageRepository,
    LegacyParticipantRepository,
    LegacySessionRepository,
)

if TYPE_CHECKING:
    from .._unit import UnitState
    from ..repositories.protocols import (
        AuditRepository,
        MemoryRepository,
        MessageRepository,
        ParticipantRepository,
        SessionRepository,
    )
    from ..settings import Settings

__all__ = ["LegacyBackend", "LegacyUnit", "adopt_unversioned", "open_legacy"]


def open_legacy(settings: Settings, *, head_revision: str | None = None) -> LegacyBackend:
    """The legacy backend for ``settings`` (no I/O until ``connect()``).

    Args:
        settings: a SQLite file URL.
        head_revision: the newest schema revision, against which ``health()``
            judges ``schema_current`` (None: never current).

    Raises:
        ConfigurationError: ``settings`` do not point at a SQLite file.
    """
    return LegacyBackend(settings, head_revision=head_revision)


class LegacyBackend:
    """The five legacy repositories on one SQLite file, plus lifecycle and health.

    Args:
        settings: a SQLite file URL (``Settings`` already rejects anything else
            for ``backend="legacy"``).
        head_revision: the newest schema revision (see :func:`open_legacy`).
    """

    def __init__(self, settings: Settings, *, head_revision: str | None = None) -> None:
        url = settings.effective_database_url
        path = url.database
        if url.get_backend_name() != "sqlite" or not path or is_memory_database(path, url.query):
            raise ConfigurationError(
                f"the legacy backend needs a SQLite file URL, got {settings.safe_url}"
            )
        self._settings = settings
        self._head_revision = head_revision
        # the file and options core's driver opens (see _facts.sqlite_uri)
        uri = sqlite_uri(path, url.query)
        self._db = Database(path if uri is None else uri, uri=uri is not None)
        self._connected = False
        self._probes = Probes()
        # annotated with the protocols so the type checker proves they are met
        self.sessions: SessionRepository = LegacySessionRepository(self._db)
        self.messages: MessageRepository = LegacyMessageRepository(self._db)
        self.memory: MemoryRepository = LegacyMemoryRepository(self._db)
        self.audit: AuditRepository = LegacyAuditRepository(self._db)
        self.participants: ParticipantRepository = LegacyParticipantRepository(self._db)

    def __repr__(self) -> str:
        state = "open" if self._connected else "new"
        return f"<LegacyBackend {self._settings.safe_url} ({state})>"

    async def connect(self) -> LegacyBackend:
        """Check the file can be opened; create the baseline schema if it is empty.

        The schema is created only with ``auto_migrate`` (the setting that
        allows ``connect()`` to change the schema).
        """
        if self._settings.auto_migrate:
            await self._create_schema()
        else:
            async with self._db.reading() as conn:
                await conn.value(_sql.SERVER_VERSION)
        self._connected = True
        return self

    async def _create_schema(self) -> None:
        """Create the baseline schema and stamp it, unless any schema is there."""
        async with self._db.writing() as conn:
            if await conn.value(_sql.TABLE_EXISTS, FIRST) is not None:
                return
            if await conn.value(_sql.TABLE_EXISTS, VERSION) is not None:
                return  # core owns this file's schema; never compete with it
            await conn.run_many(_sql.SCHEMA)
            await conn.run(_sql.STAMP_BASELINE, {"revision": _sql.BASELINE_REVISION})

    @asynccontextmanager
    async def unit_of_work(self, state: UnitState) -> AsyncIterator[LegacyUnit]:
        """The five repositories on one connection inside ``BEGIN IMMEDIATE``."""
        async with self._db.unit_of_work(state) as bound:
            yield LegacyUnit(bound, state)

    async def close(self) -> None:
        """Refuse later operations and wait (briefly) for abandoned health probes."""
        self._connected = False
        self._db.close()
        await self._probes.close()

    async def health(self, timeout: float = 5.0) -> HealthReport:
        """Probe the file with a real round trip; never raises, returns within ``timeout``."""
        start = time.perf_counter()
        error: str | None = None
        version: str | None = None
        revision: str | None = None
        bound = wait_bound(timeout)
        if isinstance(bound, str):
            error = bound
        else:
            error, version, revision = await self._answer(bound)
        latency = (time.perf_counter() - start) * 1000
        head = self._head_revision
        return HealthReport(
            ok=error is None,
            backend="legacy",
            dialect="sqlite",
            latency_ms=round(latency, 3),
            server_version=version,
            schema_revision=revision,
            schema_current=revision is not None and revision == head,
            pool=None,
            error=error,
        )

    async def _answer(self, bound: float) -> tuple[str | None, str | None, str | None]:
        """The probe's error, or the server version and schema revision, within ``bound`` s."""
        # the probe's lock waits end by the deadline too, so an abandoned
        # probe does not keep its connection's thread busy for long
        probe = await self._probes.answer(self._probe(busy_timeout_ms=int(bound * 1000)), bound)
        if probe is None:
            return f"no answer from the database within {bound:g} s", None, None
        failure = probe.exception()
        if failure is not None:
            return f"{type(failure).__name__}: {failure}", None, None
        version, revision = probe.result()
        return None, version, revision

    async def _probe(self, *, busy_timeout_ms: int) -> tuple[str, str | None]:
        async with self._db.reading(busy_timeout_ms=busy_timeout_ms) as conn:
            version = str(await conn.value(_sql.SERVER_VERSION))
            own = old = None  # None: no such table
            if await conn.value(_sql.TABLE_EXISTS, VERSION) is not None:
                own = await conn.all(_sql.SCHEMA_REVISION)
            if not own and await conn.value(_sql.TABLE_EXISTS, OLD_VERSION) is not None:
                old = await conn.all(_sql.OLD_SCHEMA_REVISIONS)
            has_tables = await conn.value(_sql.TABLE_EXISTS, FIRST) is not None
        return version, revision_from(own, old, has_tables=has_tables)


class LegacyUnit:
    """The legacy repositories of one unit of work, on its connection."""

    def __init__(self, bound: BoundDatabase, state: UnitState) -> None:
        self.state = state
        self.savepoint = bound.savepoint
        self.sessions: SessionRepository = LegacySessionRepository(bound)
        self.messages: MessageRepository = LegacyMessageRepository(bound)
        self.memory: MemoryRepository = LegacyMemoryRepository(bound)
        self.audit: AuditRepository = LegacyAuditRepository(bound)
        self.participants: ParticipantRepository = LegacyParticipantRepository(bound)
