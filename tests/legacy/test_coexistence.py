"""Core and legacy on one SQLite file: whatever one writes, the other reads the same.

A service can switch ``backend`` back and forth (or run both at once) with
nothing lost: records compare equal field by field, search finds rows
whichever backend wrote them, and cursors of one continue on the other.
"""

from __future__ import annotations

import pytest

from contextstore import NewMessage, Viewer

from ._dataset import ADMIN, populate, snapshot
from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]

DIRECTIONS = [
    pytest.param("legacy", "core", id="legacy-writes-core-reads"),
    pytest.param("core", "legacy", id="core-writes-legacy-reads"),
]


@pytest.mark.parametrize(("writer", "reader"), DIRECTIONS)
async def test_every_record_reads_back_equal_on_the_other_backend(
    open_store: OpenStore, writer: str, reader: str
) -> None:
    async with open_store(writer) as store:
        written = await populate(store)
        expected = await snapshot(store)

    async with open_store(reader) as store:
        for session in written.sessions:
            assert await store.sessions.get(session.id) == session
        for message in written.messages:
            assert await store.messages.get(message.id, viewer=ADMIN) == message
        # a key written twice keeps only its newest version
        newest = {(e.agent_id, e.session_id, e.key): e for e in written.memory}
        for (agent_id, session_id, key), entry in newest.items():
            assert await store.memory.get(agent_id, key, session_id=session_id) == entry
        assert (await store.audit.list()).items == written.audit[::-1]
        for participant in written.participants:
            assert participant in await store.participants.list(participant.session_id)

        assert await snapshot(store) == expected


async def test_both_backends_open_at_once_share_every_write(
    open_store: OpenStore,
) -> None:
    async with open_store("legacy") as legacy, open_store("core") as core:
        await legacy.sessions.create(purpose="shared", created_by="alice", session_id="s")
        await legacy.participants.join("s", "alice")
        await core.participants.join("s", "bob")
        first = await legacy.messages.add("s", sender="alice", content="legacy wrote zanzibar")
        second = await core.messages.add("s", sender="bob", content="core wrote zanzibar too")
        more = await legacy.messages.add_many(
            "s", [NewMessage(sender="alice", content=f"filler {i}") for i in range(3)]
        )
        await core.memory.set("alice", "k", {"from": "core"})
        await legacy.memory.set("alice", "k", {"from": "legacy"}, overwrite=True)

        for store in (legacy, core):
            page = await store.messages.list("s", viewer=ADMIN, limit=100)
            assert page.items == [first, second, *more]
            hits = await store.messages.search("zanzibar", viewer=ADMIN)
            assert {hit.message.id for hit in hits} == {first.id, second.id}
            assert (await store.memory.get("alice", "k")).value == {"from": "legacy"}  # type: ignore[union-attr]
            assert [p.agent_id for p in await store.participants.list("s")] == ["alice", "bob"]

        assert await snapshot(legacy) == await snapshot(core)


async def test_search_scores_agree_whichever_backend_wrote_the_rows(
    open_store: OpenStore,
) -> None:
    async with open_store("legacy") as legacy, open_store("core") as core:
        await core.sessions.create(purpose="p", created_by="a", session_id="s")
        await legacy.messages.add("s", sender="a", content="wombat wombat habitat")
        await core.messages.add("s", sender="b", content="wombat sighting near the river")
        await legacy.messages.add("s", sender="c", content="river habitat survey")
        for query in ("wombat", "river habitat", 'wombat" OR *', "NEAR(wombat river)"):
            from_legacy = await legacy.messages.search(query, viewer=ADMIN)
            from_core = await core.messages.search(query, viewer=ADMIN)
            assert from_legacy == from_core
            assert from_legacy, query
            scores = [hit.score for hit in from_legacy]
            assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(("first", "second"), DIRECTIONS)
async def test_a_cursor_from_one_backend_continues_on_the_other(
    open_store: OpenStore, first: str, second: str
) -> None:
    viewer = Viewer(agent_id="alice")
    async with open_store(first) as one, open_store(second) as other:
        await one.sessions.create(purpose="p", created_by="alice", session_id="s")
        await other.participants.join("s", "alice")
        await one.messages.add_many(
            "s", [NewMessage(sender="alice", content=f"note {i}") for i in range(5)]
        )
        for i in range(3):
            await other.audit.record("tick", agent_id="alice", metadata={"i": i})
            await one.sessions.create(purpose=f"p{i}", created_by="alice")

        for order in ("asc", "desc"):
            whole = await one.messages.list("s", viewer=viewer, order=order)
            page = await one.messages.list("s", viewer=viewer, order=order, limit=2)
            rest = await other.messages.list(
                "s", viewer=viewer, order=order, limit=10, cursor=page.next_cursor
            )
            assert page.items + rest.items == whole.items

        page = await one.messages.feed(viewer=viewer, limit=3)
        rest = await other.messages.feed(viewer=viewer, cursor=page.next_cursor)
        assert page.items + rest.items == (await one.messages.feed(viewer=viewer)).items

        events = await one.audit.list(agent_id="alice", limit=1)
        more_events = await other.audit.list(agent_id="alice", cursor=events.next_cursor)
        assert events.items + more_events.items == (await one.audit.list(agent_id="alice")).items

        sessions = await one.sessions.list(created_by="alice", limit=2)
        more_sessions = await other.sessions.list(created_by="alice", cursor=sessions.next_cursor)
        assert (
            sessions.items + more_sessions.items
            == (await one.sessions.list(created_by="alice")).items
        )


async def test_deletes_by_one_backend_cascade_for_the_other(open_store: OpenStore) -> None:
    async with open_store("core") as core, open_store("legacy") as legacy:
        written = await populate(core)
        session = written.sessions[0]
        assert await legacy.sessions.delete(session.id)
        assert await core.sessions.get(session.id) is None
        assert await core.messages.count(session.id, viewer=ADMIN) == 0
        assert await core.participants.list(session.id) == []
        assert await core.memory.list("alice", session_id=session.id) == []
        assert await core.messages.search("feedback", viewer=ADMIN, session_id=session.id) == []
        # audit rows stay, detached from the deleted session
        events = (await core.audit.list(agent_id="alice")).items
        assert [e.session_id for e in events if e.event_type == "session.created"] == [None]
        assert await snapshot(core) == await snapshot(legacy)
