"""Participants: idempotent join, leave, join order, and the sessions of an agent."""

from __future__ import annotations

from contextstore import Participant, Store

from ._factories import make_session
from ._oracle import is_utc


async def test_join_returns_the_participant_and_is_idempotent(store: Store) -> None:
    await make_session(store, "s1")
    joined = await store.participants.join("s1", "alice", agent_type="writer", role="owner")
    assert isinstance(joined, Participant)
    assert (joined.session_id, joined.agent_id, joined.agent_type, joined.role) == (
        "s1",
        "alice",
        "writer",
        "owner",
    )
    assert is_utc(joined.joined_at)
    # joining again changes nothing, whatever it asks for
    assert await store.participants.join("s1", "alice") == joined
    assert await store.participants.join("s1", "alice", agent_type="x", role="y") == joined
    assert await store.participants.list("s1") == [joined]
    default = await store.participants.join("s1", "bob")
    assert (default.agent_type, default.role) == ("generic", "member")


async def test_list_is_in_join_order(store: Store) -> None:
    await make_session(store, "s1")
    await make_session(store, "s2")
    order = ["zoe", "adam", "mike", "bea"]
    joined = [await store.participants.join("s1", agent) for agent in order]
    await store.participants.join("s2", "adam")
    await store.participants.join("s1", "zoe")  # a repeat does not move it
    assert await store.participants.list("s1") == joined
    assert [p.agent_id for p in await store.participants.list("s2")] == ["adam"]
    assert await store.participants.list("no-such-session") == []


async def test_leave_removes_one_membership(store: Store) -> None:
    await make_session(store, "s1")
    await make_session(store, "s2")
    alice = await store.participants.join("s1", "alice")
    bob = await store.participants.join("s1", "bob")
    elsewhere = await store.participants.join("s2", "alice")
    assert await store.participants.leave("s1", "alice")
    assert not await store.participants.leave("s1", "alice")
    assert not await store.participants.leave("s1", "never-joined")
    assert not await store.participants.leave("no-such-session", "alice")
    assert await store.participants.list("s1") == [bob]
    assert await store.participants.list("s2") == [elsewhere]
    # joining after leaving is a new membership with what it asks for
    again = await store.participants.join("s1", "alice", role="guest")
    assert again.role == "guest"
    assert again.joined_at >= alice.joined_at
    assert await store.participants.list("s1") == [bob, again]


async def test_sessions_for_newest_first_with_active_filter(store: Store) -> None:
    sessions = [await make_session(store, f"s{i}") for i in range(4)]
    await make_session(store, "not-joined")
    for session in sessions:
        await store.participants.join(session.id, "alice")
    await store.participants.join("s3", "bob")
    sessions[1] = await store.sessions.update("s1", is_active=False)
    newest_first = sessions[::-1]
    assert await store.participants.sessions_for("alice") == newest_first
    assert await store.participants.sessions_for("alice", active=True) == [
        s for s in newest_first if s.is_active
    ]
    assert await store.participants.sessions_for("alice", active=False) == [sessions[1]]
    assert await store.participants.sessions_for("bob") == [sessions[3]]
    assert await store.participants.sessions_for("nobody") == []
    await store.participants.leave("s2", "alice")
    assert "s2" not in [s.id for s in await store.participants.sessions_for("alice")]
