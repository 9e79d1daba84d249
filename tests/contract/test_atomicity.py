"""All or nothing: add_many and sessions.delete (with its cascade)."""

from __future__ import annotations

from typing import Any

import pytest

from contextstore import NewMessage, NotFoundError, Store, ValidationError, Viewer

from ._factories import ADMIN, all_pages, flatten, make_session, new_message, snapshot

BAD_ITEMS: dict[str, dict[str, Any]] = {
    "empty content": {"content": ""},
    "NUL content": {"content": "a\x00b"},
    "content 100001": {"content": "x" * 100_001},
    "unknown visibility": {"visibility": "secret"},
    "sender 256": {"sender": "s" * 256},
    "metadata > 64 KiB": {"metadata": {"k": "x" * 65536}},
    "parent 0": {"parent_message_id": 0},
}


def batch(bad_at: int, bad: NewMessage, size: int = 5) -> list[NewMessage]:
    items = [new_message(f"good {i}") for i in range(size)]
    items[bad_at] = bad
    return items


@pytest.mark.parametrize("position", [0, 2, 4], ids=["first", "middle", "last"])
async def test_add_many_with_one_invalid_item_writes_nothing(store: Store, position: int) -> None:
    await make_session(store, "s1")
    await store.messages.add("s1", sender="alice", content="already there")
    before = await snapshot(store)
    for label, fields in BAD_ITEMS.items():
        with pytest.raises(ValidationError):  # noqa: PT012 - the bad item may fail on construction
            bad = NewMessage(**{"sender": "alice", "content": "bad", **fields})
            await store.messages.add_many("s1", batch(position, bad))
        assert await snapshot(store) == before, label


@pytest.mark.parametrize("position", [0, 2, 4], ids=["first", "middle", "last"])
async def test_add_many_with_one_missing_parent_writes_nothing(store: Store, position: int) -> None:
    await make_session(store, "s1")
    await make_session(store, "s2")
    root = await store.messages.add("s1", sender="alice", content="root")
    foreign = await store.messages.add("s2", sender="alice", content="elsewhere")
    before = await snapshot(store)
    for label, parent in (("missing", root.id + 1000), ("in another session", foreign.id)):
        items = batch(position, new_message("orphan", parent_message_id=parent))
        items[(position + 1) % len(items)] = new_message("child", parent_message_id=root.id)
        with pytest.raises(NotFoundError):
            await store.messages.add_many("s1", items)
        assert await snapshot(store) == before, label


async def test_delete_cascades_and_keeps_the_audit_trail(store: Store) -> None:
    doomed = await make_session(store, "doomed")
    survivor = await make_session(store, "survivor")
    reader = Viewer(agent_id="agent")
    for session in (doomed, survivor):
        await store.messages.add_many(
            session.id, [new_message(f"wombat {session.id} {i}") for i in range(3)]
        )
        await store.memory.set("agent", "k", session.id, session_id=session.id)
        await store.participants.join(session.id, "agent")
        await store.audit.record("touch", agent_id="agent", session_id=session.id)
    doomed_ids = [m.id for m in (await store.messages.list("doomed", viewer=ADMIN)).items]
    global_memory = await store.memory.set("agent", "k", "global")
    survivor_before = {
        "messages": (await store.messages.list("survivor", viewer=ADMIN)).items,
        "memory": await store.memory.list("agent", session_id="survivor"),
        "participants": await store.participants.list("survivor"),
    }
    audit_before = flatten(await all_pages(store.audit.list))

    assert await store.sessions.delete("doomed")

    assert await store.sessions.get("doomed") is None
    assert await store.messages.count("doomed", viewer=ADMIN) == 0
    assert (await store.messages.list("doomed", viewer=ADMIN)).items == []
    for message_id in doomed_ids:
        assert await store.messages.get(message_id, viewer=ADMIN) is None
    assert await store.memory.get("agent", "k", session_id="doomed") is None
    assert await store.memory.list("agent", session_id="doomed") == []
    assert await store.participants.list("doomed") == []
    assert [s.id for s in await store.participants.sessions_for("agent")] == ["survivor"]
    hits = await store.messages.search("wombat", viewer=ADMIN, limit=100)
    assert {h.message.session_id for h in hits} == {"survivor"}
    assert {m.session_id for m in (await store.messages.feed(viewer=reader)).items} == {"survivor"}

    # the audit trail stays whole; rows of the deleted session lose only the link
    audit_after = flatten(await all_pages(store.audit.list))
    assert [e.id for e in audit_after] == [e.id for e in audit_before]
    for old, new in zip(audit_before, audit_after, strict=True):
        expected = old.session_id if old.session_id != "doomed" else None
        assert new == old.model_copy(update={"session_id": expected})
    gone = await store.audit.list(session_id="doomed")
    assert (gone.items, gone.next_cursor) == ([], None)

    assert await store.memory.get("agent", "k") == global_memory
    assert (await store.messages.list("survivor", viewer=ADMIN)).items == survivor_before[
        "messages"
    ]
    assert await store.memory.list("agent", session_id="survivor") == survivor_before["memory"]
    assert await store.participants.list("survivor") == survivor_before["participants"]


async def test_a_session_recreated_after_delete_starts_empty(store: Store) -> None:
    await make_session(store, "again")
    await store.messages.add("again", sender="alice", content="old")
    await store.memory.set("agent", "k", "old", session_id="again")
    await store.participants.join("again", "agent")
    assert await store.sessions.delete("again")

    fresh = await make_session(store, "again", purpose="second life")
    assert fresh.purpose == "second life"
    assert await store.messages.count("again", viewer=ADMIN) == 0
    assert await store.memory.get("agent", "k", session_id="again") is None
    assert await store.participants.list("again") == []
    activity = await store.sessions.activity("again", viewer=ADMIN)
    assert (activity.message_count, activity.unique_senders) == (0, 0)


@pytest.mark.parametrize(("count", "size"), [(170, 100_000), (1_000, 17_000)])
async def test_a_bulk_write_beyond_one_server_packet_is_stored_whole(
    store: Store, count: int, size: int
) -> None:
    # 17 MB in one call: past MariaDB's default max_allowed_packet (16 MiB),
    # so it must be split into statements, in one transaction
    await make_session(store, "big")
    items = [NewMessage(sender="a", content=f"{n:06d}" + "x" * (size - 6)) for n in range(count)]
    added = await store.messages.add_many("big", items)
    assert [m.content[:6] for m in added] == [f"{n:06d}" for n in range(count)]
    assert await store.messages.count("big", viewer=ADMIN) == count
