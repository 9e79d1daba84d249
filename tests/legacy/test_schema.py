"""The schema legacy creates on an empty file is the Alembic baseline, stamped.

So core can take over a legacy-created file like any other database, and a
file Alembic created is one legacy can use.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from contextstore import ConnectionManager, Settings, _migrations

from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]

BASELINE = "0001_baseline"


def _normalise(sql: str | None) -> str | None:
    if sql is None:
        return None
    return re.sub(r" ?([(),]) ?", r"\1", re.sub(r"\s+", " ", sql).strip())


def sqlite_master(path: Path) -> set[tuple[str, str, str, str | None]]:
    """Every schema object of the file, DDL whitespace-normalised."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    conn.close()
    return {(kind, name, table, _normalise(sql)) for kind, name, table, sql in rows}


def revision(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = [row[0] for row in conn.execute("SELECT version_num FROM contextstore_version")]
    conn.close()
    return rows


async def alembic_file(path: Path, target: str = BASELINE) -> Path:
    db = ConnectionManager(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    try:
        await _migrations.upgrade(db, target)
    finally:
        await db.dispose()
    return path


async def test_legacy_creates_exactly_the_alembic_baseline(
    db_url: str, db_path: Path, tmp_path: Path
) -> None:
    from contextstore.legacy import open_legacy

    legacy = open_legacy(Settings(database_url=db_url, backend="legacy"))
    await legacy.connect()
    await legacy.close()
    expected = await alembic_file(tmp_path / "alembic.db")

    created = sqlite_master(db_path)
    assert created == sqlite_master(expected)
    # not vacuous: every kind of object is there
    kinds = {kind for kind, *_ in created}
    assert kinds == {"table", "index", "trigger"}
    names = {name for _, name, *_ in created}
    assert {"sessions", "messages", "agent_memory", "audit_log", "session_participants"} <= names
    assert {"messages_fts", "messages_fts_ai", "messages_fts_ad", "messages_fts_au"} <= names
    assert revision(db_path) == revision(expected) == [BASELINE]


async def test_a_legacy_store_is_migrated_to_the_newest_revision(
    open_store: OpenStore, db_path: Path, tmp_path: Path
) -> None:
    """Store.connect() brings the file legacy created to head, like core's
    (legacy writes ``messages.search_text``, which the baseline has not)."""
    async with open_store("legacy") as legacy:
        assert (await legacy.health()).schema_current
    assert revision(db_path) == [_migrations.head_revision()]
    expected = await alembic_file(tmp_path / "alembic.db", "head")
    assert sqlite_master(db_path) == sqlite_master(expected)


def test_the_legacy_baseline_is_the_first_alembic_revision() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_migrations.make_config())
    assert [script.revision for script in scripts.walk_revisions()][-1] == BASELINE


async def test_core_takes_over_a_legacy_created_file_at_head(
    open_store: OpenStore, db_path: Path, tmp_path: Path
) -> None:
    async with open_store("legacy"):
        pass
    async with open_store("core") as core:
        assert (await core.health()).schema_current
    assert revision(db_path) == [_migrations.head_revision()]
    expected = await alembic_file(tmp_path / "alembic.db", "head")
    assert sqlite_master(db_path) == sqlite_master(expected)


async def test_legacy_leaves_a_core_created_schema_alone(
    open_store: OpenStore, db_path: Path
) -> None:
    async with open_store("core"):
        pass
    before = sqlite_master(db_path)
    async with open_store("legacy") as legacy:
        report = await legacy.health()
    assert sqlite_master(db_path) == before
    assert report.ok, report.error
    assert report.backend == "legacy"
    assert report.dialect == "sqlite"
    assert report.schema_revision == _migrations.head_revision()
    assert report.schema_current


async def test_without_auto_migrate_legacy_creates_nothing(
    open_store: OpenStore, db_path: Path
) -> None:
    async with open_store("legacy", auto_migrate=False) as legacy:
        report = await legacy.health()
    assert report.ok, report.error
    assert report.schema_revision is None
    assert not report.schema_current
    assert {name for _, name, *_ in sqlite_master(db_path)} == set()


async def test_legacy_connections_use_wal(open_store: OpenStore, db_path: Path) -> None:
    async with open_store("legacy") as legacy:
        await legacy.sessions.create(purpose="p", created_by="a")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
