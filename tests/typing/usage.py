"""Typed use of the public API, checked by mypy (``test_usage.py``), never run.

The deliberate mistakes carry ``# type: ignore[arg-type]``: mypy runs with
``--warn-unused-ignores``, so a wrong literal it stops flagging (a parameter
widened back to ``str``) makes that ignore unused, an error.
"""

from __future__ import annotations

from contextstore import NewMessage, Store, Viewer
from contextstore.models import BUCKETS, ORDERS, VISIBILITIES, Bucket, Order, Visibility


async def correct(store: Store, session_id: str, viewer: Viewer) -> None:
    everyone: Visibility = "agent_only"
    await store.messages.add(session_id, sender="a", content="hi", visibility="private")
    await store.messages.add(session_id, sender="a", content="hi", visibility=everyone)
    await store.messages.add_many(session_id, [NewMessage(sender="a", content="x")])
    await store.messages.add_many(
        session_id, [NewMessage(sender="a", content="x", visibility="admin_only")]
    )
    newest: Order = "desc"
    await store.messages.list(session_id, viewer=viewer, order="asc")
    await store.messages.list(session_id, viewer=viewer, order=newest)
    width: Bucket = "day"
    await store.audit.activity(bucket="minute")
    await store.audit.activity(bucket=width)
    assert (VISIBILITIES, ORDERS, BUCKETS) != ((), (), ())


async def wrong(store: Store, s: str, viewer: Viewer, text: str) -> None:
    add, page, activity = store.messages.add, store.messages.list, store.audit.activity
    await add(s, sender="a", content="x", visibility="secret")  # type: ignore[arg-type]
    await add(s, sender="a", content="x", visibility=text)  # type: ignore[arg-type]
    NewMessage(sender="a", content="x", visibility="everyone")  # type: ignore[arg-type]
    await page(s, viewer=viewer, order="DESC")  # type: ignore[arg-type]
    await page(s, viewer=viewer, order=text)  # type: ignore[arg-type]
    await activity(bucket="week")  # type: ignore[arg-type]
