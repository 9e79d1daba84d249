"""empty -> head -> base -> head, programmatically from inside a running event loop."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Index, text

from contextstore import ConnectionManager, ContextStoreError, Settings, Store, _migrations
from contextstore._dialects import dialect_for
from contextstore.schema import sessions
from tests.migrations._inspect import assert_at_head, assert_empty, snapshot

HEAD = "0003_json_fidelity"


def test_head_is_the_newest_revision() -> None:
    assert _migrations.head_revision() == HEAD


async def test_empty_head_base_head(db: ConnectionManager) -> None:
    assert await _migrations.current(db) is None
    assert (await snapshot(db)).tables == set()

    await _migrations.upgrade(db)
    assert await _migrations.current(db) == HEAD
    await assert_at_head(db)
    assert await _migrations.check(db) == []

    await _migrations.downgrade(db, "base")
    assert await _migrations.current(db) is None
    await assert_empty(db)

    await _migrations.upgrade(db.engine, "head")  # an AsyncEngine works as well
    assert await _migrations.current(db.engine) == HEAD
    await assert_at_head(db)
    assert await _migrations.check(db) == []


async def test_upgrade_at_head_is_a_no_op(db: ConnectionManager) -> None:
    await _migrations.upgrade(db)
    await _migrations.upgrade(db)
    assert await _migrations.current(db) == HEAD
    assert await _migrations.check(db) == []


async def test_concurrent_upgrades_migrate_once(empty_url: str) -> None:
    managers = [ConnectionManager(Settings(database_url=empty_url)) for _ in range(3)]
    try:
        await asyncio.gather(*(_migrations.upgrade(m) for m in managers))
        assert await _migrations.current(managers[0]) == HEAD
        assert await _migrations.check(managers[0]) == []
    finally:
        for manager in managers:
            await manager.dispose()


async def test_a_migration_waits_for_another_process_holding_the_lock(empty_url: str) -> None:
    """The database-side lock (advisory lock, GET_LOCK, or SQLite's write lock)."""
    holder = ConnectionManager(Settings(database_url=empty_url))
    migrator = ConnectionManager(Settings(database_url=empty_url))
    acquire, release = dialect_for(holder.settings.effective_database_url).migration_lock_sql()
    try:
        async with holder.transaction() as conn:  # on SQLite: BEGIN IMMEDIATE
            if acquire is not None:
                await conn.exec_driver_sql(acquire)
            task = asyncio.create_task(_migrations.upgrade(migrator))
            await asyncio.sleep(0.5)
            assert not task.done()
            if release is not None:
                await conn.exec_driver_sql(release)
        await asyncio.wait_for(task, timeout=20)
        assert await _migrations.current(migrator) == HEAD
    finally:
        await holder.dispose()
        await migrator.dispose()


async def test_stamp_records_without_migrating(db: ConnectionManager) -> None:
    await _migrations.stamp(db, HEAD)
    assert await _migrations.current(db) == HEAD
    assert (await snapshot(db)).tables == {"contextstore_version"}
    await _migrations.stamp(db, "base")
    assert await _migrations.current(db) is None
    # nothing of contextstore is left, not even an empty version table
    assert (await snapshot(db)).tables == set()


async def test_check_reports_an_outdated_database(db: ConnectionManager) -> None:
    drift = await _migrations.check(db)
    assert len(drift) == 1
    assert "revision none" in drift[0]
    assert HEAD in drift[0]


async def test_check_reports_drift(db: ConnectionManager) -> None:
    await _migrations.upgrade(db)
    index = next(i for i in sessions.indexes if i.name == "ix_sessions_is_active")

    def drop(sync_conn: object) -> None:
        Index.drop(index, sync_conn)  # type: ignore[arg-type]

    async with db.transaction() as conn:
        await conn.run_sync(drop)
    drift = await _migrations.check(db)
    assert drift == ["add_index ix_sessions_is_active on sessions"]


async def test_unknown_revision_is_a_contextstore_error(db: ConnectionManager) -> None:
    with pytest.raises(ContextStoreError, match="migration failed") as caught:
        await _migrations.upgrade(db, "no_such_revision")
    assert caught.value.__cause__ is not None
    assert await _migrations.current(db) is None


async def test_store_connect_migrates_to_head(empty_url: str) -> None:
    async with Store(Settings(database_url=empty_url)) as store:
        assert await _migrations.current(store.db) == HEAD
        report = await store.health()
        assert report.schema_revision == HEAD
        assert report.schema_current


async def test_store_connect_without_auto_migrate_leaves_the_database(empty_url: str) -> None:
    async with Store(Settings(database_url=empty_url, auto_migrate=False)) as store:
        assert await _migrations.current(store.db) is None
        value = await store.db.fetch_value(text("SELECT 1"))
        assert value == 1
