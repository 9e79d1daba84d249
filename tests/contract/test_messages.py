"""Messages: add, add_many, get, count, parents. (Visibility, pages, search: own modules.)"""

from __future__ import annotations

import pytest

from contextstore import Message, NewMessage, NotFoundError, Store

from ._factories import ADMIN, VIEWERS, make_session, new_message
from ._oracle import is_utc


async def test_add_fills_the_defaults_and_get_reads_it_back(store: Store) -> None:
    await make_session(store, "s1")
    message = await store.messages.add("s1", sender="alice", content="hello")
    assert isinstance(message, Message)
    assert (message.session_id, message.sender, message.content) == ("s1", "alice", "hello")
    assert message.sender_type == "generic"
    assert message.visibility == "public"
    assert message.message_type == "agent_response"
    assert message.metadata == {}
    assert message.parent_message_id is None
    assert is_utc(message.timestamp)
    assert await store.messages.get(message.id, viewer=ADMIN) == message
    assert await store.messages.get(message.id, viewer=VIEWERS["outsider"]) == message


async def test_add_with_every_field(store: Store) -> None:
    await make_session(store, "s1")
    parent = await store.messages.add("s1", sender="alice", content="question?")
    reply = await store.messages.add(
        "s1",
        sender="bob",
        content="answer.",
        sender_type="reviewer",
        visibility="agent_only",
        message_type="tool_result",
        metadata={"confidence": 0.75, "refs": ["x", 1, None]},
        parent_message_id=parent.id,
    )
    assert (reply.sender_type, reply.visibility, reply.message_type) == (
        "reviewer",
        "agent_only",
        "tool_result",
    )
    assert reply.metadata == {"confidence": 0.75, "refs": ["x", 1, None]}
    assert reply.parent_message_id == parent.id
    assert reply.id > parent.id
    assert reply.timestamp >= parent.timestamp
    assert await store.messages.get(reply.id, viewer=ADMIN) == reply


async def test_add_many_returns_messages_in_input_order(store: Store) -> None:
    await make_session(store, "s1")
    parent = await store.messages.add("s1", sender="alice", content="root")
    items = [
        new_message("first", sender="alice"),
        new_message("second", sender="bob", visibility="private", metadata={"n": 2}),
        new_message("third", sender="carol", message_type="plan", parent_message_id=parent.id),
    ]
    added = await store.messages.add_many("s1", items)
    assert [m.content for m in added] == ["first", "second", "third"]
    assert [m.sender for m in added] == ["alice", "bob", "carol"]
    assert added[1].visibility == "private"
    assert added[1].metadata == {"n": 2}
    assert added[2].parent_message_id == parent.id
    assert added[2].message_type == "plan"
    assert [m.id for m in added] == sorted(m.id for m in added)
    assert len({m.id for m in added}) == 3
    assert added[0].id > parent.id
    for message in added:
        assert message.session_id == "s1"
        assert is_utc(message.timestamp)
        assert await store.messages.get(message.id, viewer=ADMIN) == message
    assert await store.messages.count("s1", viewer=ADMIN) == 4


async def test_add_many_of_nothing_is_nothing(store: Store) -> None:
    await make_session(store, "s1")
    assert await store.messages.add_many("s1", []) == []
    assert await store.messages.count("s1", viewer=ADMIN) == 0


async def test_add_many_of_a_large_batch(store: Store) -> None:
    await make_session(store, "s1")
    items = [NewMessage(sender=f"agent-{i % 7}", content=f"bulk {i}") for i in range(600)]
    added = await store.messages.add_many("s1", items)
    assert [m.content for m in added] == [f"bulk {i}" for i in range(600)]
    assert await store.messages.count("s1", viewer=ADMIN) == 600


async def test_a_parent_in_another_session_is_not_found(store: Store) -> None:
    await make_session(store, "s1")
    await make_session(store, "s2")
    foreign = await store.messages.add("s2", sender="alice", content="over there")
    with pytest.raises(NotFoundError):
        await store.messages.add("s1", sender="bob", content="re", parent_message_id=foreign.id)
    assert await store.messages.count("s1", viewer=ADMIN) == 0


async def test_a_parent_hidden_from_the_sender_fails_as_a_missing_one(store: Store) -> None:
    # existence is not a side channel: a hidden parent and a missing one give
    # the same error with the same message, and nothing is written
    await make_session(store, "room")
    hidden = [
        await store.messages.add("room", sender="alice", content="mine", visibility="private"),
        await store.messages.add("room", sender="alice", content="ops", visibility="admin_only"),
        await store.messages.add(
            "room", sender="alice", content="bots", visibility="agent_only", sender_type="robot"
        ),
    ]
    missing = max(m.id for m in hidden) + 1000
    with pytest.raises(NotFoundError) as absent:
        await store.messages.add("room", sender="bob", content="re", parent_message_id=missing)
    expected = str(absent.value).replace(str(missing), "{id}")
    assert "{id}" in expected
    assert "room" in expected
    for parent in hidden:
        with pytest.raises(NotFoundError) as caught:
            await store.messages.add(
                "room", sender="bob", content="re", parent_message_id=parent.id
            )
        assert str(caught.value).replace(str(parent.id), "{id}") == expected
        with pytest.raises(NotFoundError) as caught:
            await store.messages.add_many(
                "room",
                [
                    NewMessage(sender="carol", content="fine"),
                    NewMessage(sender="bob", content="re", parent_message_id=parent.id),
                ],
            )
        assert str(caught.value).replace(str(parent.id), "{id}") == expected
    assert await store.messages.count("room", viewer=ADMIN) == len(hidden)


async def test_a_parent_the_sender_may_see_is_accepted(store: Store) -> None:
    await make_session(store, "s1")
    own = await store.messages.add("s1", sender="bob", content="note", visibility="private")
    team = await store.messages.add(
        "s1", sender="alice", content="bots", visibility="agent_only", sender_type="robot"
    )
    public = await store.messages.add("s1", sender="alice", content="hello")
    replies = await store.messages.add_many(
        "s1",
        [
            NewMessage(sender="bob", content="re own", parent_message_id=own.id),
            NewMessage(
                sender="bob", sender_type="robot", content="re team", parent_message_id=team.id
            ),
            NewMessage(sender="carol", content="re public", parent_message_id=public.id),
        ],
    )
    assert [r.parent_message_id for r in replies] == [own.id, team.id, public.id]


async def test_get_of_an_unknown_id_is_none(store: Store) -> None:
    await make_session(store, "s1")
    message = await store.messages.add("s1", sender="alice", content="hello")
    for unknown in (message.id + 1, 2**31, 2**63 - 1):
        assert await store.messages.get(unknown, viewer=ADMIN) is None


async def test_count_per_session(store: Store) -> None:
    for name in ("s1", "s2", "empty"):
        await make_session(store, name)
    for i in range(3):
        await store.messages.add("s1", sender="alice", content=f"m{i}")
    await store.messages.add("s2", sender="alice", content="other")
    assert await store.messages.count("s1", viewer=ADMIN) == 3
    assert await store.messages.count("s2", viewer=ADMIN) == 1
    assert await store.messages.count("empty", viewer=ADMIN) == 0


@pytest.mark.parametrize("count", [1, 3, 250])
async def test_the_ids_of_deleted_messages_are_never_given_again(store: Store, count: int) -> None:
    await make_session(store, "first")
    old = await store.messages.add_many("first", [new_message(f"old {n}") for n in range(count)])
    # the newest messages go, with their session: the largest ids are free again
    assert await store.sessions.delete("first")
    await make_session(store, "second")
    new = await store.messages.add_many("second", [new_message(f"new {n}") for n in range(count)])
    one = await store.messages.add("second", sender="alice", content="one more")
    assert min(message.id for message in new) > max(message.id for message in old)
    assert one.id > max(message.id for message in new)
    assert [message.id for message in new] == sorted(message.id for message in new)
