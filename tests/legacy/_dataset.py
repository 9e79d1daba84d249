"""One dataset touching every table and value shape, and a snapshot of everything readable.

``populate`` writes through the public API of whichever backend it is given;
``snapshot`` reads everything back through the public API, so two backends
on the same file can be compared record by record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from contextstore import (
    AuditEvent,
    MemoryEntry,
    Message,
    NewMessage,
    Participant,
    Session,
    Store,
    Viewer,
)

ADMIN = Viewer(agent_id="root", agent_type="operator", is_admin=True)
VIEWERS = (
    ADMIN,
    Viewer(agent_id="alice", agent_type="writer"),
    Viewer(agent_id="bob", agent_type="reviewer"),
    Viewer(agent_id="carol", agent_type="writer"),
    Viewer(agent_id="eve"),
)
AGENTS = ("alice", "bob", "carol")
SEARCHES = ("roadmap", "Quarterly ROADMAP", "feedback", "ünïcode", "naive", "nothing-matches")

#: JSON values of every shape, including the ones that look like "absent".
VALUES: dict[str, Any] = {
    "null": None,
    "false": False,
    "zero": 0,
    "empty-text": "",
    "empty-list": [],
    "float": 2.5,
    "nested": {"a": [1, {"b": None}], "ü": "snow ☃"},
}


@dataclass
class Written:
    """Every record the writing backend returned."""

    sessions: list[Session] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    memory: list[MemoryEntry] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    participants: list[Participant] = field(default_factory=list)


async def populate(store: Store, tag: str = "a") -> Written:
    """Write one of everything; ``tag`` keeps ids apart when two backends both write."""
    out = Written()
    s1 = await store.sessions.create(
        purpose="planning ünïcode",
        created_by="alice",
        metadata={"nested": {"list": [1, 2.5, None, True]}, "text": "héllo ☃"},
        session_id=f"{tag}-s1",
    )
    s2 = await store.sessions.create(purpose="review", created_by="bob")
    s2 = await store.sessions.update(s2.id, is_active=False, metadata={"closed": True})
    out.sessions += [s1, s2]

    root = await store.messages.add(
        s1.id,
        sender="alice",
        sender_type="writer",
        content="Quarterly roadmap discussion, naïve draft",
        metadata={"k": "v", "n": [1, 2]},
    )
    out.messages.append(root)
    out.messages += await store.messages.add_many(
        s1.id,
        [
            NewMessage(
                sender="bob",
                sender_type="reviewer",
                content="private roadmap feedback",
                visibility="private",
                parent_message_id=root.id,
            ),
            NewMessage(
                sender="carol",
                sender_type="writer",
                content="feedback for writers only",
                visibility="agent_only",
                message_type="note",
            ),
            NewMessage(
                sender="alice",
                sender_type="writer",
                content="admins: roadmap budget",
                visibility="admin_only",
            ),
        ],
    )
    out.messages.append(
        await store.messages.add(s2.id, sender="bob", content="closing the review feedback")
    )

    for key, value in VALUES.items():
        out.memory.append(await store.memory.set("alice", key, value, metadata={"kind": key}))
    out.memory.append(await store.memory.set("alice", "ttl", "soon", ttl=timedelta(hours=1)))
    out.memory.append(await store.memory.set("alice", "scoped", [1, 2], session_id=s1.id))
    out.memory.append(await store.memory.set("bob", "scoped", {"x": 1}, session_id=s1.id))
    out.memory.append(
        await store.memory.set("alice", "ttl", "overwritten", ttl=3600, metadata={"v": 2})
    )

    out.audit.append(
        await store.audit.record(
            "session.created",
            agent_id="alice",
            session_id=s1.id,
            resource="session",
            action="create",
            result="ok",
            metadata={"ip": "10.0.0.1"},
        )
    )
    out.audit.append(await store.audit.record("login", agent_id="bob"))
    out.audit.append(await store.audit.record("login", agent_id="alice", session_id=s2.id))

    out.participants.append(await store.participants.join(s1.id, "alice", agent_type="writer"))
    out.participants.append(
        await store.participants.join(s1.id, "bob", agent_type="reviewer", role="owner")
    )
    out.participants.append(await store.participants.join(s2.id, "bob", agent_type="reviewer"))
    return out


async def _pages(fetch: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = await fetch(cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        assert len(items) < 10_000, "next_cursor never ends"
        cursor = page.next_cursor


async def snapshot(store: Store) -> dict[str, Any]:
    """Everything readable through the public API, small pages so cursors are exercised."""
    sessions = await _pages(lambda c: store.sessions.list(limit=1, cursor=c))
    state: dict[str, Any] = {
        "sessions": sessions,
        "inactive": await store.sessions.list(active=False),
        "by-alice": await store.sessions.list(created_by="alice"),
        "audit": await _pages(lambda c: store.audit.list(limit=2, cursor=c)),
        "audit-login": await store.audit.list(event_type="login"),
        "audit-alice": await store.audit.list(agent_id="alice"),
        "activity": {
            bucket: await store.audit.activity(bucket=bucket)
            for bucket in ("minute", "hour", "day")
        },
        "activity-since": await store.audit.activity(
            since=datetime.now(UTC) - timedelta(days=1), agent_id="alice"
        ),
    }
    for agent in AGENTS:
        state[f"memory:{agent}"] = await store.memory.list(agent)
        state[f"memory-prefix:{agent}"] = await store.memory.list(agent, prefix="e")
        state[f"sessions-for:{agent}"] = await store.participants.sessions_for(agent)
        for key in (*VALUES, "ttl", "missing"):
            state[f"memory-get:{agent}:{key}"] = await store.memory.get(agent, key)
    for viewer in VIEWERS:
        name = viewer.agent_id
        state[f"feed:{name}"] = await _pages(
            lambda c, v=viewer: store.messages.feed(viewer=v, limit=2, cursor=c)
        )
        for query in SEARCHES:
            state[f"search:{name}:{query}"] = await store.messages.search(query, viewer=viewer)
    for session in sessions:
        sid = session.id
        state[f"get:{sid}"] = await store.sessions.get(sid)
        state[f"session-activity:{sid}"] = await store.sessions.activity(sid, viewer=ADMIN)
        state[f"participants:{sid}"] = await store.participants.list(sid)
        for agent in AGENTS:
            state[f"memory:{agent}:{sid}"] = await store.memory.list(agent, session_id=sid)
        for viewer in VIEWERS:
            name = viewer.agent_id
            for order in ("asc", "desc"):
                state[f"messages:{sid}:{name}:{order}"] = await _pages(
                    lambda c, s=sid, v=viewer, o=order: store.messages.list(
                        s, viewer=v, limit=2, cursor=c, order=o
                    )
                )
            state[f"count:{sid}:{name}"] = await store.messages.count(sid, viewer=viewer)
            state[f"search:{sid}:{name}"] = await store.messages.search(
                "roadmap feedback", viewer=viewer, session_id=sid
            )
        for message in state[f"messages:{sid}:root:asc"]:
            for viewer in VIEWERS:
                key = f"message:{message.id}:{viewer.agent_id}"
                state[key] = await store.messages.get(message.id, viewer=viewer)
    return state
