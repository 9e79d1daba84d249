"""Missing things and taken keys: NotFoundError and ConflictError, with nothing written.

Every error is a ``ContextStoreError``; no driver or SQLAlchemy exception
crosses the public API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contextstore import ConflictError, ContextStoreError, NotFoundError, Store

from ._factories import ADMIN, Seeded, new_message, seed, snapshot

Call = Callable[[Store, Seeded], Awaitable[Any]]

MISSING = "no-such-session"

CASES: list[Any] = [
    pytest.param(
        lambda s, c: s.sessions.update(MISSING, purpose="x"), NotFoundError, id="update missing"
    ),
    pytest.param(
        lambda s, c: s.sessions.update(MISSING), NotFoundError, id="empty update of missing"
    ),
    pytest.param(
        lambda s, c: s.sessions.activity(MISSING, viewer=ADMIN),
        NotFoundError,
        id="activity missing",
    ),
    pytest.param(
        lambda s, c: s.messages.add(MISSING, sender="a", content="x"),
        NotFoundError,
        id="add to missing session",
    ),
    pytest.param(
        lambda s, c: s.messages.add_many(MISSING, [new_message("x")]),
        NotFoundError,
        id="add_many to missing session",
    ),
    pytest.param(
        lambda s, c: s.messages.add(
            c.session_id, sender="a", content="x", parent_message_id=c.message.id + 1000
        ),
        NotFoundError,
        id="missing parent",
    ),
    pytest.param(
        lambda s, c: s.memory.set("agent-a", "k", 1, session_id=MISSING),
        NotFoundError,
        id="memory in missing session",
    ),
    pytest.param(
        lambda s, c: s.audit.record("x", agent_id="agent-a", session_id=MISSING),
        NotFoundError,
        id="audit of missing session",
    ),
    pytest.param(
        lambda s, c: s.participants.join(MISSING, "agent-a"),
        NotFoundError,
        id="join missing session",
    ),
    pytest.param(
        lambda s, c: s.sessions.create(purpose="p", created_by="x", session_id=c.session_id),
        ConflictError,
        id="duplicate session id",
    ),
    pytest.param(
        lambda s, c: s.memory.set("agent-a", "global-key", "new", overwrite=False),
        ConflictError,
        id="live global key, overwrite=False",
    ),
    pytest.param(
        lambda s, c: s.memory.set(
            "agent-a", "session-key", "new", session_id=c.session_id, overwrite=False
        ),
        ConflictError,
        id="live session key, overwrite=False",
    ),
]


@pytest.mark.parametrize(("call", "error"), CASES)
async def test_error_is_raised_and_nothing_is_written(
    store: Store, call: Call, error: type[ContextStoreError]
) -> None:
    seeded = await seed(store)
    before = await snapshot(store)
    with pytest.raises(error) as raised:
        await call(store, seeded)
    assert isinstance(raised.value, ContextStoreError)
    if error is NotFoundError:
        assert isinstance(raised.value, LookupError)
    assert await snapshot(store) == before
