"""Errors speak the caller's terms, the same on every backend and dialect.

A write the database refuses (a foreign key to a missing session, a unique key
already taken) raises the typed error with contextstore's own message: never
the database's text, nor a table, constraint or schema name. The database's
error stays in ``__cause__``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from contextstore import (
    ConflictError,
    ContextStoreError,
    NewMessage,
    NotFoundError,
    Store,
)

from ._factories import make_session

pytestmark = pytest.mark.asyncio

MISSING = "nope"
NO_SESSION = f"session {MISSING!r} does not exist"

#: words of a database's own error text, or of the schema, that a message must not carry
FORBIDDEN = re.compile(
    r"messages|agent_memory|audit_log|session_participants|\bsessions\b|constraint|foreign"
    r"|\bfk_|\buq_|\bix_|violat|duplicate|unique|integrity|sqlite|asyncpg|pymysql|aiomysql"
    r"|sqlstate|errno|\b1452\b|\b1062\b|`|\binsert\b|\btable\b|\bkey\s*\(",
    re.IGNORECASE,
)

Call = Callable[[Any], Awaitable[Any]]

CASES: list[Any] = [
    pytest.param(
        lambda s: s.messages.add(MISSING, sender="a", content="hi"),
        NotFoundError,
        NO_SESSION,
        id="messages.add",
    ),
    pytest.param(
        lambda s: s.messages.add_many(
            MISSING, [NewMessage(sender="a", content=f"m{i}") for i in range(3)]
        ),
        NotFoundError,
        NO_SESSION,
        id="messages.add_many",
    ),
    pytest.param(
        lambda s: s.participants.join(MISSING, "a"),
        NotFoundError,
        NO_SESSION,
        id="participants.join",
    ),
    pytest.param(
        lambda s: s.memory.set("a", "k", {"v": 1}, session_id=MISSING),
        NotFoundError,
        NO_SESSION,
        id="memory.set",
    ),
    pytest.param(
        lambda s: s.memory.set("a", "k", 1, session_id=MISSING, overwrite=False),
        NotFoundError,
        NO_SESSION,
        id="memory.set overwrite=False",
    ),
    pytest.param(
        lambda s: s.audit.record("login", agent_id="a", session_id=MISSING),
        NotFoundError,
        NO_SESSION,
        id="audit.record",
    ),
    pytest.param(
        lambda s: s.sessions.update(MISSING, purpose="p"),
        NotFoundError,
        NO_SESSION,
        id="sessions.update",
    ),
    pytest.param(
        lambda s: s.sessions.create(purpose="p", created_by="a", session_id="taken"),
        ConflictError,
        "session 'taken' already exists",
        id="sessions.create taken",
    ),
    pytest.param(
        lambda s: s.memory.set("a", "live", 2, overwrite=False),
        ConflictError,
        "memory key 'live' of agent 'a' already exists (overwrite=False)",
        id="memory.set live key",
    ),
]


@pytest.mark.parametrize(("call", "kind", "message"), CASES)
async def test_a_refused_write_says_so_in_the_callers_terms(
    store: Store, call: Call, kind: type[ContextStoreError], message: str
) -> None:
    await make_session(store, "taken")
    await store.memory.set("a", "live", 1)
    with pytest.raises(kind) as caught:
        await call(store)
    error = caught.value
    assert type(error) is kind, type(error)  # the public type, not an internal one
    assert str(error) == message
    assert not FORBIDDEN.search(str(error)), str(error)
    assert not FORBIDDEN.search(repr(error.args)), repr(error.args)
