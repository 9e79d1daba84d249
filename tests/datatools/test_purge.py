"""`contextstore memory purge-expired` on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings, Store
from contextstore._admin.cli import app
from contextstore.schema import agent_memory
from tests.datatools._data import add_expired_memory, run


async def live_keys(url: str, backend: str) -> list[str]:
    async with Store(Settings(database_url=url, backend=backend)) as store:
        return [entry.key for entry in await store.memory.list("alice")]


async def stored_rows(url: str) -> int:
    db = ConnectionManager(Settings(database_url=url))
    try:
        return int(await db.fetch_value(select(func.count()).select_from(agent_memory)))
    finally:
        await db.dispose()


def test_purge_expired_prints_the_count(backend_url: tuple[str, str]) -> None:
    backend, url = backend_url

    async def fill() -> None:
        async with Store(Settings(database_url=url, backend=backend)) as store:
            await store.memory.set("alice", "forever", 1)
            await store.memory.set("alice", "an-hour", 2, ttl=timedelta(hours=1))

    run(fill)
    run(lambda: add_expired_memory(url, 3))
    run(lambda: add_expired_memory(url, 2, agent_id="bob"))
    assert run(lambda: stored_rows(url)) == 7

    result = CliRunner().invoke(
        app, ["memory", "purge-expired", "--database-url", url, "--backend", backend]
    )
    assert result.exit_code == 0, result.output
    assert "purged 5 expired memory entries" in result.stdout
    assert Settings(database_url=url).safe_url in result.stdout
    assert run(lambda: stored_rows(url)) == 2
    assert sorted(run(lambda: live_keys(url, backend))) == ["an-hour", "forever"]

    again = CliRunner().invoke(
        app, ["memory", "purge-expired", "--database-url", url, "--backend", backend]
    )
    assert again.exit_code == 0, again.output
    assert "purged 0 expired memory entries" in again.stdout


@pytest.mark.sqlite
def test_purge_expired_on_a_database_without_schema(sqlite_empty_url: str) -> None:
    result = CliRunner().invoke(
        app, ["memory", "purge-expired", "--database-url", sqlite_empty_url]
    )
    assert result.exit_code == 1
    assert "error" in result.stderr
    assert "Traceback" not in result.output
