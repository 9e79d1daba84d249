"""What you read is what was stored: a write's record equals a later read's, on every backend.

JSON (metadata, memory values) comes back as its stored document: tuples
become lists, and numbers, strings, booleans and None keep their types and
exact values (``1e16`` stays a float, ``-0.0`` stays ``-0.0``). The record a
write returns is that same value, not the caller's object. Object keys must
be strings at every depth: a key JSON would rewrite (``1`` -> ``"1"``) is a
``ValidationError`` that writes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contextstore import NewMessage, Store, ValidationError
from tests._typed_json import as_stored, typed

from ._factories import ADMIN, make_session

#: metadata whose stored form differs from the Python value given: tuples at
#: every depth, floats that a decimal store would turn into ints or 0.0
GIVEN: dict[str, Any] = {
    "t": (1, 2),
    "nested": {"pair": ("a", [1.5, (None, True)]), "deep": [{"x": (0,)}]},
    "exp": 1e16,
    "huge": 1e308,
    "tiny": 5e-324,
    "neg_zero": -0.0,
    "whole": 2.0,
    "i64": [2**63 - 1, -(2**63)],
    "text": "ünï \U0001f680",
}
#: a memory value of any JSON type, with the same traps
VALUE: Any = [GIVEN, (1e20, -0.0), "s", 3]


def assert_same(returned: Any, read: Any, given: Any) -> None:
    """``returned`` and ``read`` are the stored form of ``given``, types included."""
    assert typed(returned) == typed(as_stored(given))
    assert typed(read) == typed(as_stored(given))


async def test_sessions_create_returns_what_get_reads(store: Store) -> None:
    created = await make_session(store, "s1", metadata=GIVEN)
    got = await store.sessions.get("s1")
    assert got is not None
    assert created == got
    assert_same(created.metadata, got.metadata, GIVEN)


async def test_sessions_update_returns_what_get_reads(store: Store) -> None:
    await make_session(store, "s1")
    updated = await store.sessions.update("s1", metadata=GIVEN)
    got = await store.sessions.get("s1")
    assert got is not None
    assert updated == got
    assert_same(updated.metadata, got.metadata, GIVEN)


async def test_messages_add_returns_what_get_reads(store: Store) -> None:
    await make_session(store, "s1")
    added = await store.messages.add("s1", sender="alice", content="c", metadata=GIVEN)
    got = await store.messages.get(added.id, viewer=ADMIN)
    assert got is not None
    assert added == got
    assert_same(added.metadata, got.metadata, GIVEN)


async def test_messages_add_many_returns_what_list_reads(store: Store) -> None:
    await make_session(store, "s1")
    batch = [
        NewMessage(sender="alice", content="one", metadata=GIVEN),
        NewMessage(sender="bob", content="two", metadata={"pair": (1, 2)}),
        NewMessage(sender="alice", content="three"),
    ]
    added = await store.messages.add_many("s1", batch)
    page = await store.messages.list("s1", viewer=ADMIN)
    assert added == page.items
    for message, read, item in zip(added, page.items, batch, strict=True):
        assert_same(message.metadata, read.metadata, item.metadata or {})


async def test_memory_set_returns_what_get_reads(store: Store) -> None:
    await make_session(store, "s1")
    for session_id in (None, "s1"):
        for overwrite in (True, False):
            key = f"k-{overwrite}"
            written = await store.memory.set(
                "agent", key, VALUE, session_id=session_id, metadata=GIVEN, overwrite=overwrite
            )
            got = await store.memory.get("agent", key, session_id=session_id)
            assert got is not None
            assert written == got
            assert_same(written.value, got.value, VALUE)
            assert_same(written.metadata, got.metadata, GIVEN)


async def test_audit_record_returns_what_list_reads(store: Store) -> None:
    recorded = await store.audit.record("login", agent_id="alice", metadata=GIVEN)
    (read,) = (await store.audit.list(agent_id="alice")).items
    assert recorded == read
    assert_same(recorded.metadata, read.metadata, GIVEN)


async def test_a_record_does_not_share_the_callers_objects(store: Store) -> None:
    # the caller's dict and lists changed after the write: the record holds
    # what was stored, not the caller's objects
    metadata: dict[str, Any] = {"tags": ["a"], "n": 1}
    created = await make_session(store, "s1", metadata=metadata)
    added = await store.messages.add("s1", sender="alice", content="c", metadata=metadata)
    recorded = await store.audit.record("login", agent_id="alice", metadata=metadata)
    metadata["tags"].append("b")
    metadata["n"] = 2
    for record in (created, added, recorded):
        assert record.metadata == {"tags": ["a"], "n": 1}


NON_STRING_KEYS = [{1: "a"}, {None: 1}, {True: 1}, {1.5: 1}]


def writes(bad: Any) -> list[tuple[str, Callable[[Store], Awaitable[Any]]]]:
    """Every write of JSON, with ``bad`` nested in its metadata or value."""
    nested = {"outer": [bad]}
    return [
        ("sessions.create", lambda s: make_session(s, "s2", metadata=nested)),
        ("sessions.update", lambda s: s.sessions.update("s1", metadata=nested)),
        ("messages.add", lambda s: s.messages.add("s1", sender="a", content="c", metadata=nested)),
        (
            "messages.add_many",
            lambda s: s.messages.add_many(
                "s1", [NewMessage(sender="a", content="c", metadata=nested)]
            ),
        ),
        ("memory.set value", lambda s: s.memory.set("agent", "k", bad)),
        ("memory.set metadata", lambda s: s.memory.set("agent", "k", 1, metadata=nested)),
        ("audit.record", lambda s: s.audit.record("e", agent_id="a", metadata=nested)),
    ]


@pytest.mark.parametrize("bad", NON_STRING_KEYS, ids=lambda bad: type(next(iter(bad))).__name__)
async def test_a_key_that_is_not_a_string_is_refused_everywhere(store: Store, bad: Any) -> None:
    await make_session(store, "s1")
    for name, write in writes(bad):
        with pytest.raises(ValidationError, match="keys must be strings") as caught:
            await write(store)
        assert "got a key of type" in str(caught.value), name
    assert await store.sessions.get("s2") is None
    assert (await store.sessions.get("s1")).metadata == {}  # type: ignore[union-attr]
    assert await store.messages.count("s1", viewer=ADMIN) == 0
    assert await store.memory.get("agent", "k") is None
    assert (await store.audit.list()).items == []
