"""Revision 0002: an existing database gets ``messages.search_text``, backfilled, and
one search on every dialect; the downgrade gives revision 0001's objects back.

The revision carries its own frozen copy of the normalisation (revisions import
nothing from contextstore); while it is the newest, that copy must be the
library's.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import column, func, insert, inspect, select, table

from contextstore import ConnectionManager, Settings, Store, Viewer, _migrations
from contextstore._facts import search_text
from tests.contract.test_search_everywhere import CORPUS, NAMED, expected_hits
from tests.migrations._inspect import snapshot

REVISION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0002_search_text.py"
BASELINE = "0001_baseline"
ADMIN = Viewer(agent_id="admin", is_admin=True)
#: more rows than one backfill batch holds
FILLER_ROWS = 1_100


def _revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_revision_0002", REVISION)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.sqlite
def test_the_revision_backfills_with_the_librarys_normalisation() -> None:
    frozen = _revision().search_text
    samples = [*CORPUS.values(), "x" * 40, "a " * 10_500, " ".join(map(str, range(12_000)))]
    assert [frozen(text) for text in samples] == [search_text(text) for text in samples]


@pytest.mark.sqlite
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_the_frozen_normalisation_is_the_librarys_for_any_text(text: str) -> None:
    assert _revision_search_text(text) == search_text(text)


_FROZEN = _revision().search_text


def _revision_search_text(text: str) -> str:
    return _FROZEN(text)


#: the messages table as revision 0001 has it (no search_text yet)
_messages_0001 = table(
    "messages",
    column("session_id"),
    column("sender"),
    column("sender_type"),
    column("content"),
    column("visibility"),
    column("message_type"),
    column("metadata"),
    column("timestamp"),
)
_sessions_0001 = table(
    "sessions",
    column("id"),
    column("purpose"),
    column("created_by"),
    column("metadata"),
    column("is_active"),
    column("created_at"),
    column("updated_at"),
)


async def _fill_at_baseline(db: ConnectionManager) -> None:
    """A database written before revision 0002: rows with no search text."""
    await _migrations.upgrade(db, BASELINE)
    now = datetime(2026, 1, 2, 3, 4, 5)  # naive UTC wall time: revision 0001's raw columns
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(_sessions_0001).values(
                id="old",
                purpose="p",
                created_by="c",
                metadata="{}",
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )
        row = {
            "session_id": "old",
            "sender": "alice",
            "sender_type": "generic",
            "visibility": "public",
            "message_type": "agent_response",
            "metadata": "{}",
            "timestamp": now,
        }
        contents = list(CORPUS.values()) + [f"filler row {i}" for i in range(FILLER_ROWS)]
        await conn.execute(insert(_messages_0001), [{**row, "content": c} for c in contents])


async def test_an_existing_database_is_upgraded_backfilled_and_searchable(
    db: ConnectionManager,
) -> None:
    await _fill_at_baseline(db)
    await _migrations.upgrade(db)
    assert await _migrations.current(db) == _migrations.head_revision()
    assert await _migrations.check(db) == []

    texts = table("messages", column("content"), column("search_text"))
    rows = await db.fetch_all(select(texts.c.content, texts.c.search_text))
    assert len(rows) == len(CORPUS) + FILLER_ROWS
    assert [row["search_text"] for row in rows] == [search_text(row["content"]) for row in rows]

    async with Store(Settings(database_url=db.settings.effective_database_url)) as store:
        by_content = {content: name for name, content in CORPUS.items()}
        for query, wanted in NAMED.items():
            hits = await store.messages.search(query, viewer=ADMIN, limit=1000)
            found = {by_content.get(hit.message.content, "filler") for hit in hits}
            assert found - {"filler"} == wanted, query  # digits also find filler rows
            assert expected_hits(query) == wanted
        filler = await store.messages.search("filler", viewer=ADMIN, limit=1000)
        assert len(filler) == 1000  # every backfilled batch is indexed; the limit cuts
        last = await store.messages.search(f"{FILLER_ROWS - 1}", viewer=ADMIN)
        assert [hit.message.content for hit in last] == [f"filler row {FILLER_ROWS - 1}"]
        # new writes after the upgrade are searched the same way
        await store.messages.add("old", sender="bob", content="Ünïcödé ÉCOLE")
        hits = await store.messages.search("unicode", viewer=ADMIN)
        assert [hit.message.content for hit in hits] == ["Ünïcödé ÉCOLE"]


async def _message_columns(db: ConnectionManager) -> list[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: [c["name"] for c in inspect(sync).get_columns("messages")]
        )


async def test_the_downgrade_restores_revision_0001(db: ConnectionManager) -> None:
    await _migrations.upgrade(db, BASELINE)
    at_baseline = (await snapshot(db), await _message_columns(db))
    assert "search_text" not in at_baseline[1]
    await _migrations.upgrade(db)
    assert "search_text" in await _message_columns(db)

    url = str(db.settings.database_url)
    async with Store(Settings(database_url=url)) as store:
        await store.sessions.create(purpose="p", created_by="c", session_id="s")
        await store.messages.add("s", sender="alice", content="ÉCOLE")
    await _migrations.downgrade(db, BASELINE)
    assert await _migrations.current(db) == BASELINE
    assert (await snapshot(db), await _message_columns(db)) == at_baseline
    # the row survives; upgrading again backfills and indexes it
    assert await db.fetch_value(select(func.count()).select_from(table("messages"))) == 1
    await _migrations.upgrade(db)
    async with Store(Settings(database_url=url)) as store:
        hits = await store.messages.search("ecole", viewer=ADMIN)
        assert [hit.message.content for hit in hits] == ["ÉCOLE"]
