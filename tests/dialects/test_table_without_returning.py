"""A table repository on a server without ``INSERT ... RETURNING`` (MySQL 8).

MariaDB has RETURNING, so the path MySQL takes is exercised there by making
the recipe say it has none: ``add`` inserts the row and reads it back by the
id the server reports (``lastrowid``); ``add_many`` sends multi-row INSERTs,
knows their ids as consecutive ranges from each statement's first id, and
reads the rows back, all in the one transaction of the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contextstore import ConflictError, Settings, Store
from contextstore._dialects.mysql import MySQLDialect
from tests.contract._tables import (
    Feature,
    Idea,
    Link,
    TestCase,
    create_tables,
    features,
    idea,
    ideas,
    test_features,
    tests_table,
)

pytestmark = pytest.mark.mysql


@pytest.fixture
async def store(mysql_empty_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    monkeypatch.setattr(MySQLDialect, "insert_returns_row", lambda self, sa_dialect: False)
    async with Store(Settings(database_url=mysql_empty_url)) as connected:
        await create_tables(connected)
        yield connected


@pytest.mark.parametrize("mode", ["direct", "in-unit"])
async def test_generated_keys_without_returning(store: Store, mode: str) -> None:
    async def run(method: str, *args: object) -> object:
        if mode == "direct":
            return await getattr(store.table(ideas, Idea), method)(*args)
        async with store.transaction() as tx:
            return await getattr(tx.table(ideas, Idea), method)(*args)

    single = await run("add", idea(1))
    assert isinstance(single, Idea)
    assert single.id is not None
    batch = await run("add_many", [idea(n) for n in range(2, 12)])
    assert isinstance(batch, list)
    assert [item.source_id for item in batch] == [f"src-{n:04d}" for n in range(2, 12)]
    assert len({item.id for item in [single, *batch]}) == 11
    repo = store.table(ideas, Idea)
    for item in [single, *batch]:
        assert await repo.get(item.id) == item
    with pytest.raises(ConflictError):
        await run("add_many", [idea(20), idea(1)])
    assert await repo.count() == 11


async def test_explicit_and_composite_keys_without_returning(store: Store) -> None:
    cases = store.table(tests_table, TestCase)
    feats = store.table(features, Feature)
    links = store.table(test_features, Link)
    assert (await cases.add(TestCase(id="t-1", name="one"))).id == "t-1"
    auth = await feats.add(Feature(name="auth"))
    assert auth.id is not None
    linked = await links.add_many([Link(test_id="t-1", feature_id=auth.id, weight=2)])
    assert linked == [Link(test_id="t-1", feature_id=auth.id, weight=2)]


async def test_a_large_batch_spans_several_id_ranges(store: Store) -> None:
    repo = store.table(ideas, Idea)
    await repo.add(idea(0))  # ids do not start at 1
    # several statements on MariaDB (250 rows each), one range per statement
    added = await repo.add_many([idea(n) for n in range(1, 1201)])
    assert [item.source_id for item in added] == [f"src-{n:04d}" for n in range(1, 1201)]
    ids = [item.id for item in added]
    assert ids == sorted(ids)
    assert len(set(ids)) == 1200
    for item in (added[0], added[249], added[250], added[499], added[500], added[-1]):
        assert await repo.get(item.id) == item
