"""contextstore's own version table, ``contextstore_version``, beside a service's Alembic history.

* a database an older release stamped in ``alembic_version`` is moved: the
  revision lands in ``contextstore_version``, contextstore's row leaves
  ``alembic_version``, every row stays, and a second upgrade does nothing;
* a service's ``alembic_version`` and tables are never touched, never read as
  contextstore's revision and never reported as drift;
* a downgrade to ``base`` takes contextstore's tables and version table away
  and leaves the service's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, inspect, select, text
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings, Store, _migrations
from contextstore._admin.cli import app
from contextstore.schema import sessions
from tests.legacy._dataset import populate, snapshot
from tests.migrations._inspect import CONTEXTSTORE_TABLES, assert_at_head, assert_empty

HEAD = "0003_json_fidelity"

# -- a service's own schema and Alembic history --------------------------------

service = MetaData()
nc_tickets = Table(
    "nc_tickets",
    service,
    Column("id", Integer, primary_key=True),
    Column("title", String(100), nullable=False),
    Index("ix_nc_tickets_title", "title"),
)
service_version = Table(
    "alembic_version",
    service,
    Column("version_num", String(32), primary_key=True),
)
SERVICE_TABLES = frozenset({"nc_tickets", "alembic_version"})


async def add_service_history(db: ConnectionManager, revision: str = "svc_0001") -> None:
    """A service table with a row, and the service's Alembic history at ``revision``."""

    def create(sync: Connection) -> None:
        service.create_all(sync)
        sync.execute(nc_tickets.insert().values(id=1, title="printer on fire"))
        sync.execute(service_version.insert().values(version_num=revision))

    async with db.transaction() as conn:
        await conn.run_sync(create)


async def service_state(db: ConnectionManager) -> tuple[list[Any], list[Any]]:
    tickets = await db.fetch_all(select(nc_tickets))
    versions = await db.fetch_all(select(service_version.c.version_num))
    return [tuple(row.values()) for row in tickets], [row["version_num"] for row in versions]


# -- a database as the previous release left it --------------------------------


def _restamp_in_alembic_version(sync: Connection) -> None:
    """Move the revision back to where releases before contextstore_version kept it."""
    own = MigrationContext.configure(sync, opts={"version_table": "contextstore_version"})
    revision = own.get_current_revision()
    assert revision is not None
    Table("contextstore_version", MetaData()).drop(sync)
    scripts = ScriptDirectory.from_config(_migrations.make_config())
    MigrationContext.configure(sync).stamp(scripts, revision)  # Alembic's default table


async def as_previous_release(db: ConnectionManager, revision: str) -> dict[str, Any]:
    """A filled database at ``revision``, stamped in ``alembic_version``; what it holds."""
    await _migrations.upgrade(db)
    async with store_on(db) as store:
        await populate(store)
        state = await snapshot(store)
    if revision != HEAD:
        await _migrations.downgrade(db, revision)
    async with db.transaction() as conn:
        await conn.run_sync(_restamp_in_alembic_version)
    return state


def store_on(db: ConnectionManager, **settings: Any) -> Store:
    settings.setdefault("auto_migrate", False)
    return Store(Settings(database_url=db.settings.effective_database_url, **settings))


async def table_names(db: ConnectionManager) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def own_rows(db: ConnectionManager) -> list[str]:
    rows = await db.fetch_all(text("SELECT version_num FROM contextstore_version"))
    return [row["version_num"] for row in rows]


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", *args, "--database-url", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


# -- (a) a database of the previous release is moved ----------------------------


@pytest.mark.parametrize("revision", ["0001_baseline", HEAD])
async def test_an_older_stamp_is_moved_by_upgrade(db: ConnectionManager, revision: str) -> None:
    before = await as_previous_release(db, revision)
    assert "contextstore_version" not in await table_names(db)
    # read where that release left it, until an upgrade moves it
    assert await _migrations.current(db) == revision
    assert (await db.health_check()).schema_revision == revision
    drift = await _migrations.check(db)
    assert len(drift) == 1
    assert "alembic_version" in drift[0]
    assert "db upgrade" in drift[0]
    # reading never moves it: the previous release may still be running
    assert "contextstore_version" not in await table_names(db)

    await _migrations.upgrade(db)

    assert await own_rows(db) == [HEAD]
    assert "alembic_version" not in await table_names(db)  # it was contextstore's alone
    assert await _migrations.current(db) == HEAD
    assert await _migrations.check(db) == []
    async with store_on(db) as store:
        assert await snapshot(store) == before

    # a second upgrade is a no-op
    await _migrations.upgrade(db)
    assert await own_rows(db) == [HEAD]
    names = await table_names(db)
    assert CONTEXTSTORE_TABLES | {"contextstore_version"} <= names
    assert "alembic_version" not in names
    async with store_on(db) as store:
        assert await snapshot(store) == before


async def test_store_connect_moves_an_older_stamp(db: ConnectionManager) -> None:
    before = await as_previous_release(db, HEAD)
    async with store_on(db, auto_migrate=True) as store:
        report = await store.health()
        assert (report.schema_revision, report.schema_current) == (HEAD, True)
        assert await snapshot(store) == before
    assert await own_rows(db) == [HEAD]
    assert "alembic_version" not in await table_names(db)


def test_db_upgrade_moves_an_older_stamp(empty_url: str) -> None:
    async def prepare() -> None:
        db = ConnectionManager(Settings(database_url=empty_url))
        try:
            await as_previous_release(db, "0001_baseline")
        finally:
            await db.dispose()

    asyncio.run(prepare())
    code, out = cli(empty_url, "current")
    assert (code, "revision 0001_baseline" in out) == (0, True), out
    code, out = cli(empty_url, "check")
    assert (code, "alembic_version" in out) == (1, True), out
    code, out = cli(empty_url, "upgrade")
    assert (code, f"revision {HEAD}" in out) == (0, True), out
    code, out = cli(empty_url, "check")
    assert code == 0, out


async def test_a_move_interrupted_after_creating_the_table_is_finished(
    db: ConnectionManager,
) -> None:
    """MariaDB commits the CREATE by itself: an empty contextstore_version may be left."""
    before = await as_previous_release(db, HEAD)
    async with db.transaction() as conn:
        await conn.run_sync(
            lambda sync: MigrationContext.configure(
                sync, opts={"version_table": "contextstore_version"}
            ).stamp(ScriptDirectory.from_config(_migrations.make_config()), "base")
        )
    assert await own_rows(db) == []  # created, empty: the stamp is still the old one
    assert await _migrations.current(db) == HEAD

    await _migrations.upgrade(db)
    assert await own_rows(db) == [HEAD]
    assert "alembic_version" not in await table_names(db)
    async with store_on(db) as store:
        assert await snapshot(store) == before


async def test_an_empty_alembic_version_left_by_a_move_is_left_alone(
    db: ConnectionManager,
) -> None:
    """Stopped before the DROP: it is no longer known to be contextstore's."""
    await _migrations.upgrade(db)
    async with db.transaction() as conn:
        await conn.run_sync(service_version.create)
    await _migrations.upgrade(db)
    assert await own_rows(db) == [HEAD]
    assert "alembic_version" in await table_names(db)
    assert await _migrations.check(db) == []


def test_the_alembic_command_line_moves_only_when_writing(
    sqlite_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``alembic current`` reads; ``alembic upgrade head`` moves the stamp."""
    _on(sqlite_empty_url, lambda db: as_previous_release(db, HEAD))
    monkeypatch.setenv("CONTEXTSTORE_DATABASE_URL", sqlite_empty_url)
    ini = str(_migrations.script_location().parent / "alembic.ini")

    alembic_main(argv=["-c", ini, "current"])
    _on(sqlite_empty_url, _assert_not_moved)

    alembic_main(argv=["-c", ini, "upgrade", "head"])
    _on(sqlite_empty_url, _assert_moved)


async def _assert_not_moved(db: ConnectionManager) -> None:
    assert "contextstore_version" not in await table_names(db)
    assert await _migrations.current(db) == HEAD  # from alembic_version


async def _assert_moved(db: ConnectionManager) -> None:
    assert await own_rows(db) == [HEAD]
    assert "alembic_version" not in await table_names(db)
    assert await _migrations.check(db) == []


# -- (b)-(e) a service's own Alembic history in the same database -----------------


def test_db_upgrade_leaves_a_service_history_alone(empty_url: str) -> None:
    async def prepare(db: ConnectionManager) -> None:
        await add_service_history(db)

    async def verify(db: ConnectionManager) -> None:
        assert await service_state(db) == ([(1, "printer on fire")], ["svc_0001"])
        assert await own_rows(db) == [HEAD]
        await assert_at_head(db)
        # (d) health judges contextstore's revision only
        report = await db.health_check()
        assert (report.schema_revision, report.schema_current) == (HEAD, True)

    _on(empty_url, prepare)
    code, out = cli(empty_url, "current")
    assert (code, "revision none" in out) == (0, True), out  # the service's is not ours
    code, out = cli(empty_url, "upgrade")
    assert (code, f"revision {HEAD}" in out) == (0, True), out
    _on(empty_url, verify)
    # (c) the service's tables are no drift
    code, out = cli(empty_url, "check")
    assert code == 0, out
    assert "nc_tickets" not in out
    code, out = cli(empty_url, "upgrade")
    assert code == 0, out
    _on(empty_url, verify)


def _on(url: str, work: Any) -> None:
    async def run() -> None:
        db = ConnectionManager(Settings(database_url=url))
        try:
            await work(db)
        finally:
            await db.dispose()

    asyncio.run(run())


async def test_check_still_finds_drift_in_contextstore_tables(db: ConnectionManager) -> None:
    await add_service_history(db)
    await _migrations.upgrade(db)
    assert await _migrations.check(db) == []

    index = next(i for i in sessions.indexes if i.name == "ix_sessions_is_active")
    async with db.transaction() as conn:
        await conn.run_sync(lambda sync: Index.drop(index, sync))
        await conn.execute(text("ALTER TABLE sessions ADD COLUMN stray INTEGER"))
    drift = await _migrations.check(db)
    assert sorted(drift) == [
        "add_index ix_sessions_is_active on sessions",
        "remove_column sessions.stray",
    ]


def test_db_check_exits_1_on_drift_beside_service_tables(empty_url: str) -> None:
    async def prepare(db: ConnectionManager) -> None:
        await add_service_history(db)
        await _migrations.upgrade(db)
        index = next(i for i in sessions.indexes if i.name == "ix_sessions_is_active")
        async with db.transaction() as conn:
            await conn.run_sync(lambda sync: Index.drop(index, sync))

    _on(empty_url, prepare)
    code, out = cli(empty_url, "check")
    assert code == 1
    assert "add_index ix_sessions_is_active on sessions" in out
    assert "nc_tickets" not in out
    assert "alembic_version" not in out


async def test_a_service_revision_named_like_ours_is_not_taken(db: ConnectionManager) -> None:
    """Without contextstore's tables, an ``alembic_version`` row is the service's."""
    await add_service_history(db, "0001_baseline")
    assert await _migrations.current(db) is None
    assert (await db.health_check()).schema_revision is None

    await _migrations.upgrade(db)
    assert await own_rows(db) == [HEAD]
    assert await service_state(db) == ([(1, "printer on fire")], ["0001_baseline"])
    assert await _migrations.check(db) == []


async def test_downgrade_to_base_leaves_the_service_tables(db: ConnectionManager) -> None:
    await add_service_history(db)
    await _migrations.upgrade(db)
    async with store_on(db, auto_migrate=True) as store:
        report = await store.health()
        assert report.schema_current

    await _migrations.downgrade(db, "base")

    assert await _migrations.current(db) is None
    await assert_empty(db, others=SERVICE_TABLES)
    assert await service_state(db) == ([(1, "printer on fire")], ["svc_0001"])

    await _migrations.upgrade(db)  # and back
    assert await own_rows(db) == [HEAD]
    assert await service_state(db) == ([(1, "printer on fire")], ["svc_0001"])
