"""Hostile text is data: stored and read back exactly, matched literally, searched safely.

SQL-looking text, LIKE wildcards, escape characters, quotes, full-text
operators, emoji and the longest allowed values go through every write and
read path; nothing may be interpreted, folded, padded or truncated.
"""

from __future__ import annotations

import pytest

from contextstore import Message, Store, Viewer

from ._factories import ADMIN, make_session
from ._oracle import words

HOSTILE = [
    "'; DROP TABLE messages; --",
    "Robert'); DROP TABLE sessions;--",
    "' OR '1'='1",
    "1; DELETE FROM agent_memory",
    "%",
    "_",
    "%_%",
    "a%",
    "\\",
    "\\\\",
    "\\%",
    "\\_",
    "C:\\path\\to\\file.txt",
    "'",
    "''",
    '"',
    '"quoted"',
    "`backtick`",
    "*",
    "quokka*",
    "NEAR(",
    "NEAR(a b, 2)",
    "AND OR NOT",
    "+-~<>()",
    "^:{}[]|@#",
    "col:term",
    "$1 ? %s %(name)s :name {0}",
    "😀",
    "👩‍👩‍👧 family 🏳️‍🌈",
    "日本語のテキスト",
    "ß ẞ Ωmega ǅ",
    "\u202eright-to-left",
    "zero\u200bwidth",
    "\ufeffbom",
    "tab\there\nnew line\r\nand cr",
    "  leading and trailing spaces  ",
    "null",
    "NULL",
    "None",
    "0",
    "-1",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "\x01\x02\x1f controls \x7f",
]


def _id(text: str) -> str:
    return ascii(text)[1:-1][:32]


@pytest.mark.parametrize("text", HOSTILE, ids=[f"{i}:{_id(h)}" for i, h in enumerate(HOSTILE)])
async def test_hostile_text_round_trips_through_every_path(store: Store, text: str) -> None:
    h = text
    metadata = {h: h, "nested": [h, {h: [h]}]}
    session = await store.sessions.create(purpose=h, created_by=h, metadata=metadata, session_id=h)
    assert (session.id, session.purpose, session.created_by, session.metadata) == (
        h,
        h,
        h,
        metadata,
    )
    assert await store.sessions.get(h) == session
    assert (await store.sessions.list(created_by=h)).items == [session]

    viewer = Viewer(agent_id=h, agent_type=h)
    message = await store.messages.add(
        h,
        sender=h,
        content=h,
        sender_type=h,
        message_type=h,
        metadata=metadata,
        visibility="private",
    )
    assert (message.sender, message.content, message.sender_type, message.message_type) == (
        h,
        h,
        h,
        h,
    )
    assert message.metadata == metadata
    assert await store.messages.get(message.id, viewer=viewer) == message
    assert (await store.messages.list(h, viewer=viewer, sender=h)).items == [message]
    assert await store.messages.count(h, viewer=viewer) == 1
    hits = await store.messages.search(h, viewer=viewer)
    assert {hit.message.id for hit in hits} <= {message.id}

    entry = await store.memory.set(h, h, {h: [h]}, session_id=h, metadata=metadata)
    assert entry.value == {h: [h]}
    assert await store.memory.get(h, h, session_id=h) == entry
    assert await store.memory.list(h, session_id=h, prefix=h) == [entry]
    global_entry = await store.memory.set(h, h, h)
    assert await store.memory.get(h, h) == global_entry
    assert await store.memory.list(h, prefix=h) == [global_entry]

    event = await store.audit.record(
        h, agent_id=h, session_id=h, resource=h, action=h, result=h, metadata=metadata
    )
    assert (event.resource, event.action, event.result, event.metadata) == (h, h, h, metadata)
    assert (await store.audit.list(agent_id=h, session_id=h, event_type=h)).items == [event]
    assert [row.event_type for row in await store.audit.activity(agent_id=h)] == [h]

    participant = await store.participants.join(h, h, agent_type=h, role=h)
    assert (participant.agent_type, participant.role) == (h, h)
    assert await store.participants.list(h) == [participant]
    assert await store.participants.sessions_for(h) == [session]
    assert (await store.messages.feed(viewer=viewer)).items == [message]
    activity = await store.sessions.activity(h, viewer=viewer)
    assert (activity.message_count, activity.unique_senders) == (1, 1)

    assert await store.memory.delete(h, h)
    assert await store.memory.get(h, h) is None
    assert await store.memory.get(h, h, session_id=h) == entry
    assert await store.sessions.delete(h)
    assert await store.sessions.get(h) is None
    assert await store.memory.get(h, h, session_id=h) is None
    assert [e.session_id for e in (await store.audit.list(agent_id=h)).items] == [None]


async def test_hostile_queries_are_plain_data_for_search(store: Store) -> None:
    await make_session(store, "hs")
    messages: list[Message] = []
    for h in HOSTILE:
        messages.append(await store.messages.add("hs", sender="alice", content=f"quokka {h}"))
    for name in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"):
        await store.messages.add("hs", sender="alice", content=f"pangolin filler {name}")
    every_id = {m.id for m in messages}
    by_id = {m.id: m for m in messages}
    for h in HOSTILE:
        hits = await store.messages.search(h, viewer=ADMIN, limit=1000)
        hit_ids = [hit.message.id for hit in hits]
        assert set(hit_ids) <= every_id, h
        assert len(hit_ids) == len(set(hit_ids)), h
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
        # the hostile part must not break the query: the plain word still finds everything
        both = await store.messages.search(f"quokka {h}", viewer=ADMIN, limit=1000)
        assert {hit.message.id for hit in both} == every_id, h
        for hit in hits + both:
            assert hit.message == by_id[hit.message.id]


LONG_CONTENTS = {
    "prose": ("lorem ipsum dolor sit amet " * 4000)[:100_000],
    "one word": "x" * 100_000,
    "four-byte characters": "😀" * 100_000,
    "mixed": ("aé€😀'\"\\%_\n" * 10_000)[:100_000],
}


async def test_the_longest_contents_round_trip_exactly(store: Store) -> None:
    await make_session(store, "long")
    stored = {}
    for label, content in LONG_CONTENTS.items():
        assert len(content) == 100_000
        stored[label] = await store.messages.add("long", sender="alice", content=content)
        assert stored[label].content == content, label
    for label, message in stored.items():
        got = await store.messages.get(message.id, viewer=ADMIN)
        assert got is not None
        assert got.content == LONG_CONTENTS[label], label
    listed = (await store.messages.list("long", viewer=ADMIN)).items
    assert [m.content for m in listed] == list(LONG_CONTENTS.values())
    hits = await store.messages.search("lorem", viewer=ADMIN)
    assert [hit.message.id for hit in hits] == [stored["prose"].id]


async def test_the_longest_ids_of_four_byte_characters_round_trip(store: Store) -> None:
    longest = "😀" * 255
    other = "😀" * 254 + "😁"
    session = await store.sessions.create(purpose=longest, created_by=longest, session_id=longest)
    assert await store.sessions.get(longest) == session
    await store.sessions.create(purpose="p", created_by="c", session_id=other)
    message = await store.messages.add(
        longest, sender=longest, sender_type=longest, message_type=longest, content="hi"
    )
    assert await store.messages.get(message.id, viewer=Viewer(agent_id=longest)) == message
    first = await store.memory.set(longest, longest, 1, session_id=longest)
    second = await store.memory.set(longest, other, 2, session_id=longest)
    assert await store.memory.list(longest, session_id=longest) == [first, second]
    assert await store.memory.get(longest, longest, session_id=longest) == first
    event = await store.audit.record(longest, agent_id=longest, session_id=longest)
    assert (await store.audit.list(agent_id=longest)).items == [event]
    joined = await store.participants.join(longest, longest, agent_type=longest, role=longest)
    assert await store.participants.list(longest) == [joined]


PREFIX_KEYS = [
    "abc", "abd", "ab", "a", "A", "Abc", "a%", "a%c", "a_c", "%", "%%", "_", "_a",
    "x_y", "xzy", "x", "\\", "\\%", "a\\b", "a\\%", "[a]", "[", "a*", "*", "^a",
    "e", "é", "E\u0301", "k", "k ", " k", "Key", "key", "KEY", "'", "''", "a'b", '"',
    "😀", "😀😀", "ß", "ss", "\ufb01", "fi", "i", "\u0130", "\u0131",
]  # fmt: skip
EXTRA_PREFIXES = ["x_", "K", "a\\", "s", "f", "E", "I", "😀", "🙂"]


async def test_memory_prefix_matches_literally_and_case_sensitively(store: Store) -> None:
    for key in PREFIX_KEYS:
        await store.memory.set("agent", key, key)

    async def keys(prefix: str | None = None) -> list[str]:
        return [e.key for e in await store.memory.list("agent", prefix=prefix, limit=1000)]

    assert await keys("a%") == ["a%", "a%c"]
    assert await keys("A") == ["A", "Abc"]
    assert await keys("_") == ["_", "_a"]
    assert await keys("%") == ["%", "%%"]
    assert await keys("\\") == ["\\", "\\%"]
    got = {prefix: set(await keys(prefix)) for prefix in PREFIX_KEYS + EXTRA_PREFIXES}
    expected = {
        prefix: {k for k in PREFIX_KEYS if k.startswith(prefix)}
        for prefix in PREFIX_KEYS + EXTRA_PREFIXES
    }
    assert got == expected


async def test_memory_lists_in_code_point_order_of_keys(store: Store) -> None:
    for key in reversed(PREFIX_KEYS):
        await store.memory.set("agent", key, key)
    assert [e.key for e in await store.memory.list("agent", limit=1000)] == sorted(PREFIX_KEYS)


#: pairs that case folding, PAD SPACE collations or Unicode normalisation would merge
LOOKALIKES = [
    "Key", "key", "KEY", "k", "k ", " k", "k\t", "e", "é", "E\u0301",
    "ß", "ss", "\ufb01", "fi", "i", "\u0130", "\u0131",
]  # fmt: skip


async def test_lookalike_strings_are_distinct_keys_and_ids(store: Store) -> None:
    for value, key in enumerate(LOOKALIKES):
        await store.memory.set("agent", key, value, overwrite=False)
    for value, key in enumerate(LOOKALIKES):
        entry = await store.memory.get("agent", key)
        assert entry is not None, key
        assert (entry.key, entry.value) == (key, value)
    assert len(await store.memory.list("agent", limit=1000)) == len(LOOKALIKES)

    for session_id in ("s", "S", "s ", " s"):
        await make_session(store, session_id, purpose=f"[{session_id}]")
    for session_id in ("s", "S", "s ", " s"):
        session = await store.sessions.get(session_id)
        assert session is not None
        assert session.purpose == f"[{session_id}]"

    for sender in ("alice", "Alice", "alice "):
        await store.messages.add("s", sender=sender, content=f"from [{sender}]")
        await store.participants.join("s", sender)
        await store.audit.record("said", agent_id=sender)
    for sender in ("alice", "Alice", "alice "):
        listed = (await store.messages.list("s", viewer=ADMIN, sender=sender)).items
        assert [m.content for m in listed] == [f"from [{sender}]"]
        assert [e.agent_id for e in (await store.audit.list(agent_id=sender)).items] == [sender]
        assert [s.id for s in await store.participants.sessions_for(sender)] == ["s"]
    assert [p.agent_id for p in await store.participants.list("s")] == ["alice", "Alice", "alice "]


def test_the_hostile_strings_are_valid_input() -> None:
    """They test storage, not validation: each is non-blank, NUL-free and short enough."""
    for h in HOSTILE:
        assert h.strip()
        assert "\x00" not in h
        assert len(h) <= 255
    assert any(not words(h) for h in HOSTILE)
