"""Input limits: every bad input of DESIGN.md is a ValidationError naming the field, and
nothing is written — identically on every backend (both share ``_validate``).

The table holds (call, message fragments); each call runs against a store
seeded with one row of every kind, and a snapshot of everything readable
must be the same afterwards. The limits themselves are accepted (last tests).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from contextstore import Store, ValidationError, Viewer

from ._factories import ADMIN, Seeded, make_session, new_message, seed, snapshot

Call = Callable[[Store, Seeded], Awaitable[Any]]

LONG_ID = "x" * 256
NUL = "a\x00b"
BLANK = "must not be empty or blank"
TOO_LONG = "at most 255"
HAS_NUL = "NUL"
NAIVE = datetime(2024, 1, 1, 12, 0)
BIG_METADATA = {"k": "x" * (64 * 1024)}


def wrong(value: Any) -> Any:
    """A value of the wrong type, on purpose (keeps the type checker quiet)."""
    return value


def case(label: str, call: Call, *fragments: str) -> Any:
    return pytest.param(call, fragments, id=label)


def viewer(**fields: Any) -> Viewer:
    return Viewer(**{"agent_id": "viewer", **fields})


def create(**fields: Any) -> Call:
    values = {"purpose": "p", "created_by": "agent-a", **fields}
    return lambda s, c: s.sessions.create(**values)


def add(session_id: str | None = None, **fields: Any) -> Call:
    values = {"sender": "alice", "content": "hi", **fields}
    return lambda s, c: s.messages.add(c.session_id if session_id is None else session_id, **values)


def remember(agent_id: str = "agent-a", key: str = "k", value: Any = 1, **fields: Any) -> Call:
    return lambda s, c: s.memory.set(agent_id, key, value, **fields)


def record(event_type: str = "evt", **fields: Any) -> Call:
    return lambda s, c: s.audit.record(event_type, **{"agent_id": "agent-a", **fields})


def join(session_id: str | None = None, agent_id: str = "newcomer", **fields: Any) -> Call:
    return lambda s, c: s.participants.join(
        c.session_id if session_id is None else session_id, agent_id, **fields
    )


BAD_INPUTS = [
    # sessions.create
    case("create session_id empty", create(session_id=""), "session_id", BLANK),
    case("create session_id blank", create(session_id="  \t "), "session_id", BLANK),
    case("create session_id 256", create(session_id=LONG_ID), "session_id", TOO_LONG),
    case("create session_id NUL", create(session_id=NUL), "session_id", HAS_NUL),
    case("create purpose empty", create(purpose=""), "purpose", BLANK),
    case("create purpose NUL", create(purpose=NUL), "purpose", HAS_NUL),
    case("create created_by 256", create(created_by=LONG_ID), "created_by", TOO_LONG),
    case("create created_by blank", create(created_by="\n"), "created_by", BLANK),
    case("create metadata list", create(metadata=[]), "metadata", "object"),
    case("create metadata str", create(metadata="{}"), "metadata", "object"),
    case("create metadata > 64 KiB", create(metadata=BIG_METADATA), "metadata", "65536"),
    case("create metadata int key", create(metadata={1: "x"}), "metadata", "keys"),
    case("create metadata NaN", create(metadata={"f": float("nan")}), "metadata", "JSON"),
    case("create metadata object", create(metadata={"o": object()}), "metadata", "JSON"),
    case("create metadata NUL", create(metadata={"v": NUL}), "metadata", HAS_NUL),
    case("create metadata NUL key", create(metadata={NUL: 1}), "metadata", HAS_NUL),
    # sessions: reads and updates
    case("get session_id empty", lambda s, c: s.sessions.get(""), "session_id", BLANK),
    case("get session_id 256", lambda s, c: s.sessions.get(LONG_ID), "session_id", TOO_LONG),
    case("sessions.list limit 0", lambda s, c: s.sessions.list(limit=0), "limit", "between"),
    case("sessions.list limit 1001", lambda s, c: s.sessions.list(limit=1001), "limit", "between"),
    case("sessions.list limit True", lambda s, c: s.sessions.list(limit=True), "limit", "integer"),
    case(
        "sessions.list limit str",
        lambda s, c: s.sessions.list(limit=wrong("10")),
        "limit",
        "integer",
    ),
    case("sessions.list active str", lambda s, c: s.sessions.list(active=wrong("yes")), "active"),
    case(
        "sessions.list created_by empty",
        lambda s, c: s.sessions.list(created_by=""),
        "created_by",
        BLANK,
    ),
    case("sessions.list cursor garbage", lambda s, c: s.sessions.list(cursor="garbage"), "cursor"),
    case(
        "update purpose empty",
        lambda s, c: s.sessions.update(c.session_id, purpose=""),
        "purpose",
        BLANK,
    ),
    case(
        "update is_active str",
        lambda s, c: s.sessions.update(c.session_id, is_active=wrong("no")),
        "is_active",
    ),
    case(
        "update metadata list",
        lambda s, c: s.sessions.update(c.session_id, metadata=wrong([1])),
        "metadata",
        "object",
    ),
    case(
        "update metadata > 64 KiB",
        lambda s, c: s.sessions.update(c.session_id, metadata=BIG_METADATA),
        "metadata",
        "65536",
    ),
    case("delete session_id empty", lambda s, c: s.sessions.delete(""), "session_id", BLANK),
    case(
        "activity session_id 256",
        lambda s, c: s.sessions.activity(LONG_ID, viewer=viewer()),
        "session_id",
        TOO_LONG,
    ),
    # messages.add / add_many
    case("add session_id empty", add(session_id=""), "session_id", BLANK),
    case("add sender empty", add(sender=""), "sender", BLANK),
    case("add sender 256", add(sender=LONG_ID), "sender", TOO_LONG),
    case("add sender NUL", add(sender=NUL), "sender", HAS_NUL),
    case("add content empty", add(content=""), "content", BLANK),
    case("add content blank", add(content=" \n\t "), "content", BLANK),
    case("add content 100001", add(content="x" * 100_001), "content", "at most 100000"),
    case("add content NUL", add(content=NUL), "content", HAS_NUL),
    case("add visibility unknown", add(visibility="secret"), "visibility", "must be one of"),
    case("add visibility upper case", add(visibility="PUBLIC"), "visibility", "must be one of"),
    case("add sender_type empty", add(sender_type=""), "sender_type", BLANK),
    case("add message_type 256", add(message_type=LONG_ID), "message_type", TOO_LONG),
    case("add metadata > 64 KiB", add(metadata=BIG_METADATA), "metadata", "65536"),
    case("add metadata list", add(metadata=["x"]), "metadata", "object"),
    case("add parent 0", add(parent_message_id=0), "parent_message_id"),
    case("add parent negative", add(parent_message_id=-5), "parent_message_id"),
    case("add parent str", add(parent_message_id="1"), "parent_message_id"),
    case(
        "add_many one empty content",
        lambda s, c: s.messages.add_many(c.session_id, [new_message("fine"), new_message("")]),
        "content",
        BLANK,
    ),
    case(
        "add_many one unknown visibility",
        lambda s, c: s.messages.add_many(
            c.session_id, [new_message("fine"), new_message("x", visibility="secret")]
        ),
        "visibility",
        "must be one of",
    ),
    # messages: reads
    case("get id 0", lambda s, c: s.messages.get(0, viewer=ADMIN), "message_id"),
    case("get id 2**63", lambda s, c: s.messages.get(2**63, viewer=ADMIN), "message_id"),
    case("get id True", lambda s, c: s.messages.get(True, viewer=ADMIN), "message_id"),
    case("get id str", lambda s, c: s.messages.get(wrong("1"), viewer=ADMIN), "message_id"),
    case(
        "viewer agent_id empty",
        lambda s, c: s.messages.get(c.message.id, viewer=viewer(agent_id="")),
        "agent_id",
    ),
    case(
        "viewer agent_id 256",
        lambda s, c: s.messages.count(c.session_id, viewer=viewer(agent_id=LONG_ID)),
        "agent_id",
    ),
    case(
        "viewer agent_type empty",
        lambda s, c: s.messages.feed(viewer=viewer(agent_type="")),
        "agent_type",
    ),
    case(
        "messages.list limit 0",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, limit=0),
        "limit",
        "between",
    ),
    case(
        "messages.list limit 1001",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, limit=1001),
        "limit",
        "between",
    ),
    case(
        "messages.list order",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, order="up"),  # type: ignore[arg-type]
        "order",
    ),
    case(
        "messages.list order upper case",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, order="DESC"),  # type: ignore[arg-type]
        "order",
    ),
    case(
        "messages.list sender empty",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, sender=""),
        "sender",
        BLANK,
    ),
    case(
        "messages.list session_id 256",
        lambda s, c: s.messages.list(LONG_ID, viewer=ADMIN),
        "session_id",
        TOO_LONG,
    ),
    case(
        "messages.list cursor garbage",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, cursor="garbage"),
        "cursor",
    ),
    case(
        "messages.list cursor not str",
        lambda s, c: s.messages.list(c.session_id, viewer=ADMIN, cursor=wrong(123)),
        "cursor",
    ),
    case(
        "count session_id empty",
        lambda s, c: s.messages.count("", viewer=ADMIN),
        "session_id",
        BLANK,
    ),
    case("search query empty", lambda s, c: s.messages.search("", viewer=ADMIN), "query", BLANK),
    case("search query blank", lambda s, c: s.messages.search("   ", viewer=ADMIN), "query", BLANK),
    case(
        "search query 1001",
        lambda s, c: s.messages.search("x" * 1001, viewer=ADMIN),
        "query",
        "at most 1000",
    ),
    case("search query NUL", lambda s, c: s.messages.search(NUL, viewer=ADMIN), "query", HAS_NUL),
    case(
        "search limit 0",
        lambda s, c: s.messages.search("seeded", viewer=ADMIN, limit=0),
        "limit",
        "between",
    ),
    case(
        "search limit 1001",
        lambda s, c: s.messages.search("seeded", viewer=ADMIN, limit=1001),
        "limit",
        "between",
    ),
    case(
        "search session_id empty",
        lambda s, c: s.messages.search("seeded", viewer=ADMIN, session_id=""),
        "session_id",
        BLANK,
    ),
    case("feed limit 0", lambda s, c: s.messages.feed(viewer=ADMIN, limit=0), "limit", "between"),
    case(
        "feed limit True",
        lambda s, c: s.messages.feed(viewer=ADMIN, limit=True),
        "limit",
        "integer",
    ),
    case(
        "feed cursor garbage",
        lambda s, c: s.messages.feed(viewer=ADMIN, cursor="garbage"),
        "cursor",
    ),
    # memory
    case("memory agent_id empty", remember(agent_id=""), "agent_id", BLANK),
    case("memory key empty", remember(key=""), "key", BLANK),
    case("memory key 256", remember(key=LONG_ID), "key", TOO_LONG),
    case("memory key NUL", remember(key=NUL), "key", HAS_NUL),
    case("memory value object", remember(value=object()), "value", "JSON"),
    case("memory value NaN", remember(value=float("nan")), "value", "JSON"),
    case("memory value NUL", remember(value={"v": NUL}), "value", HAS_NUL),
    case("memory value > 1 MiB", remember(value="x" * (1024 * 1024)), "value", "at most"),
    case("memory ttl 0", remember(ttl=0), "ttl", "between"),
    case("memory ttl negative", remember(ttl=-1), "ttl", "between"),
    case("memory ttl half a second", remember(ttl=0.5), "ttl", "between"),
    case("memory ttl 367 days", remember(ttl=timedelta(days=367)), "ttl", "between"),
    case("memory ttl 10**9 s", remember(ttl=10**9), "ttl", "between"),
    case("memory ttl infinite", remember(ttl=float("inf")), "ttl", "between"),
    case("memory ttl str", remember(ttl="60"), "ttl"),
    case("memory ttl True", remember(ttl=True), "ttl"),
    case("memory metadata list", remember(metadata=[]), "metadata", "object"),
    case("memory metadata > 64 KiB", remember(metadata=BIG_METADATA), "metadata", "65536"),
    case("memory session_id empty", remember(session_id=""), "session_id", BLANK),
    case("memory.get key empty", lambda s, c: s.memory.get("agent-a", ""), "key", BLANK),
    case("memory.get agent_id 256", lambda s, c: s.memory.get(LONG_ID, "k"), "agent_id", TOO_LONG),
    case("memory.list limit 0", lambda s, c: s.memory.list("agent-a", limit=0), "limit", "between"),
    case(
        "memory.list limit 1001",
        lambda s, c: s.memory.list("agent-a", limit=1001),
        "limit",
        "between",
    ),
    case(
        "memory.list prefix NUL",
        lambda s, c: s.memory.list("agent-a", prefix=NUL),
        "prefix",
        HAS_NUL,
    ),
    case("memory.delete key empty", lambda s, c: s.memory.delete("agent-a", ""), "key", BLANK),
    # audit
    case("audit event_type empty", record(event_type=""), "event_type", BLANK),
    case("audit agent_id 256", record(agent_id=LONG_ID), "agent_id", TOO_LONG),
    case("audit resource empty", record(resource=""), "resource", BLANK),
    case("audit action NUL", record(action=NUL), "action", HAS_NUL),
    case("audit result 256", record(result=LONG_ID), "result", TOO_LONG),
    case("audit metadata > 64 KiB", record(metadata=BIG_METADATA), "metadata", "65536"),
    case("audit session_id empty", record(session_id=""), "session_id", BLANK),
    case("audit.list since naive", lambda s, c: s.audit.list(since=NAIVE), "since", "naive"),
    case("audit.list until naive", lambda s, c: s.audit.list(until=NAIVE), "until", "naive"),
    case(
        "audit.list since str",
        lambda s, c: s.audit.list(since=wrong("2024-01-01T00:00:00Z")),
        "since",
    ),
    case("audit.list limit 1001", lambda s, c: s.audit.list(limit=1001), "limit", "between"),
    case("audit.list agent_id empty", lambda s, c: s.audit.list(agent_id=""), "agent_id", BLANK),
    case("audit.list cursor garbage", lambda s, c: s.audit.list(cursor="garbage"), "cursor"),
    case(
        "activity bucket unknown",
        lambda s, c: s.audit.activity(bucket="week"),  # type: ignore[arg-type]
        "bucket",
        "must be one of",
    ),
    case(
        "activity bucket upper case",
        lambda s, c: s.audit.activity(bucket="HOUR"),  # type: ignore[arg-type]
        "bucket",
        "must be one of",
    ),
    case("activity since naive", lambda s, c: s.audit.activity(since=NAIVE), "since", "naive"),
    case("activity until naive", lambda s, c: s.audit.activity(until=NAIVE), "until", "naive"),
    case("activity agent_id empty", lambda s, c: s.audit.activity(agent_id=""), "agent_id", BLANK),
    # participants
    case("join session_id empty", join(session_id=""), "session_id", BLANK),
    case("join agent_id 256", join(agent_id=LONG_ID), "agent_id", TOO_LONG),
    case("join agent_type empty", join(agent_type=""), "agent_type", BLANK),
    case("join role NUL", join(role=NUL), "role", HAS_NUL),
    case(
        "leave agent_id empty",
        lambda s, c: s.participants.leave(c.session_id, ""),
        "agent_id",
        BLANK,
    ),
    case(
        "participants.list session_id 256",
        lambda s, c: s.participants.list(LONG_ID),
        "session_id",
        TOO_LONG,
    ),
    case(
        "sessions_for agent_id empty",
        lambda s, c: s.participants.sessions_for(""),
        "agent_id",
        BLANK,
    ),
    case(
        "sessions_for active str",
        lambda s, c: s.participants.sessions_for("agent-a", active=wrong("yes")),
        "active",
    ),
]


@pytest.mark.parametrize(("call", "fragments"), BAD_INPUTS)
async def test_bad_input_is_rejected_and_nothing_is_written(
    store: Store, call: Call, fragments: tuple[str, ...]
) -> None:
    seeded = await seed(store)
    before = await snapshot(store)
    with pytest.raises(ValidationError) as raised:
        await call(store, seeded)
    for fragment in fragments:
        assert fragment in str(raised.value)
    assert await snapshot(store) == before


def test_the_fragments_name_distinct_cases() -> None:
    labels = [param.id for param in BAD_INPUTS]
    assert len(labels) == len(set(labels))


async def test_the_limits_themselves_are_accepted(store: Store) -> None:
    longest_id = "i" * 255
    # metadata of exactly 64 KiB, serialised compactly
    filler = 64 * 1024 - len(json.dumps({"k": ""}, separators=(",", ":")))
    biggest_metadata = {"k": "m" * filler}
    session = await make_session(store, longest_id, created_by="c" * 255, metadata=biggest_metadata)
    assert await store.sessions.get(longest_id) == session
    assert session.metadata == biggest_metadata

    longest = await store.messages.add(longest_id, sender="s" * 255, content="c" * 100_000)
    assert await store.messages.get(longest.id, viewer=ADMIN) == longest
    assert len(longest.content) == 100_000

    one_second = await store.memory.set("a" * 255, "k" * 255, "v", ttl=1)
    a_year = await store.memory.set("agent", "year", "v", ttl=timedelta(days=365))
    assert one_second.expires_at is not None
    assert a_year.expires_at is not None
    assert a_year.expires_at - a_year.updated_at >= timedelta(days=364)

    assert len((await store.sessions.list(limit=1)).items) == 1
    assert len((await store.sessions.list(limit=1000)).items) == 1
    assert await store.messages.search("q" * 1000, viewer=ADMIN, limit=1000) == []
    event = await store.audit.record("e" * 255, agent_id="a" * 255, metadata=biggest_metadata)
    assert (await store.audit.list(limit=1000)).items == [event]
