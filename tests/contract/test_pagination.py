"""Keyset pagination: every row exactly once, in order, and cursors that cannot lie.

Rows with equal timestamps cannot be forced through the public API; batches
from ``add_many`` usually share (or nearly share) a timestamp, which is where
an offset-free keyset on ``(timestamp, id)`` must neither skip nor repeat.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from contextstore import Message, Page, Store, ValidationError, Viewer

from ._factories import ADMIN, VIEWERS, add_messages, all_pages, flatten, make_session
from ._oracle import audit_key, message_key, session_key, visible

T = TypeVar("T")
SESSION = "pages"


def assert_pages_well_formed(pages: list[Page[T]], limit: int, total: int) -> None:
    """Full pages until the last; the last is not empty (unless there is nothing) and ends."""
    assert pages[-1].next_cursor is None
    assert all(page.next_cursor is not None for page in pages[:-1])
    assert all(len(page.items) == limit for page in pages[:-1])
    if total:
        assert 1 <= len(pages[-1].items) <= limit
    expected_pages = max(1, -(-total // limit))
    assert len(pages) == expected_pages


async def three_batches(store: Store) -> list[Message]:
    """32 messages: batches of 10 from add_many (tied timestamps) between single adds."""
    await make_session(store, SESSION)
    messages: list[Message] = []
    for batch in range(3):
        messages.append(await store.messages.add(SESSION, sender="solo", content=f"solo {batch}"))
        messages += await add_messages(store, SESSION, 10, prefix=f"batch {batch}")
    messages.append(await store.messages.add(SESSION, sender="solo", content="solo last"))
    return messages


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_message_pages_cover_every_row_once_in_keyset_order(store: Store, order: str) -> None:
    messages = await three_batches(store)
    expected = sorted(messages, key=message_key, reverse=order == "desc")
    for limit in (1, 7, 16, 32, 1000):
        pages = await all_pages(
            store.messages.list, SESSION, viewer=ADMIN, limit=limit, order=order
        )
        assert flatten(pages) == expected, f"limit={limit}"
        assert_pages_well_formed(pages, limit, len(messages))


async def test_add_many_batch_lists_in_input_order(store: Store) -> None:
    await make_session(store, SESSION)
    added = await add_messages(store, SESSION, 25)
    page = await store.messages.list(SESSION, viewer=ADMIN, limit=1000)
    assert page.items == added
    assert page.next_cursor is None


async def test_pages_of_a_restricted_viewer_hold_only_visible_rows(store: Store) -> None:
    await make_session(store, SESSION)
    messages = []
    for i in range(24):
        visibility = ("public", "private", "agent_only", "admin_only")[i % 4]
        messages.append(
            await store.messages.add(
                SESSION,
                sender=("alice", "zed")[i % 3 == 0],
                sender_type="writer",
                visibility=visibility,
                content=f"mixed {i}",
            )
        )
    for name in ("same_type", "outsider", "sender"):
        viewer = VIEWERS[name]
        expected = sorted(visible(viewer, messages), key=message_key)
        pages = await all_pages(store.messages.list, SESSION, viewer=viewer, limit=4)
        assert flatten(pages) == expected, name
        assert_pages_well_formed(pages, 4, len(expected))


async def test_sender_filter_pages(store: Store) -> None:
    messages = await three_batches(store)
    for sender in ("solo", "agent-1"):
        expected = sorted((m for m in messages if m.sender == sender), key=message_key)
        pages = await all_pages(store.messages.list, SESSION, viewer=ADMIN, limit=3, sender=sender)
        assert flatten(pages) == expected, sender
        assert_pages_well_formed(pages, 3, len(expected))


async def test_rows_added_while_paging_ascending_are_picked_up_once(store: Store) -> None:
    await make_session(store, SESSION)
    first = await add_messages(store, SESSION, 10)
    page = await store.messages.list(SESSION, viewer=ADMIN, limit=5)
    assert page.items == first[:5]
    later = await add_messages(store, SESSION, 3, prefix="later")
    seen, cursor = list(page.items), page.next_cursor
    while cursor is not None:
        page = await store.messages.list(SESSION, viewer=ADMIN, limit=5, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
    assert seen == first + later


async def test_empty_and_missing_sessions_list_as_one_empty_last_page(store: Store) -> None:
    await make_session(store, SESSION)
    for session_id in (SESSION, "no-such-session"):
        page = await store.messages.list(session_id, viewer=ADMIN)
        assert page.items == []
        assert page.next_cursor is None


async def test_session_pages_newest_first_with_filters(store: Store) -> None:
    sessions = []
    for i in range(12):
        sessions.append(
            await make_session(store, f"s{i:02d}", created_by=("ann", "ben", "cy")[i % 3])
        )
    for i in (1, 4, 7, 10):
        sessions[i] = await store.sessions.update(sessions[i].id, is_active=False)

    async def check(expected: list[Any], **filters: Any) -> None:
        expected = sorted(expected, key=session_key, reverse=True)
        pages = await all_pages(store.sessions.list, limit=5, **filters)
        assert flatten(pages) == expected, filters
        assert_pages_well_formed(pages, 5, len(expected))

    await check(sessions)
    await check([s for s in sessions if s.created_by == "ann"], created_by="ann")
    await check([s for s in sessions if not s.is_active], active=False)
    await check([s for s in sessions if s.is_active], active=True)
    await check(
        [s for s in sessions if s.is_active and s.created_by == "ben"],
        created_by="ben",
        active=True,
    )
    await check([], created_by="nobody")


async def test_audit_pages_newest_first_with_filters(store: Store) -> None:
    await make_session(store, "a1")
    events = []
    for i in range(14):
        events.append(
            await store.audit.record(
                ("read", "write")[i % 2],
                agent_id=("ann", "ben")[i % 3 == 0],
                session_id="a1" if i % 4 else None,
            )
        )

    async def check(expected: list[Any], **filters: Any) -> None:
        expected = sorted(expected, key=audit_key, reverse=True)
        pages = await all_pages(store.audit.list, limit=5, **filters)
        assert flatten(pages) == expected, filters
        assert_pages_well_formed(pages, 5, len(expected))

    await check(events)
    await check([e for e in events if e.agent_id == "ben"], agent_id="ben")
    await check([e for e in events if e.event_type == "write"], event_type="write")
    await check([e for e in events if e.session_id == "a1"], session_id="a1")
    await check(
        [e for e in events if e.agent_id == "ann" and e.event_type == "read"],
        agent_id="ann",
        event_type="read",
    )


async def test_feed_pages_newest_first_across_joined_sessions(store: Store) -> None:
    viewer = VIEWERS["same_type"]
    messages = []
    for name in ("f1", "f2", "f3"):
        await make_session(store, name)
        await store.participants.join(name, viewer.agent_id, agent_type=viewer.agent_type)
        messages += await add_messages(store, name, 6, prefix=name)
        messages.append(
            await store.messages.add(name, sender="zed", content="hidden", visibility="private")
        )
    await make_session(store, "not-joined")
    await add_messages(store, "not-joined", 5)
    expected = sorted(visible(viewer, messages), key=message_key, reverse=True)
    for limit in (1, 4, 18):
        pages = await all_pages(store.messages.feed, viewer=viewer, limit=limit)
        assert flatten(pages) == expected, f"limit={limit}"
        assert_pages_well_formed(pages, limit, len(expected))


# --- cursors -----------------------------------------------------------------------------

Listing = Callable[[Store, str | None], Awaitable[Page[Any]]]


def list_p1(order: str = "asc") -> Listing:
    return lambda s, c: s.messages.list("p1", viewer=ADMIN, limit=2, cursor=c, order=order)


async def cursor_of(store: Store, listing: Listing) -> str:
    page = await listing(store, None)
    assert page.next_cursor is not None
    return page.next_cursor


def tamper(cursor: str) -> str:
    """Change one character in the middle (each carries 6 whole bits of the token)."""
    i = len(cursor) // 2
    return cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1 :]


async def five_of_everything(store: Store) -> None:
    for name in ("p1", "p2"):
        await make_session(store, name, created_by="maker")
        await add_messages(store, name, 5)
        await store.participants.join(name, "feeder")
    for _ in range(5):
        await store.audit.record("poke", agent_id="auditor")


#: (how the cursor is obtained, the listing it is then given to)
FOREIGN: dict[str, tuple[Listing, Listing]] = {
    "tampered": (list_p1(), list_p1()),
    "other session": (
        lambda s, c: s.messages.list("p2", viewer=ADMIN, limit=2, cursor=c),
        list_p1(),
    ),
    "other order": (list_p1("desc"), list_p1("asc")),
    "audit cursor for messages": (lambda s, c: s.audit.list(limit=2, cursor=c), list_p1()),
    "sessions cursor for messages": (lambda s, c: s.sessions.list(limit=1, cursor=c), list_p1()),
    "messages cursor for sessions": (list_p1(), lambda s, c: s.sessions.list(limit=1, cursor=c)),
    "messages cursor for audit": (list_p1(), lambda s, c: s.audit.list(limit=2, cursor=c)),
    "messages cursor for feed": (
        list_p1(),
        lambda s, c: s.messages.feed(viewer=Viewer(agent_id="feeder"), limit=2, cursor=c),
    ),
    "feed cursor for messages": (
        lambda s, c: s.messages.feed(viewer=Viewer(agent_id="feeder"), limit=2, cursor=c),
        list_p1(),
    ),
    "sessions cursor with other filters": (
        lambda s, c: s.sessions.list(created_by="maker", limit=1, cursor=c),
        lambda s, c: s.sessions.list(limit=1, cursor=c),
    ),
    "audit cursor with other filters": (
        lambda s, c: s.audit.list(agent_id="auditor", limit=2, cursor=c),
        lambda s, c: s.audit.list(event_type="poke", limit=2, cursor=c),
    ),
}


@pytest.mark.parametrize("case", list(FOREIGN))
async def test_a_foreign_or_tampered_cursor_is_a_validation_error(store: Store, case: str) -> None:
    await five_of_everything(store)
    source, target = FOREIGN[case]
    cursor = await cursor_of(store, source)
    if case == "tampered":
        cursor = tamper(cursor)
    with pytest.raises(ValidationError, match="cursor"):
        await target(store, cursor)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


GARBAGE = [
    "",
    "garbage",
    "null",
    "=====",
    "🙂",
    "a" * 5000,
    "'; DROP TABLE messages; --",
    _b64(b'[1, "messages", "p1", "2024-01-01T00:00:00+00:00", 1]'),
    _b64(json.dumps({"timestamp": "2024-01-01T00:00:00+00:00", "id": 1}).encode()),
    _b64(b"\xff\xfe\x00binary|0000000000000000"),
]

LISTINGS: dict[str, Listing] = {
    "messages.list": list_p1(),
    "messages.feed": lambda s, c: s.messages.feed(viewer=Viewer(agent_id="feeder"), cursor=c),
    "sessions.list": lambda s, c: s.sessions.list(cursor=c),
    "audit.list": lambda s, c: s.audit.list(cursor=c),
}


@pytest.mark.parametrize("listing", list(LISTINGS))
async def test_garbage_cursors_are_validation_errors_everywhere(store: Store, listing: str) -> None:
    await five_of_everything(store)
    for garbage in GARBAGE:
        with pytest.raises(ValidationError, match="cursor"):
            await LISTINGS[listing](store, garbage)
