"""``contextstore db upgrade`` adopts a legacy-created file, every row intact.

Older legacy releases created the baseline schema without stamping it; such
a file is simulated here by dropping the version table from a file legacy
created and filled. Older releases that did stamp used Alembic's
``alembic_version``: such a file is read by legacy as it is and moved by core.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings, _migrations
from contextstore._admin.cli import app

from ._dataset import populate, snapshot
from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]

BASELINE_REVISION = "0001_baseline"
TABLES = ("sessions", "messages", "agent_memory", "audit_log", "session_participants")


def _sql(path: Path, *statements: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        rows: list[Any] = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


#: the columns of messages at the baseline (later revisions add derived ones)
_BASELINE_MESSAGE_COLUMNS = (
    "id, session_id, sender, sender_type, content, visibility, message_type, metadata, "
    "parent_message_id, timestamp, client_token"
)


def _rows(path: Path) -> dict[str, list[Any]]:
    return {
        table: _sql(
            path,
            f"SELECT {_BASELINE_MESSAGE_COLUMNS if table == 'messages' else '*'} "
            f"FROM {table} ORDER BY rowid",
        )
        for table in TABLES
    }


def _has_version_table(path: Path, name: str = "contextstore_version") -> bool:
    query = f"SELECT 1 FROM sqlite_master WHERE name = '{name}'"
    return bool(_sql(path, query))


def _legacy_file_without_stamp(open_store: OpenStore, path: Path) -> dict[str, Any]:
    """Create and fill a file with legacy, take it back to the baseline schema
    those releases created, then remove its stamp; returns its snapshot."""

    async def fill() -> dict[str, Any]:
        async with open_store("legacy") as legacy:
            await populate(legacy)
            state = await snapshot(legacy)
        db = ConnectionManager(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        try:
            await _migrations.downgrade(db, BASELINE_REVISION)
        finally:
            await db.dispose()
        return state

    state = asyncio.run(fill())
    _sql(path, "DROP TABLE contextstore_version")
    return state


def _upgrade(url: str) -> Any:
    return CliRunner().invoke(app, ["db", "upgrade", "--database-url", url])


def test_db_upgrade_adopts_a_legacy_file_and_core_reads_every_row(
    open_store: OpenStore, db_path: Path, db_url: str
) -> None:
    before = _legacy_file_without_stamp(open_store, db_path)
    raw_before = _rows(db_path)

    result = _upgrade(db_url)
    assert result.exit_code == 0, result.output

    assert _sql(db_path, "SELECT version_num FROM contextstore_version") == [
        (_migrations.head_revision(),)
    ]
    assert _rows(db_path) == raw_before

    async def read() -> tuple[dict[str, Any], dict[str, Any]]:
        async with open_store("core", auto_migrate=False) as core:
            assert (await core.health()).schema_current
            from_core = await snapshot(core)
        async with open_store("legacy") as legacy:
            from_legacy = await snapshot(legacy)
        return from_core, from_legacy

    from_core, from_legacy = asyncio.run(read())
    assert from_core == before
    assert from_legacy == before

    # adopting is done once: a second upgrade is a no-op
    again = _upgrade(db_url)
    assert again.exit_code == 0, again.output
    assert _rows(db_path) == raw_before


def test_store_connect_adopts_too(open_store: OpenStore, db_path: Path) -> None:
    before = _legacy_file_without_stamp(open_store, db_path)

    async def read() -> dict[str, Any]:
        async with open_store("core") as core:
            return await snapshot(core)

    assert asyncio.run(read()) == before
    assert _has_version_table(db_path)


def test_a_schema_that_is_not_the_baseline_is_refused_untouched(
    open_store: OpenStore, db_path: Path, db_url: str
) -> None:
    _legacy_file_without_stamp(open_store, db_path)
    _sql(db_path, "DROP INDEX ix_messages_sender_timestamp")
    raw_before = _rows(db_path)

    result = _upgrade(db_url)

    assert result.exit_code == 1
    assert "cannot adopt" in result.output
    assert "ix_messages_sender_timestamp" in result.output
    assert not _has_version_table(db_path)
    assert _rows(db_path) == raw_before


def test_an_empty_file_is_not_adopted_but_migrated(db_path: Path, db_url: str) -> None:
    result = _upgrade(db_url)
    assert result.exit_code == 0, result.output
    assert _sql(db_path, "SELECT version_num FROM contextstore_version") == [
        (_migrations.head_revision(),)
    ]


#: Alembic's default version table, as Alembic creates it
_CREATE_ALEMBIC_VERSION = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)
#: a service's own Alembic history in the same file
_SERVICE_HISTORY = (_CREATE_ALEMBIC_VERSION, "INSERT INTO alembic_version VALUES ('svc_0001')")


def test_an_unstamped_file_beside_a_service_history_is_adopted(
    open_store: OpenStore, db_path: Path, db_url: str
) -> None:
    before = _legacy_file_without_stamp(open_store, db_path)
    _sql(db_path, *_SERVICE_HISTORY)

    result = _upgrade(db_url)
    assert result.exit_code == 0, result.output

    assert _sql(db_path, "SELECT version_num FROM contextstore_version") == [
        (_migrations.head_revision(),)
    ]
    assert _sql(db_path, "SELECT version_num FROM alembic_version") == [("svc_0001",)]

    async def read() -> dict[str, Any]:
        async with open_store("core", auto_migrate=False) as core:
            return await snapshot(core)

    assert asyncio.run(read()) == before


def _stamped_by_an_older_release(path: Path, revision: str) -> None:
    """Where releases before contextstore_version recorded the revision."""
    _sql(
        path,
        "DROP TABLE contextstore_version",
        _CREATE_ALEMBIC_VERSION,
        f"INSERT INTO alembic_version VALUES ('{revision}')",
    )


def test_legacy_reads_a_file_an_older_release_stamped_and_core_moves_it(
    open_store: OpenStore, db_path: Path
) -> None:
    async def fill() -> dict[str, Any]:
        async with open_store("legacy") as legacy:
            await populate(legacy)
            return await snapshot(legacy)

    before = asyncio.run(fill())
    head = _migrations.head_revision()
    _stamped_by_an_older_release(db_path, str(head))
    raw_before = _rows(db_path)

    async def with_legacy() -> tuple[Any, dict[str, Any]]:
        # no core upgrade on connect: legacy reads the file as that release left it
        async with open_store("legacy", auto_migrate=False) as legacy:
            return await legacy.health(), await snapshot(legacy)

    report, seen = asyncio.run(with_legacy())
    assert (report.ok, report.schema_revision, report.schema_current) == (True, head, True)
    assert seen == before
    assert not _has_version_table(db_path)  # legacy moved nothing

    async def with_core() -> dict[str, Any]:
        async with open_store("core") as core:  # auto_migrate: the stamp is moved
            assert (await core.health()).schema_current
            return await snapshot(core)

    assert asyncio.run(with_core()) == before
    assert _sql(db_path, "SELECT version_num FROM contextstore_version") == [(head,)]
    assert not _has_version_table(db_path, "alembic_version")
    assert _rows(db_path) == raw_before

    async def back_to_legacy() -> tuple[Any, dict[str, Any]]:
        async with open_store("legacy") as legacy:
            return await legacy.health(), await snapshot(legacy)

    report, seen = asyncio.run(back_to_legacy())
    assert (report.schema_revision, report.schema_current) == (head, True)
    assert seen == before


def test_a_baseline_file_an_older_legacy_stamped_is_moved_and_upgraded(
    open_store: OpenStore, db_path: Path, db_url: str
) -> None:
    # an older legacy release stamped the baseline in alembic_version
    before = _legacy_file_without_stamp(open_store, db_path)
    _sql(
        db_path,
        _CREATE_ALEMBIC_VERSION,
        f"INSERT INTO alembic_version VALUES ('{BASELINE_REVISION}')",
    )
    raw_before = _rows(db_path)

    result = _upgrade(db_url)
    assert result.exit_code == 0, result.output
    assert _sql(db_path, "SELECT version_num FROM contextstore_version") == [
        (_migrations.head_revision(),)
    ]
    assert not _has_version_table(db_path, "alembic_version")
    assert _rows(db_path) == raw_before

    async def read() -> dict[str, Any]:
        async with open_store("legacy") as legacy:
            return await snapshot(legacy)

    assert asyncio.run(read()) == before
