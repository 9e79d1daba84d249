"""Small builders shared by the contract tests: sessions, messages, pages, snapshots.

Everything here goes through the public ``Store`` API only, so it runs
unchanged on every backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from contextstore import Message, NewMessage, Page, Session, Store, Viewer

T = TypeVar("T")

ADMIN = Viewer(agent_id="root-admin", agent_type="operator", is_admin=True)
"""Sees every message; used to read back what was written."""

#: the viewers of the visibility matrix. The messages of the matrix are sent by
#: "alice" (sender_type "writer") and "zed" (sender_type "writer", never a viewer).
VIEWERS: dict[str, Viewer] = {
    "sender": Viewer(agent_id="alice", agent_type="writer"),
    # the sender rule must not depend on agent_type
    "sender_as_other_type": Viewer(agent_id="alice", agent_type="reviewer"),
    "same_type": Viewer(agent_id="bob", agent_type="writer"),
    "other_type": Viewer(agent_id="carol", agent_type="reviewer"),
    "admin": Viewer(agent_id="dana", agent_type="reviewer", is_admin=True),
    "outsider": Viewer(agent_id="eve"),
    # ids and types are exact strings: no case folding, no trailing-space padding
    "sender_upper_case": Viewer(agent_id="ALICE", agent_type="WRITER"),
    "sender_padded": Viewer(agent_id="alice ", agent_type="writer "),
}

VISIBILITIES = ("public", "private", "agent_only", "admin_only")


async def make_session(
    store: Store,
    session_id: str | None = "s1",
    *,
    created_by: str = "creator",
    purpose: str = "contract testing",
    metadata: dict[str, Any] | None = None,
) -> Session:
    return await store.sessions.create(
        purpose=purpose, created_by=created_by, metadata=metadata, session_id=session_id
    )


def new_message(
    content: str = "hello there",
    *,
    sender: str = "alice",
    sender_type: str = "writer",
    visibility: str = "public",
    **fields: Any,
) -> NewMessage:
    return NewMessage(
        sender=sender, content=content, sender_type=sender_type, visibility=visibility, **fields
    )


async def add_messages(
    store: Store, session_id: str, count: int, *, prefix: str = "note"
) -> list[Message]:
    """``count`` public messages in one ``add_many`` (equal or near-equal timestamps)."""
    items = [new_message(f"{prefix} number {i}", sender=f"agent-{i % 3}") for i in range(count)]
    return await store.messages.add_many(session_id, items)


async def all_pages(
    listing: Callable[..., Awaitable[Page[T]]], *args: Any, **kwargs: Any
) -> list[Page[T]]:
    """Call ``listing(*args, cursor=..., **kwargs)`` from the first page to the last."""
    pages: list[Page[T]] = []
    cursor: str | None = None
    while True:
        page = await listing(*args, cursor=cursor, **kwargs)
        pages.append(page)
        if page.next_cursor is None:
            return pages
        assert len(pages) < 10_000, "next_cursor never ends"
        cursor = page.next_cursor


def flatten(pages: Iterable[Page[T]]) -> list[T]:
    return [item for page in pages for item in page.items]


@dataclass(frozen=True)
class Seeded:
    """One row of every kind, in session ``s1``, owned by ``agent-a``."""

    session: Session
    message: Message
    agents: tuple[str, ...] = ("agent-a", "alice")

    @property
    def session_id(self) -> str:
        return self.session.id


async def seed(store: Store) -> Seeded:
    session = await make_session(store, "s1", created_by="agent-a")
    message = await store.messages.add(
        session.id, sender="alice", content="the seeded message", sender_type="writer"
    )
    await store.memory.set("agent-a", "global-key", {"v": 1})
    await store.memory.set("agent-a", "session-key", [1, 2], session_id=session.id)
    await store.audit.record("seeded", agent_id="agent-a", session_id=session.id)
    await store.participants.join(session.id, "agent-a", agent_type="writer")
    return Seeded(session=session, message=message)


async def snapshot(store: Store, agents: Iterable[str] = ("agent-a", "alice")) -> dict[str, Any]:
    """Everything readable through the public API, to prove a call wrote nothing."""
    agents = tuple(agents)
    sessions = flatten(await all_pages(store.sessions.list, limit=1000))
    state: dict[str, Any] = {
        "sessions": sessions,
        "audit": flatten(await all_pages(store.audit.list, limit=1000)),
        "global_memory": {a: await store.memory.list(a, limit=1000) for a in agents},
    }
    for session in sessions:
        sid = session.id
        state[f"messages:{sid}"] = flatten(
            await all_pages(store.messages.list, sid, viewer=ADMIN, limit=1000)
        )
        state[f"count:{sid}"] = await store.messages.count(sid, viewer=ADMIN)
        state[f"participants:{sid}"] = await store.participants.list(sid)
        state[f"memory:{sid}"] = {
            a: await store.memory.list(a, session_id=sid, limit=1000) for a in agents
        }
    return state
