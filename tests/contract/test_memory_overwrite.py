"""memory.set(overwrite=True) on an existing key: the entry returned is the row as stored.

Where the dialect can, the overwrite is one ``INSERT ... ON CONFLICT/DUPLICATE
KEY UPDATE ... RETURNING``; what it returns must then be the stored row after
the update (the original ``created_at``, every overwritten field new), not the
values the call tried to insert.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from contextstore import Store

from ._factories import make_session


@pytest.mark.parametrize("session_id", [None, "s1"], ids=["global", "session"])
async def test_overwrite_keeps_created_at_and_returns_the_stored_row(
    store: Store, session_id: str | None
) -> None:
    if session_id is not None:
        await make_session(store, session_id)
    first = await store.memory.set(
        "agent", "k", {"v": 1}, session_id=session_id, metadata={"n": 1}, ttl=3600
    )
    await asyncio.sleep(0.01)  # a later clock reading for the overwrite
    second = await store.memory.set(
        "agent", "k", [2, "two"], session_id=session_id, metadata={"n": 2}
    )
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.value == [2, "two"]
    assert second.metadata == {"n": 2}
    assert second.expires_at is None  # no ttl this time: the expiry is cleared
    assert (second.agent_id, second.session_id, second.key) == ("agent", session_id, "k")
    assert await store.memory.get("agent", "k", session_id=session_id) == second
    assert await store.memory.list("agent", session_id=session_id) == [second]

    third = await store.memory.set("agent", "k", None, session_id=session_id, ttl=60)
    assert third.created_at == first.created_at
    assert third.updated_at > second.updated_at
    assert third.value is None
    assert third.metadata == {}
    assert third.expires_at is not None
    assert third.expires_at - third.updated_at == timedelta(seconds=60)
    assert await store.memory.get("agent", "k", session_id=session_id) == third


async def test_overwrite_touches_only_its_own_scope(store: Store) -> None:
    await make_session(store, "s1")
    global_entry = await store.memory.set("agent", "k", "global")
    scoped = await store.memory.set("agent", "k", "scoped", session_id="s1")
    other = await store.memory.set("other", "k", "other agent")
    await asyncio.sleep(0.01)
    again = await store.memory.set("agent", "k", "scoped again", session_id="s1")
    assert again.created_at == scoped.created_at
    assert again.session_id == "s1"
    assert await store.memory.get("agent", "k") == global_entry
    assert await store.memory.get("other", "k") == other
