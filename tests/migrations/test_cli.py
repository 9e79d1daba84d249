"""``contextstore db upgrade|downgrade|current|check`` through the real command tree."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings
from contextstore._admin.cli import app
from tests.migrations._inspect import Snapshot, assert_at_head, assert_empty, snapshot

HEAD = "0002"


def _db(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["db", *args, "--database-url", url])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def _inspect(url: str, check: object) -> None:
    async def run() -> None:
        db = ConnectionManager(Settings(database_url=url))
        try:
            await check(db)  # type: ignore[operator]
        finally:
            await db.dispose()

    asyncio.run(run())


def _snapshot(url: str) -> Snapshot:
    found: list[Snapshot] = []

    async def keep(db: ConnectionManager) -> None:
        found.append(await snapshot(db))

    _inspect(url, keep)
    return found[0]


def test_empty_head_base_head(empty_url: str) -> None:
    code, out = _db(empty_url, "current")
    assert code == 0
    assert "revision none" in out

    code, out = _db(empty_url, "check")
    assert code == 1
    assert "revision none" in out

    code, out = _db(empty_url, "upgrade")
    assert code == 0, out
    assert f"revision {HEAD}" in out
    _inspect(empty_url, assert_at_head)

    code, out = _db(empty_url, "current")
    assert (code, f"revision {HEAD} (newest)" in out) == (0, True), out

    code, out = _db(empty_url, "check")
    assert code == 0, out
    assert f"schema matches revision {HEAD}" in out

    code, out = _db(empty_url, "downgrade", "base")
    assert code == 0, out
    assert "revision none" in out
    _inspect(empty_url, assert_empty)

    code, out = _db(empty_url, "upgrade", "head")
    assert code == 0, out
    code, out = _db(empty_url, "check")
    assert code == 0, out


def test_output_shows_the_safe_url(empty_url: str) -> None:
    code, out = _db(empty_url, "current")
    assert code == 0
    assert Settings(database_url=empty_url).safe_url in out


def test_drift_is_listed_with_exit_code_1(empty_url: str) -> None:
    assert _db(empty_url, "upgrade")[0] == 0

    async def drop_an_index(db: ConnectionManager) -> None:
        from sqlalchemy import Index

        from contextstore.schema import audit_log

        index = next(i for i in audit_log.indexes if i.name == "ix_audit_log_agent_id_timestamp")
        async with db.transaction() as conn:
            await conn.run_sync(lambda sync_conn: Index.drop(index, sync_conn))

    _inspect(empty_url, drop_an_index)
    code, out = _db(empty_url, "check")
    assert code == 1
    assert "schema drift found" in out
    assert "add_index ix_audit_log_agent_id_timestamp on audit_log" in out


def test_downgrade_needs_a_revision(sqlite_empty_url: str) -> None:
    code, _ = _db(sqlite_empty_url, "downgrade")
    assert code == 2  # usage error


def test_unknown_revision_exits_1_with_the_message(sqlite_empty_url: str) -> None:
    code, out = _db(sqlite_empty_url, "upgrade", "no_such_revision")
    assert code == 1
    assert "migration failed" in out
    assert "no_such_revision" in out


@pytest.mark.parametrize("command", [["upgrade"], ["downgrade", "base"], ["current"], ["check"]])
def test_password_never_printed(command: list[str]) -> None:
    # nothing listens on port 9: the command fails at connect time
    url = make_url("postgresql://someone:s3cr3t-pw@127.0.0.1:9/nowhere")
    text_url = url.render_as_string(hide_password=False)
    code, out = _db(text_url, *command)
    assert code == 1
    assert "s3cr3t-pw" not in out
    assert "***" in out or "error" in out
