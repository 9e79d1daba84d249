"""Records: frozen pydantic models whose datetimes are aware UTC, on every backend.

The process runs in a far-from-UTC local time zone while writing and
reading, so any naive ``datetime.now()`` / ``fromtimestamp()`` on the way in
or out shows up as an offset of hours.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from contextstore import (
    ActivityBucket,
    AuditEvent,
    MemoryEntry,
    Message,
    Page,
    Participant,
    SearchHit,
    Session,
    SessionActivity,
    Store,
)

from ._factories import ADMIN, make_session
from ._oracle import is_utc


@pytest.fixture
def local_time_far_from_utc() -> Iterator[None]:
    """Local time UTC+05:30 (a POSIX TZ string: no tz database needed)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset needs a POSIX system")
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "XST-05:30"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


async def one_of_each(store: Store) -> dict[str, Any]:
    session = await make_session(store, "s1")
    message = await store.messages.add("s1", sender="alice", content="wombat record")
    return {
        "session": session,
        "message": message,
        "memory": await store.memory.set("alice", "k", {"v": 1}, session_id="s1", ttl=3600),
        "audit": await store.audit.record("made", agent_id="alice", session_id="s1"),
        "participant": await store.participants.join("s1", "alice"),
        "activity": await store.sessions.activity("s1", viewer=ADMIN),
        "bucket": (await store.audit.activity(bucket="minute"))[0],
        "hit": (await store.messages.search("wombat", viewer=ADMIN))[0],
        "page": await store.messages.list("s1", viewer=ADMIN),
    }


def datetimes(record: pydantic.BaseModel) -> dict[str, datetime]:
    found = {}
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, datetime):
            found[name] = value
        elif isinstance(value, pydantic.BaseModel):
            found |= {f"{name}.{k}": v for k, v in datetimes(value).items()}
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, pydantic.BaseModel):
                    found |= {f"{name}[{i}].{k}": v for k, v in datetimes(item).items()}
    return found


async def test_records_are_the_documented_frozen_models(store: Store) -> None:
    records = await one_of_each(store)
    expected_types = {
        "session": Session,
        "message": Message,
        "memory": MemoryEntry,
        "audit": AuditEvent,
        "participant": Participant,
        "activity": SessionActivity,
        "bucket": ActivityBucket,
        "hit": SearchHit,
        "page": Page,
    }
    for name, record in records.items():
        assert isinstance(record, expected_types[name]), name
        assert type(record).model_config.get("frozen") is True, name
        field = next(iter(type(record).model_fields))
        with pytest.raises(pydantic.ValidationError):
            setattr(record, field, getattr(record, field))
    assert isinstance(records["hit"].score, float)
    assert records["page"].next_cursor is None


async def test_every_datetime_is_aware_utc_and_now(
    local_time_far_from_utc: None, store: Store
) -> None:
    before = datetime.now(UTC)
    records = await one_of_each(store)
    after = datetime.now(UTC)
    for name, record in records.items():
        for field, value in datetimes(record).items():
            where = f"{name}.{field}"
            assert is_utc(value), where
            if field.endswith("expires_at"):
                value -= timedelta(hours=1)
            if name == "bucket":
                assert value <= after, where
            else:
                assert before - timedelta(seconds=2) <= value <= after + timedelta(seconds=2), where
    # and they read back the same through a second path
    assert await store.sessions.get("s1") == records["session"]
    assert await store.memory.get("alice", "k", session_id="s1") == records["memory"]
    assert (await store.audit.list()).items == [records["audit"]]
