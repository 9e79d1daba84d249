"""health_check: a real round trip, bounded by its timeout, never raising."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from contextstore import ConnectionManager, HealthReport, Settings

from ._scratch import (
    CLOSED_PORT,
    SENTINEL_PASSWORD,
    managed,
    other_tasks,
    server_url,
    silent_server,
)

#: scheduling slack on top of the health timeout.
MARGIN = 1.0


def assert_failed(report: HealthReport) -> None:
    assert report.ok is False
    assert report.error
    assert SENTINEL_PASSWORD not in report.model_dump_json()
    assert report.server_version is None


async def test_ok_on_every_dialect(empty_url: str, dialect_name: str) -> None:
    async with managed(empty_url) as db:
        report = await db.health_check(timeout=5.0)
        assert report.ok is True, report.error
        assert report.error is None
        assert report.backend == "core"
        assert report.dialect == dialect_name
        assert report.server_version
        assert report.latency_ms is not None
        assert report.latency_ms > 0
        assert report.pool is not None
        assert report.pool.size > 0
        assert report.pool.checked_out == 0  # the probe gave its connection back
        assert report.schema_revision is None  # an empty database: no schema yet
        assert report.schema_current is False
        assert other_tasks() == set()


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_closed_port_reports_not_ok_within_the_timeout(scheme: str) -> None:
    async with managed(server_url(scheme, CLOSED_PORT)) as db:
        started = time.perf_counter()
        report = await db.health_check(timeout=2.0)
        assert time.perf_counter() - started < 2.0 + MARGIN
        assert_failed(report)
        assert "DatabaseUnavailableError" in (report.error or "")
    assert other_tasks() == set()


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_silent_server_reports_not_ok_within_the_timeout(scheme: str) -> None:
    async with silent_server() as server:
        # connect_timeout longer than the health timeout: the probe must be abandoned
        async with managed(server_url(scheme, server.port), connect_timeout=30) as db:
            started = time.perf_counter()
            report = await db.health_check(timeout=1.0)
            assert time.perf_counter() - started < 1.0 + MARGIN
            assert_failed(report)
            assert "within 1 s" in (report.error or "")
        # dispose() has reaped the abandoned probe: nothing left running
        assert other_tasks() == set()


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_silent_server_with_a_short_connect_timeout(scheme: str) -> None:
    async with silent_server() as server:
        async with managed(server_url(scheme, server.port), connect_timeout=0.3) as db:
            report = await db.health_check(timeout=10.0)
            assert_failed(report)
            # the connect timeout is reported as unreachable, not as a slow statement
            assert "DatabaseUnavailableError" in (report.error or "")
        assert other_tasks() == set()


async def test_cancelling_a_health_check_cancels_its_probe() -> None:
    async with silent_server() as server:
        async with managed(server_url("postgresql", server.port), connect_timeout=30) as db:
            task = asyncio.create_task(db.health_check(timeout=30.0))
            await server.connected.wait()  # the probe is now stuck in its handshake
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert other_tasks() == set()


async def test_unopenable_sqlite_reports_not_ok(tmp_path: Path) -> None:
    async with managed(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}") as db:
        report = await db.health_check(timeout=5.0)
        assert_failed(report)
    _join_aiosqlite_workers()


async def test_sqlite_probe_does_not_wait_for_the_write_lock(sqlite_empty_url: str) -> None:
    path = make_url(sqlite_empty_url).database
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("CREATE TABLE t (x INTEGER)")
        writer.execute("BEGIN IMMEDIATE")  # a long write transaction elsewhere
        writer.execute("INSERT INTO t VALUES (1)")
        async with managed(sqlite_empty_url) as db:
            # a probe that took the write lock would wait busy_timeout (30 s)
            report = await db.health_check(timeout=3.0)
            assert report.ok is True, report.error
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_health_of_a_disposed_manager(sqlite_empty_url: str) -> None:
    db = ConnectionManager(Settings(database_url=sqlite_empty_url))
    await db.dispose()
    report = await db.health_check(timeout=1.0)
    assert report.ok is False
    assert report.pool is None
    assert "closed" in (report.error or "")


def _join_aiosqlite_workers() -> None:
    """aiosqlite does not wait for the worker thread of a failed connect; wait here."""
    import threading

    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=5)
            assert not thread.is_alive()


async def test_schema_revision_and_currency(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the newest revision of the scripts, pinned so this does not follow migrations/
    monkeypatch.setattr("contextstore.connection._head_revision", lambda: "cafe0002")
    async with managed(empty_url) as db:
        async with db.transaction() as conn:
            await conn.execute(text("CREATE TABLE contextstore_version (version_num VARCHAR(32))"))
            await conn.execute(text("INSERT INTO contextstore_version VALUES ('cafe0001')"))
            # a service's own Alembic history beside it is not contextstore's revision
            await conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            await conn.execute(text("INSERT INTO alembic_version VALUES ('cafe0002')"))
        behind = await db.health_check(timeout=5.0)
        assert behind.ok is True
        assert behind.schema_revision == "cafe0001"
        assert behind.schema_current is False
        await db.execute(text("UPDATE contextstore_version SET version_num = 'cafe0002'"))
        current = await db.health_check(timeout=5.0)
        assert current.schema_revision == "cafe0002"
        assert current.schema_current is True
        await db.execute(text("DELETE FROM contextstore_version"))
        unstamped = await db.health_check(timeout=5.0)
        assert (unstamped.schema_revision, unstamped.schema_current) == (None, False)


async def test_answers_while_the_pool_is_exhausted(empty_url: str) -> None:
    # every pooled connection is held: health asks over a connection of its own
    async with (
        managed(empty_url, pool_size=1, max_overflow=0, pool_timeout=30) as db,
        db.transaction() as conn,
    ):
        await conn.execute(text("SELECT 1"))
        # within its timeout, or it would say "no answer"
        report = await db.health_check(timeout=5.0)
        assert report.ok, report.error
        assert report.pool is not None
        assert report.pool.checked_out == 1
        assert report.pool.size == 1
    stats = db.pool_stats()
    assert stats is None  # disposed, the probe's own engine included
