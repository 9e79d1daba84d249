"""The feed: newest first, from every session the viewer has joined, and only those."""

from __future__ import annotations

from contextstore import Message, Store, Viewer

from ._factories import VIEWERS, all_pages, flatten, make_session
from ._oracle import message_key, visible

BOB = VIEWERS["same_type"]
DANA = VIEWERS["admin"]


async def post_everything(store: Store, session_id: str) -> list[Message]:
    """One message per visibility from zed, and a private one from bob."""
    messages = [
        await store.messages.add(
            session_id,
            sender="zed",
            sender_type="writer",
            visibility=visibility,
            content=f"{visibility} in {session_id}",
        )
        for visibility in ("public", "private", "agent_only", "admin_only")
    ]
    messages.append(
        await store.messages.add(
            session_id, sender=BOB.agent_id, content="bob's own", visibility="private"
        )
    )
    return messages


async def feed_of(store: Store, viewer: Viewer) -> list[Message]:
    return flatten(await all_pages(store.messages.feed, viewer=viewer))


def newest_first(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=message_key, reverse=True)


async def test_feed_holds_visible_messages_of_joined_sessions_only(store: Store) -> None:
    by_session: dict[str, list[Message]] = {}
    for name in ("f1", "f2", "f3"):
        await make_session(store, name)
        by_session[name] = await post_everything(store, name)
    # messages sent before joining belong to the feed too: membership is what counts
    await store.participants.join("f1", BOB.agent_id, agent_type=BOB.agent_type)
    await store.participants.join("f2", BOB.agent_id, agent_type=BOB.agent_type)
    by_session["f1"].append(await store.messages.add("f1", sender="zed", content="after join"))

    joined = by_session["f1"] + by_session["f2"]
    assert await feed_of(store, BOB) == newest_first(visible(BOB, joined))

    assert await store.participants.leave("f2", BOB.agent_id)
    assert await feed_of(store, BOB) == newest_first(visible(BOB, by_session["f1"]))


async def test_admins_see_every_visibility_but_only_in_sessions_they_joined(
    store: Store,
) -> None:
    by_session: dict[str, list[Message]] = {}
    for name in ("f1", "f2"):
        await make_session(store, name)
        by_session[name] = await post_everything(store, name)
    await store.participants.join("f2", DANA.agent_id, agent_type=DANA.agent_type)
    assert await feed_of(store, DANA) == newest_first(by_session["f2"])


async def test_a_viewer_who_joined_nothing_has_an_empty_feed(store: Store) -> None:
    await make_session(store, "f1")
    await post_everything(store, "f1")
    await store.participants.join("f1", "someone-else")
    page = await store.messages.feed(viewer=Viewer(agent_id="loner"))
    assert page.items == []
    assert page.next_cursor is None


async def test_feed_follows_the_agent_id_exactly(store: Store) -> None:
    await make_session(store, "f1")
    messages = await post_everything(store, "f1")
    await store.participants.join("f1", BOB.agent_id)
    for lookalike in ("BOB", "bob ", " bob", "bo"):
        assert await feed_of(store, Viewer(agent_id=lookalike, agent_type="writer")) == []
    assert await feed_of(store, BOB) == newest_first(visible(BOB, messages))
