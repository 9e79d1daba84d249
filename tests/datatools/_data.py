"""Datasets for the data-tool tests, and a full record-by-record read of a database.

``populate`` writes, through the public API, one of every value shape that
must survive a copy or a dump: unicode of every width, JSON up to 1 MiB,
integers beyond 2**53, NULLs in every nullable column, microsecond times,
keys differing only by case or a trailing space, expired memory.
``build_large`` writes the 200,000-message database of the copy tests.
``read_all`` reads every row of every table (primary-key order) for equality.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, insert, select

from contextstore import ConnectionManager, NewMessage, Settings, Store, Viewer
from contextstore._admin.datatools import TABLES
from contextstore._admin.datatools.tables import DERIVED
from contextstore._facts import search_text
from contextstore.schema import agent_memory, messages

T = TypeVar("T")

ADMIN = Viewer(agent_id="root", agent_type="operator", is_admin=True)

UNICODE = "ünïcode ☃ 😀 日本語 עברית e\u0301 \u200d👩\u200d💻 end"
BIG_INT = 2**64 + 1
#: a memory value of about 900 KB (the limit is 1 MiB serialised).
BIG_VALUE = {
    "rows": [{"n": i, "text": f"{UNICODE} {i}", "big": BIG_INT + i} for i in range(9000)],
    "nested": {"deep": [[[[{"x": None}]]]]},
}
JSON_VALUES: dict[str, Any] = {
    "null": None,
    "false": False,
    "zero": 0,
    "float": 0.1,
    "tiny": 1.5e-7,
    "neg-big": -(2**63) - 7,
    "big-int": BIG_INT,
    "text": UNICODE,
    "empty-list": [],
    "empty-object": {},
    "big": BIG_VALUE,
}
WORDS = [
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"),
    *("juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"),
    *("sierra", "tango"),
]


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine function from a synchronous test."""
    return asyncio.run(work())  # type: ignore[arg-type]


async def populate(store: Store, *, tag: str = "t") -> None:
    """One of everything, with the awkward values."""
    s1 = await store.sessions.create(
        purpose=f"planning {UNICODE}"[:255],
        created_by="alice",
        metadata={"big": BIG_INT, "float": 2.5, "list": [1, None, True, "x"], "u": UNICODE},
        session_id=f"{tag}-s1",
    )
    s2 = await store.sessions.create(purpose="review", created_by="bob", session_id=f"{tag}-s2")
    await store.sessions.update(s2.id, is_active=False)
    await store.sessions.create(purpose="trailing ", created_by="carol ", session_id=f"{tag}-s2 ")

    root = await store.messages.add(
        s1.id,
        sender="alice",
        sender_type="writer",
        content=f"Quarterly roadmap {UNICODE}",
        metadata={"n": BIG_INT, "nested": {"a": [1, 2.5, None]}},
    )
    await store.messages.add_many(
        s1.id,
        [
            NewMessage(
                sender="bob",
                sender_type="reviewer",
                content="private roadmap feedback",
                visibility="private",
                parent_message_id=root.id,
            ),
            NewMessage(
                sender="carol",
                content="x" * 100_000,
                visibility="agent_only",
                message_type="note",
            ),
            NewMessage(sender="alice", content="admins: roadmap budget", visibility="admin_only"),
        ],
    )
    await store.messages.add(s2.id, sender="bob", content="closing the review feedback")

    for key, value in JSON_VALUES.items():
        await store.memory.set("alice", key, value, metadata={"kind": key})
    await store.memory.set("alice", "Key", "upper")
    await store.memory.set("alice", "key", "lower")
    await store.memory.set("alice", "key ", "trailing space")
    await store.memory.set("alice", "ttl", "soon", ttl=timedelta(hours=1))
    await store.memory.set("alice", "scoped", [1, 2], session_id=s1.id)
    await store.memory.set("bob", "scoped", {"x": BIG_INT}, session_id=s1.id, ttl=3600)
    await store.memory.set("alice", "scoped", "other session", session_id=s2.id)

    await store.audit.record(
        "session.created",
        agent_id="alice",
        session_id=s1.id,
        resource="session",
        action="create",
        result="ok",
        metadata={"ip": "10.0.0.1", "u": UNICODE},
    )
    await store.audit.record("login", agent_id="bob")
    await store.audit.record("login", agent_id="alice", session_id=s2.id)

    await store.participants.join(s1.id, "alice", agent_type="writer")
    await store.participants.join(s1.id, "bob", agent_type="reviewer", role="owner")
    await store.participants.join(s2.id, "bob", agent_type="reviewer")


async def add_expired_memory(url: str, count: int, *, agent_id: str = "alice") -> None:
    """Memory entries already past their expiry (``ttl`` cannot be negative)."""
    now = datetime.now(UTC)
    db = ConnectionManager(Settings(database_url=url))
    try:
        await db.execute_many(
            insert(agent_memory),
            [
                {
                    "agent_id": agent_id,
                    "session_id": None,
                    "key": f"expired-{i}",
                    "value": {"i": i},
                    "metadata": {},
                    "created_at": now - timedelta(hours=2),
                    "updated_at": now - timedelta(hours=2),
                    "expires_at": now - timedelta(minutes=1 + i, microseconds=17),
                }
                for i in range(count)
            ],
        )
    finally:
        await db.dispose()


async def build_large(url: str, *, total: int, sessions: int = 200) -> None:
    """``total`` messages over ``sessions`` sessions, plus memory, audit and participants.

    Messages go in through ``ConnectionManager.execute_many`` in batches of
    5,000 (``add_many`` validates and reads back every row: minutes for 200k);
    every 997th message is then deleted so that ids have gaps.
    """
    base = datetime(2025, 1, 1, tzinfo=UTC)
    async with Store(Settings(database_url=url)) as store:
        for s in range(sessions):
            session = await store.sessions.create(
                purpose=f"session {s}", created_by=f"agent-{s % 7}", session_id=f"s{s:04d}"
            )
            for a in range(3):
                await store.participants.join(session.id, f"agent-{(s + a) % 7}", role="member")
        db = store.db
        for start in range(0, total, 5000):
            await db.execute_many(
                insert(messages),
                [
                    {
                        "id": i + 1,
                        "session_id": f"s{i % sessions:04d}",
                        "sender": f"agent-{i % 7}",
                        "sender_type": ("writer", "reviewer")[i % 2],
                        "content": f"{WORDS[i % 20]} {WORDS[(i * 7) % 20]} message {i} {UNICODE}",
                        "visibility": ("public", "private", "agent_only", "admin_only")[i % 4],
                        "message_type": "agent_response",
                        "metadata": {"i": i, "f": i / 7, "big": BIG_INT + i},
                        "parent_message_id": i - 3 if i % 10 == 5 else None,
                        "timestamp": base + timedelta(microseconds=i * 1_000_003),
                        "client_token": None,
                    }
                    for i in range(start, min(start + 5000, total))
                ],
            )
        from sqlalchemy import delete

        await db.execute(delete(messages).where(messages.c.id % 997 == 0))
        for i in range(600):
            await store.memory.set(
                f"agent-{i % 7}",
                f"key-{i}",
                {"i": i, "u": UNICODE} if i % 3 else [i, BIG_INT],
                session_id=None if i % 2 else f"s{i % sessions:04d}",
                ttl=None if i % 4 else 3600,
            )
        for i in range(1000):
            await store.audit.record(
                ("login", "message.sent", "memory.set")[i % 3],
                agent_id=f"agent-{i % 7}",
                session_id=f"s{i % sessions:04d}" if i % 2 else None,
                resource=None if i % 5 else "session",
                metadata={"i": i},
            )
    await add_expired_memory(url, 50)


async def read_all(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, primary-key order, generated columns left out."""
    db = ConnectionManager(Settings(database_url=url))
    try:
        found: dict[str, list[dict[str, Any]]] = {}
        for table in TABLES:
            # derived columns are the data tools' to compute, not to copy
            columns = [
                c for c in table.c if c.computed is None and (table.name, c.name) not in DERIVED
            ]
            stmt = select(*columns).order_by(*table.primary_key.columns)
            found[table.name] = [dict(row) for row in await db.fetch_all(stmt)]
        return found
    finally:
        await db.dispose()


async def counts(url: str) -> dict[str, int]:
    db = ConnectionManager(Settings(database_url=url))
    try:
        return {
            table.name: int(await db.fetch_value(select(func.count()).select_from(table)))
            for table in TABLES
        }
    finally:
        await db.dispose()


async def table_names(url: str) -> set[str]:
    from sqlalchemy import inspect

    db = ConnectionManager(Settings(database_url=url))
    try:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await db.dispose()


def assert_same_rows(
    expected: dict[str, list[dict[str, Any]]], actual: dict[str, list[dict[str, Any]]]
) -> None:
    """Record-by-record equality, table by table, with the first difference named."""
    assert list(actual) == list(expected)
    for table, rows in expected.items():
        got = actual[table]
        assert len(got) == len(rows), f"{table}: {len(got)} rows, expected {len(rows)}"
        for want, have in zip(rows, got, strict=True):
            assert have == want, f"{table}: row differs:\n{have}\n!=\n{want}"


async def check_fresh_ids_and_search(url: str, word: str = "roadmap") -> None:
    """After a copy or restore: new rows get new ids, and search finds old rows."""
    async with Store(Settings(database_url=url, auto_migrate=False)) as store:
        db = store.db
        highest = {
            t.name: int(await db.fetch_value(select(func.max(t.c.id))) or 0)
            for t in TABLES
            if "id" in t.c and t.autoincrement_column is not None
        }
        session_id = str(await db.fetch_value(select(func.min(TABLES[0].c.id))))
        message = await store.messages.add(session_id, sender="newcomer", content=f"new {word}")
        await store.memory.set("newcomer", "fresh", 1)
        event = await store.audit.record("fresh", agent_id="newcomer")
        assert message.id > highest["messages"]
        assert (
            int(await db.fetch_value(select(func.max(agent_memory.c.id)))) > highest["agent_memory"]
        )
        assert event.id > highest["audit_log"]
        # every row got the search text of its content, whatever the source held
        texts = await db.fetch_all(select(messages.c.content, messages.c.search_text))
        assert texts
        assert all(row["search_text"] == search_text(row["content"]) for row in texts)
        hits = await store.messages.search(word, viewer=ADMIN, limit=50)
        old = [hit for hit in hits if hit.message.id <= highest["messages"]]
        assert old, f"search for {word!r} found no copied message"
        assert all(word in hit.message.content.lower() for hit in hits)
