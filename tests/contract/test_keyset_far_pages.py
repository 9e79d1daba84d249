"""Far keyset pages: the same rows as one full ordered scan, ties on the timestamp included.

``add_many`` gives every row of a batch the same timestamp, so a session of
large batches holds long runs of equal timestamps, and most page boundaries
fall inside such a run: there only the id decides what comes after the cursor.
The keyset predicate is written so that the time bound is an index bound
(``t >= :t AND (t > :t OR id > :id)``); these tests pin that it still means
"strictly after (t, id)" in both directions.
"""

from __future__ import annotations

import pytest

from contextstore import Message, Store, Viewer

from ._factories import ADMIN, add_messages, all_pages, flatten, make_session, new_message
from ._oracle import message_key, visible

SESSION = "far"
BATCH = 60


async def tied_session(store: Store, session_id: str = SESSION) -> list[Message]:
    """Three batches of 60 equal-timestamp rows, with single rows around them."""
    await make_session(store, session_id)
    rows: list[Message] = []
    for batch in range(3):
        rows.append(await store.messages.add(session_id, sender="solo", content=f"solo {batch}"))
        rows += await add_messages(store, session_id, BATCH, prefix=f"{session_id} {batch}")
    rows.append(await store.messages.add(session_id, sender="solo", content="solo last"))
    return rows


def assert_has_ties(rows: list[Message]) -> None:
    times = [row.timestamp for row in rows]
    assert len(set(times)) <= len(times) - BATCH, "the batches should share timestamps"


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_far_pages_match_a_full_ordered_scan(store: Store, order: str) -> None:
    rows = await tied_session(store)
    assert_has_ties(rows)
    expected = sorted(rows, key=message_key, reverse=order == "desc")
    # one scan of everything, then page sizes that put boundaries inside the ties
    full = await store.messages.list(SESSION, viewer=ADMIN, limit=1000, order=order)
    assert full.items == expected
    assert full.next_cursor is None
    for limit in (1, 7, 13):
        pages = await all_pages(
            store.messages.list, SESSION, viewer=ADMIN, limit=limit, order=order
        )
        assert flatten(pages) == expected, f"limit={limit}"
        assert len(pages) == -(-len(expected) // limit)


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_page_resumed_far_in_holds_the_next_rows_of_the_scan(
    store: Store, order: str
) -> None:
    rows = await tied_session(store)
    expected = sorted(rows, key=message_key, reverse=order == "desc")
    cursor: str | None = None
    seen = 0
    # walk to a boundary in the middle of the second batch, then take one page
    while seen < BATCH + BATCH // 2:
        page = await store.messages.list(SESSION, viewer=ADMIN, limit=9, order=order, cursor=cursor)
        seen += len(page.items)
        cursor = page.next_cursor
    assert cursor is not None
    far = await store.messages.list(SESSION, viewer=ADMIN, limit=9, order=order, cursor=cursor)
    assert far.items == expected[seen : seen + 9]
    assert far.items[0].timestamp == expected[seen - 1].timestamp  # resumed inside a tie


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_far_pages_of_a_restricted_viewer_match_the_visible_scan(
    store: Store, order: str
) -> None:
    await make_session(store, SESSION)
    items = [
        new_message(f"mixed {i}", sender=("alice", "bob", "zed")[i % 3], visibility=vis)
        for i, vis in enumerate(["public", "private", "agent_only", "admin_only"] * 30)
    ]
    rows = await store.messages.add_many(SESSION, items)
    viewer = Viewer(agent_id="bob", agent_type="writer")
    expected = sorted(visible(viewer, rows), key=message_key, reverse=order == "desc")
    assert 0 < len(expected) < len(rows)
    pages = await all_pages(store.messages.list, SESSION, viewer=viewer, limit=4, order=order)
    assert flatten(pages) == expected


async def test_far_feed_pages_match_a_full_ordered_scan(store: Store) -> None:
    rows = await tied_session(store, "feed-a") + await tied_session(store, "feed-b")
    for session_id in ("feed-a", "feed-b"):
        await store.participants.join(session_id, ADMIN.agent_id)
    expected = sorted(rows, key=message_key, reverse=True)
    pages = await all_pages(store.messages.feed, viewer=ADMIN, limit=11)
    assert flatten(pages) == expected
