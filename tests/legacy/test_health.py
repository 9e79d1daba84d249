"""``store.health()`` on the legacy backend: a real round trip that never raises."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from contextstore import DatabaseUnavailableError, _migrations

from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]


async def test_health_reports_the_legacy_backend(open_store: OpenStore) -> None:
    async with open_store("legacy") as legacy:
        report = await legacy.health()
    assert report.ok, report.error
    assert (report.backend, report.dialect, report.pool) == ("legacy", "sqlite", None)
    assert report.server_version == sqlite3.sqlite_version
    # Store.connect() migrated the file legacy created to the newest revision
    assert report.schema_revision == _migrations.head_revision()
    assert report.schema_current
    assert report.latency_ms is not None
    assert report.latency_ms >= 0


async def test_health_of_a_locked_file_returns_by_its_deadline(
    open_store: OpenStore, db_path: Path
) -> None:
    async with open_store("legacy") as legacy:
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("PRAGMA locking_mode=EXCLUSIVE")
            holder.execute("BEGIN EXCLUSIVE")
            holder.execute("DELETE FROM sessions")
            started = time.monotonic()
            report = await legacy.health(timeout=0.5)
            elapsed = time.monotonic() - started
            # the writers' busy timeout is 30 s; health must not wait on it
            assert elapsed < 10
            assert not report.ok
            assert report.error
            assert report.backend == "legacy"
        finally:
            holder.close()


async def test_a_lock_held_past_the_busy_timeout_is_database_unavailable(
    open_store: OpenStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextstore.legacy import _db

    monkeypatch.setattr(_db, "BUSY_TIMEOUT_MS", 200)
    async with open_store("legacy") as legacy:
        await legacy.sessions.create(purpose="p", created_by="a", session_id="s")
        holder = sqlite3.connect(db_path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(DatabaseUnavailableError) as caught:
                await legacy.sessions.update("s", purpose="changed")
            assert not caught.value.may_have_committed
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            # readers are not blocked by a writer in WAL mode
            assert (await legacy.sessions.get("s")) is not None
        finally:
            holder.close()
        assert (await legacy.sessions.get("s")).purpose == "p"  # type: ignore[union-attr]


async def test_health_never_raises_after_close(open_store: OpenStore) -> None:
    store = open_store("legacy")
    async with store as legacy:
        pass
    report = await legacy.health()
    assert not report.ok
    assert report.backend == "legacy"
    assert "closed" in (report.error or "")


async def test_a_file_that_cannot_be_opened_is_database_unavailable(tmp_path: Path) -> None:
    from contextstore import Settings, Store

    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}"
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with Store(Settings(database_url=url, backend="legacy")):
            pass  # pragma: no cover
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)

    store = Store(Settings(database_url=url, backend="legacy", auto_migrate=False))
    with pytest.raises(DatabaseUnavailableError):
        await store.connect()
    await store.close()
