"""Visibility: every read path shows a viewer exactly what the oracle says.

The matrix is viewers (sender, same agent_type, other agent_type, admin,
outsider, and look-alikes of the sender) x the four visibilities x the read
paths get, list, count, search and feed. Each test compares the whole
answer for every viewer at once, so a failure shows the full matrix diff.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from contextstore import Message, Store, Viewer

from ._factories import ADMIN, VIEWERS, VISIBILITIES, all_pages, flatten, make_session
from ._oracle import can_see, contains_word, message_key, visible

WORD = "axolotl"
SESSION = "vis"
#: (sender, sender_type) of the matrix messages: one per visibility each.
SENDERS = (("alice", "writer"), ("zed", "writer"), ("carol", "reviewer"))


async def build_matrix(store: Store, *, join_viewers: bool) -> list[Message]:
    """Every sender posts one message per visibility, plus public messages without WORD."""
    await make_session(store, SESSION)
    messages = []
    for sender, sender_type in SENDERS:
        for visibility in VISIBILITIES:
            messages.append(
                await store.messages.add(
                    SESSION,
                    sender=sender,
                    sender_type=sender_type,
                    visibility=visibility,
                    content=f"{WORD} sent by {sender} as {visibility}",
                )
            )
    # so WORD is not in every row (full-text engines weigh rare words)
    for i in range(4):
        messages.append(
            await store.messages.add(SESSION, sender="filler", content=f"unrelated pangolin {i}")
        )
    if join_viewers:
        for viewer in VIEWERS.values():
            await store.participants.join(SESSION, viewer.agent_id, agent_type=viewer.agent_type)
    return messages


async def seen_by_get(store: Store, viewer: Viewer, messages: list[Message]) -> object:
    seen = []
    for message in messages:
        got = await store.messages.get(message.id, viewer=viewer)
        if got is not None:
            assert got == message
            seen.append(got.id)
    return seen


async def seen_by_list(store: Store, viewer: Viewer, messages: list[Message]) -> object:
    pages = await all_pages(store.messages.list, SESSION, viewer=viewer, limit=1000)
    return [m.id for m in flatten(pages)]


async def seen_by_count(store: Store, viewer: Viewer, messages: list[Message]) -> object:
    return await store.messages.count(SESSION, viewer=viewer)


async def seen_by_search(store: Store, viewer: Viewer, messages: list[Message]) -> object:
    hits = await store.messages.search(WORD, viewer=viewer, limit=1000)
    return sorted(hit.message.id for hit in hits)


async def seen_by_feed(store: Store, viewer: Viewer, messages: list[Message]) -> object:
    pages = await all_pages(store.messages.feed, viewer=viewer, limit=1000)
    return [m.id for m in flatten(pages)]


def expected_ids(viewer: Viewer, messages: list[Message]) -> object:
    return [m.id for m in sorted(visible(viewer, messages), key=message_key)]


def expected_count(viewer: Viewer, messages: list[Message]) -> object:
    return len(visible(viewer, messages))


def expected_search(viewer: Viewer, messages: list[Message]) -> object:
    return sorted(m.id for m in visible(viewer, messages) if contains_word(m.content, WORD))


def expected_feed(viewer: Viewer, messages: list[Message]) -> object:
    return [m.id for m in sorted(visible(viewer, messages), key=message_key, reverse=True)]


Seen = Callable[[Store, Viewer, list[Message]], Awaitable[object]]
Expected = Callable[[Viewer, list[Message]], object]

READ_PATHS: dict[str, tuple[Seen, Expected]] = {
    "get": (seen_by_get, expected_ids),
    "list": (seen_by_list, expected_ids),
    "count": (seen_by_count, expected_count),
    "search": (seen_by_search, expected_search),
    "feed": (seen_by_feed, expected_feed),
}


@pytest.mark.parametrize("path", list(READ_PATHS))
async def test_each_read_path_shows_each_viewer_what_the_oracle_allows(
    store: Store, path: str
) -> None:
    messages = await build_matrix(store, join_viewers=path == "feed")
    seen_fn, expected_fn = READ_PATHS[path]
    seen = {name: await seen_fn(store, viewer, messages) for name, viewer in VIEWERS.items()}
    expected = {name: expected_fn(viewer, messages) for name, viewer in VIEWERS.items()}
    assert seen == expected


async def test_an_invisible_message_is_indistinguishable_from_a_missing_one(
    store: Store,
) -> None:
    await make_session(store, SESSION)
    secret = await store.messages.add(
        SESSION, sender="alice", content="for my eyes", visibility="private"
    )
    outsider = VIEWERS["outsider"]
    assert await store.messages.get(secret.id, viewer=outsider) is None
    assert await store.messages.get(secret.id + 1000, viewer=outsider) is None
    assert await store.messages.get(secret.id, viewer=ADMIN) == secret


def test_the_oracle_restates_the_design_table() -> None:
    """The oracle itself, against the visibility rules of DESIGN.md written out by hand."""
    allowed = {
        "public": {name for name in VIEWERS},
        "private": {"sender", "sender_as_other_type", "admin"},
        "agent_only": {"sender", "sender_as_other_type", "same_type", "admin"},
        "admin_only": {"sender", "sender_as_other_type", "admin"},
    }
    for visibility, names in allowed.items():
        message = Message(
            id=1,
            session_id=SESSION,
            sender="alice",
            sender_type="writer",
            content="x",
            visibility=visibility,
            message_type="agent_response",
            timestamp=datetime.now(UTC),
        )
        assert {n for n, v in VIEWERS.items() if can_see(v, message)} == names, visibility
