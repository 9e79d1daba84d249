"""``contextstore db upgrade`` adopts a legacy-created file, every row intact.

Older legacy releases created the baseline schema without stamping
``alembic_version``; such a file is simulated here by dropping that table
from a file legacy created and filled.
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


def _has_version_table(path: Path) -> bool:
    query = "SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'"
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
    _sql(path, "DROP TABLE alembic_version")
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

    assert _sql(db_path, "SELECT version_num FROM alembic_version") == [
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
    assert _sql(db_path, "SELECT version_num FROM alembic_version") == [
        (_migrations.head_revision(),)
    ]
