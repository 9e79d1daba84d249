"""The audit log: events as recorded, newest first, time windows, activity buckets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from contextstore import ActivityBucket, AuditEvent, Store

from ._factories import all_pages, flatten, make_session
from ._oracle import audit_key, bucket_start, is_utc

FAR_EAST = timezone(timedelta(hours=5, minutes=30))
FAR_WEST = timezone(timedelta(hours=-8))


async def everything(store: Store, **filters: Any) -> list[AuditEvent]:
    return flatten(await all_pages(store.audit.list, limit=1000, **filters))


def newest_first(events: Iterable[AuditEvent]) -> list[AuditEvent]:
    return sorted(events, key=audit_key, reverse=True)


async def test_record_returns_the_event_that_list_reads(store: Store) -> None:
    await make_session(store, "s1")
    event = await store.audit.record(
        "login",
        agent_id="agent",
        session_id="s1",
        resource="memory",
        action="read",
        result="ok",
        metadata={"ip": "10.0.0.1", "tries": [1, 2]},
    )
    assert isinstance(event, AuditEvent)
    assert (event.event_type, event.agent_id, event.session_id) == ("login", "agent", "s1")
    assert (event.resource, event.action, event.result) == ("memory", "read", "ok")
    assert event.metadata == {"ip": "10.0.0.1", "tries": [1, 2]}
    assert is_utc(event.timestamp)
    bare = await store.audit.record("ping", agent_id="agent")
    assert (bare.session_id, bare.resource, bare.action, bare.result) == (None, None, None, None)
    assert bare.metadata == {}
    assert bare.id > event.id
    assert await everything(store) == [bare, event]


async def test_since_is_inclusive_and_until_exclusive_in_any_time_zone(store: Store) -> None:
    events = [await store.audit.record(f"e{i}", agent_id="agent") for i in range(6)]
    pivot, later = events[2].timestamp, events[4].timestamp
    for zone in (UTC, FAR_EAST, FAR_WEST):
        since, until = pivot.astimezone(zone), later.astimezone(zone)
        assert await everything(store, since=since) == newest_first(
            e for e in events if e.timestamp >= pivot
        ), zone
        assert await everything(store, until=since) == newest_first(
            e for e in events if e.timestamp < pivot
        ), zone
        assert await everything(store, since=since, until=until) == newest_first(
            e for e in events if pivot <= e.timestamp < later
        ), zone
    assert await everything(store, since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert await everything(store, until=events[0].timestamp) == []


async def test_activity_counts_events_per_bucket_and_type(store: Store) -> None:
    before = datetime.now(UTC)
    events = []
    for event_type, agent_id, times in (
        ("login", "ann", 3),
        ("read", "ann", 2),
        ("login", "ben", 1),
        ("write", "ben", 1),
    ):
        for _ in range(times):
            events.append(await store.audit.record(event_type, agent_id=agent_id))
    after = datetime.now(UTC)

    def expected(bucket: str, chosen: Iterable[AuditEvent]) -> list[ActivityBucket]:
        counts = Counter((bucket_start(e.timestamp, bucket), e.event_type) for e in chosen)
        return [
            ActivityBucket(start=start, event_type=event_type, count=count)
            for (start, event_type), count in sorted(counts.items())
        ]

    for bucket in ("minute", "hour", "day"):
        got = await store.audit.activity(bucket=bucket)
        assert got == expected(bucket, events), bucket
        for row in got:
            assert is_utc(row.start), bucket
            assert row.start.second == 0
            assert row.start.microsecond == 0
            if bucket in ("hour", "day"):
                assert row.start.minute == 0
            if bucket == "day":
                assert row.start.hour == 0
            # recorded now: the bucket of now (or of a moment ago, across a boundary)
            assert bucket_start(before, bucket) <= row.start <= bucket_start(after, bucket)
        assert await store.audit.activity(bucket=bucket, agent_id="ben") == expected(
            bucket, (e for e in events if e.agent_id == "ben")
        )
    assert await store.audit.activity() == await store.audit.activity(bucket="hour")


async def test_activity_time_window(store: Store) -> None:
    events = [await store.audit.record(f"e{i % 2}", agent_id="agent") for i in range(6)]
    first, pivot, last = events[0].timestamp, events[3].timestamp, events[-1].timestamp

    def total(rows: list[ActivityBucket]) -> int:
        return sum(row.count for row in rows)

    assert total(await store.audit.activity(bucket="day", since=first)) == 6
    assert total(await store.audit.activity(bucket="day", since=pivot.astimezone(FAR_WEST))) == 3
    assert total(await store.audit.activity(bucket="day", until=pivot.astimezone(FAR_EAST))) == 3
    assert total(await store.audit.activity(bucket="day", until=last)) == 5
    assert await store.audit.activity(bucket="day", until=first) == []
    assert await store.audit.activity(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert await store.audit.activity(bucket="day", agent_id="nobody") == []
