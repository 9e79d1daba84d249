"""Agent memory: scoped keys (global ones unique too), JSON values, TTL, owner-only reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contextstore import ConflictError, MemoryEntry, NotFoundError, Store

from ._factories import make_session
from ._oracle import is_utc, strict_json

#: waits past a ttl of one second; kept to the two TTL tests below.
EXPIRY_WAIT = 1.3

JSON_VALUES: dict[str, Any] = {
    "null": None,
    "false": False,
    "true": True,
    "zero": 0,
    "empty-string": "",
    "empty-list": [],
    "empty-object": {},
    "negative": -7,
    "float": 3.25,
    "big-int": 2**63 - 1,
    "bigger-than-int64": 2**64 + 1,
    "text": "plain",
    "list-of-falsy": [None, False, 0, "", [], {}],
    "nested-unicode": {
        "ключ": ["värde", "😀", {"深い": None, "quote\"'\\": "\t\n"}],
        "n": -12,
        "f": 0.5,
        "t": True,
        "empty": {"": ""},
    },
}


async def test_every_json_value_round_trips_and_is_distinct_from_absent(store: Store) -> None:
    written = {
        key: await store.memory.set("agent", key, value) for key, value in JSON_VALUES.items()
    }
    for key, value in JSON_VALUES.items():
        got = await store.memory.get("agent", key)
        assert got is not None, f"{key} read back as absent"
        assert strict_json(got.value) == strict_json(value), key
        assert strict_json(written[key].value) == strict_json(value), key
    listed = {entry.key: entry.value for entry in await store.memory.list("agent")}
    assert {k: strict_json(v) for k, v in listed.items()} == {
        k: strict_json(v) for k, v in JSON_VALUES.items()
    }
    assert await store.memory.get("agent", "never-set") is None


async def test_set_returns_the_entry_that_get_reads(store: Store) -> None:
    await make_session(store, "s1")
    entry = await store.memory.set(
        "agent", "plan", {"step": 1}, session_id="s1", metadata={"source": "test"}
    )
    assert isinstance(entry, MemoryEntry)
    assert (entry.agent_id, entry.session_id, entry.key) == ("agent", "s1", "plan")
    assert entry.value == {"step": 1}
    assert entry.metadata == {"source": "test"}
    assert entry.expires_at is None
    assert is_utc(entry.created_at)
    assert is_utc(entry.updated_at)
    assert await store.memory.get("agent", "plan", session_id="s1") == entry
    plain = await store.memory.set("agent", "bare", 1)
    assert plain.metadata == {}
    assert plain.session_id is None


async def test_global_memory_holds_one_entry_per_key(store: Store) -> None:
    first = await store.memory.set("agent", "k", 1)
    second = await store.memory.set("agent", "k", 2)
    entries = await store.memory.list("agent")
    assert entries == [second]
    assert second.value == 2
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    with pytest.raises(ConflictError):
        await store.memory.set("agent", "k", 3, overwrite=False)
    assert await store.memory.list("agent") == [second]


async def test_session_memory_holds_one_entry_per_key(store: Store) -> None:
    await make_session(store, "s1")
    await store.memory.set("agent", "k", 1, session_id="s1")
    second = await store.memory.set("agent", "k", 2, session_id="s1")
    assert await store.memory.list("agent", session_id="s1") == [second]
    with pytest.raises(ConflictError):
        await store.memory.set("agent", "k", 3, session_id="s1", overwrite=False)
    assert await store.memory.get("agent", "k", session_id="s1") == second


async def test_overwrite_false_on_an_absent_key_writes(store: Store) -> None:
    entry = await store.memory.set("agent", "new", "v", overwrite=False)
    assert await store.memory.get("agent", "new") == entry


async def test_scopes_and_owners_are_separate(store: Store) -> None:
    for name in ("s1", "s2"):
        await make_session(store, name)
    global_entry = await store.memory.set("agent", "k", "global")
    s1_entry = await store.memory.set("agent", "k", "in s1", session_id="s1")
    other_owner = await store.memory.set("other", "k", "not yours")

    assert await store.memory.get("agent", "k") == global_entry
    assert await store.memory.get("agent", "k", session_id="s1") == s1_entry
    assert await store.memory.get("agent", "k", session_id="s2") is None
    assert await store.memory.list("agent") == [global_entry]
    assert await store.memory.list("agent", session_id="s1") == [s1_entry]
    assert await store.memory.list("agent", session_id="s2") == []
    assert await store.memory.list("other") == [other_owner]
    assert await store.memory.get("nobody", "k") is None
    assert await store.memory.list("nobody") == []

    assert await store.memory.delete("agent", "k", session_id="s1")
    assert await store.memory.get("agent", "k") == global_entry
    assert await store.memory.get("other", "k") == other_owner
    assert not await store.memory.delete("agent", "k", session_id="s1")
    assert await store.memory.delete("agent", "k")
    assert not await store.memory.delete("agent", "k")
    assert await store.memory.get("agent", "k") is None
    assert await store.memory.get("other", "k") == other_owner


async def test_list_is_ordered_by_key_and_limited(store: Store) -> None:
    keys = [f"key-{i:03d}" for i in range(30)]
    for key in reversed(keys):
        await store.memory.set("agent", key, key)
    assert [e.key for e in await store.memory.list("agent")] == keys
    assert [e.key for e in await store.memory.list("agent", limit=7)] == keys[:7]
    assert [e.key for e in await store.memory.list("agent", prefix="key-01")] == keys[10:20]


async def test_ttl_sets_expires_at_and_a_later_set_without_ttl_clears_it(store: Store) -> None:
    hour = await store.memory.set("agent", "k", 1, ttl=3600)
    assert hour.expires_at is not None
    assert is_utc(hour.expires_at)
    assert abs(hour.expires_at - hour.updated_at - timedelta(hours=1)) < timedelta(seconds=1)
    day = await store.memory.set("agent", "d", 1, ttl=timedelta(days=1))
    assert day.expires_at is not None
    assert abs(day.expires_at - day.updated_at - timedelta(days=1)) < timedelta(seconds=1)
    forever = await store.memory.set("agent", "k", 2)
    assert forever.expires_at is None
    assert await store.memory.get("agent", "k") == forever
    assert await store.memory.purge_expired() == 0


async def test_expired_entries_are_absent_before_any_purge(store: Store) -> None:
    await make_session(store, "s1")
    await store.memory.set("agent", "gone", 1, ttl=1)
    await store.memory.set("agent", "gone", 1, ttl=1, session_id="s1")
    await store.memory.set("agent", "replaced", "old", ttl=1)
    await store.memory.set("other", "gone", 1, ttl=1)
    kept = await store.memory.set("agent", "kept", 1, ttl=3600)
    forever = await store.memory.set("agent", "forever", 1)

    await asyncio.sleep(EXPIRY_WAIT)

    assert await store.memory.get("agent", "gone") is None
    assert await store.memory.get("agent", "gone", session_id="s1") is None
    assert await store.memory.list("agent", session_id="s1") == []
    assert await store.memory.list("agent") == [forever, kept]  # ordered by key
    # an expired key counts as absent: overwrite=False replaces it
    replaced = await store.memory.set("agent", "replaced", "new", overwrite=False)
    assert replaced.value == "new"
    assert replaced.expires_at is None
    assert await store.memory.get("agent", "replaced") == replaced

    assert await store.memory.purge_expired() == 3
    assert await store.memory.purge_expired() == 0
    assert await store.memory.list("agent") == [forever, kept, replaced]
    assert await store.memory.get("agent", "kept") == kept


async def test_deleting_an_expired_entry_reports_false(store: Store) -> None:
    await store.memory.set("agent", "gone", 1, ttl=1)
    await asyncio.sleep(EXPIRY_WAIT)
    assert not await store.memory.delete("agent", "gone")
    assert await store.memory.get("agent", "gone") is None
    assert await store.memory.purge_expired() in (0, 1)  # the row may or may not remain
    assert await store.memory.purge_expired() == 0


async def test_memory_of_a_missing_session_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.memory.set("agent", "k", 1, session_id="no-such-session")
    assert await store.memory.list("agent", session_id="no-such-session") == []
    assert await store.memory.get("agent", "k", session_id="no-such-session") is None


async def test_concurrent_sets_of_one_global_key_leave_one_entry(store: Store) -> None:
    # read your writes is per task: this task reads what the tasks it starts
    # wrote once it has written itself (on replicas, tasks started before its
    # first write are other tasks, whose writes a standby may not show yet)
    await store.memory.set("setup", "k", 0)
    entries = await asyncio.gather(*(store.memory.set("agent", "k", i) for i in range(8)))
    listed = await store.memory.list("agent")
    assert len(listed) == 1
    assert listed[0].value in {e.value for e in entries}


async def test_concurrent_overwrite_false_lets_exactly_one_win(store: Store) -> None:
    # several rounds: a lock conflict between the callers (a deadlock on
    # InnoDB) shows up in some interleavings only
    every: list[MemoryEntry] = []
    for key in ("k0", "k1", "k2", "k3", "k4"):
        results = await asyncio.gather(
            *(store.memory.set("agent", key, i, overwrite=False) for i in range(8)),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, MemoryEntry)]
        losers = [r for r in results if not isinstance(r, MemoryEntry)]
        assert len(winners) == 1, results
        assert all(isinstance(r, ConflictError) for r in losers), results
        every.extend(winners)
    assert await store.memory.list("agent") == every


async def test_timestamps_are_now(store: Store) -> None:
    before = datetime.now(UTC)
    entry = await store.memory.set("agent", "k", 1)
    after = datetime.now(UTC)
    assert before - timedelta(seconds=5) <= entry.created_at <= after + timedelta(seconds=5)
