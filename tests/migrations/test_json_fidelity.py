"""Revision 0003: a database made at the revision before keeps its rows; JSON keeps its types.

Before 0003, PostgreSQL's JSON columns were ``jsonb``, which turns ``1e16``
into an int and ``-0.0`` into ``0.0``. The upgrade converts the columns of an
existing database in place (rows as they were stored), after which every
dialect stores JSON as written; the downgrade goes back without losing a row.
"""

from __future__ import annotations

from typing import Any

from contextstore import ConnectionManager, NewMessage, Settings, Store, Viewer, _migrations
from tests._typed_json import typed

#: the revision before 0003: the current code writes its tables (search_text included)
PREVIOUS = "0002_search_text"
REVISION = "0003_json_fidelity"
ADMIN = Viewer(agent_id="root", is_admin=True)
#: numbers a decimal store rewrites, beside ones every store keeps
DOCUMENT: dict[str, Any] = {
    "exp": 1e16,
    "huge": 1e308,
    "neg_zero": -0.0,
    "half": 1.5,
    "i64": [2**63 - 1, -(2**63)],
    "text": "ünï \U0001f680",
    "nested": {"deep": [None, True, {"k": "v"}]},
}


async def write_all(store: Store, tag: str) -> None:
    """One row with ``DOCUMENT`` in every JSON column."""
    await store.sessions.create(
        purpose="p", created_by="c", metadata=DOCUMENT, session_id=f"s-{tag}"
    )
    await store.messages.add_many(
        f"s-{tag}", [NewMessage(sender=tag, content="c", metadata=DOCUMENT)]
    )
    await store.memory.set(tag, "k", DOCUMENT, metadata=DOCUMENT)
    await store.audit.record("e", agent_id=tag, metadata=DOCUMENT)


async def read_all(store: Store, tag: str) -> Any:
    """What every JSON column of ``tag``'s rows holds, type-tagged."""
    session = await store.sessions.get(f"s-{tag}")
    (message,) = (await store.messages.list(f"s-{tag}", viewer=ADMIN)).items
    entry = await store.memory.get(tag, "k")
    (event,) = (await store.audit.list(agent_id=tag)).items
    assert session is not None
    assert entry is not None
    return typed([session.metadata, message.metadata, entry.value, entry.metadata, event.metadata])


def store_on(db: ConnectionManager) -> Store:
    return Store(Settings(database_url=db.settings.effective_database_url, auto_migrate=False))


async def test_an_existing_database_is_converted_and_keeps_its_rows(
    db: ConnectionManager,
) -> None:
    await _migrations.upgrade(db, PREVIOUS)
    async with store_on(db) as store:
        await write_all(store, "old")
        before = await read_all(store, "old")

    await _migrations.upgrade(db)
    assert await _migrations.current(db) == REVISION
    assert await _migrations.check(db) == []
    async with store_on(db) as store:
        # rows written before keep what they held; new rows keep every type
        assert await read_all(store, "old") == before
        await write_all(store, "new")
        assert await read_all(store, "new") == typed([DOCUMENT] * 5)

    await _migrations.downgrade(db, PREVIOUS)
    assert await _migrations.current(db) == PREVIOUS
    async with store_on(db) as store:
        assert await read_all(store, "old") == before
        # a decimal store may rewrite the numbers again (1e308 to the integer
        # 10**308), but the rows and their documents stay
        session = await store.sessions.get("s-new")
        assert session is not None
        assert session.metadata.keys() == DOCUMENT.keys()
        assert session.metadata["nested"] == DOCUMENT["nested"]

    await _migrations.upgrade(db)
    assert await _migrations.current(db) == REVISION
    assert await _migrations.check(db) == []
