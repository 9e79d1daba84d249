"""An exhausted pool: calls fail fast with PoolExhaustedError while health still answers.

A two-connection pool (no overflow, ``pool_timeout=1``) is held by an open
write transaction and an open read (a stream stopped after its first row).
Every repository call then raises ``PoolExhaustedError`` within
``pool_timeout`` + 1 s, and writes nothing. ``store.health`` still answers
within its own timeout, even one shorter than ``pool_timeout``, without
raising: its question is whether the database answers, and it does (the
probe uses a connection of its own when the pool is exhausted), so it
reports ``ok=True`` with the pool's counters showing every connection checked
out - what a dashboard or readiness policy needs to tell "database down"
from "pool saturated". Once the holders let go, the store works again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from contextstore import (
    DatabaseUnavailableError,
    HealthReport,
    NewMessage,
    PoolExhaustedError,
    Settings,
    Store,
    Viewer,
)
from contextstore.schema import audit_log, messages

pytestmark = pytest.mark.faults

POOL_TIMEOUT = 1.0
#: PoolExhaustedError must arrive within pool_timeout plus this (the issue's bound).
EXHAUSTED_MARGIN = 1.0
#: scheduling slack on top of a health timeout.
HEALTH_MARGIN = 0.5
VIEWER = Viewer(agent_id="observer", is_admin=True)


async def _timed(call: Any) -> tuple[float, Any]:
    """Run ``call()``; return (seconds, result or the exception it raised)."""
    started = time.perf_counter()
    try:
        outcome = await call()
    except Exception as exc:
        outcome = exc
    return time.perf_counter() - started, outcome


async def test_exhausted_pool_fails_fast_while_health_answers(empty_url: str) -> None:
    settings = Settings(
        database_url=empty_url, pool_size=2, max_overflow=0, pool_timeout=POOL_TIMEOUT
    )
    async with Store(settings) as store:
        session = await store.sessions.create(purpose="pool", created_by="test")
        await store.messages.add(session.id, sender="seed", content="seed row one")
        await store.messages.add(session.id, sender="seed", content="seed row two")
        db = store.db
        async with contextlib.AsyncExitStack() as held:
            writer = await held.enter_async_context(db.transaction())
            await writer.execute(
                insert(audit_log).values(
                    timestamp=datetime.now(UTC), event_type="held", agent_id="holder", metadata={}
                )
            )
            rows = await held.enter_async_context(
                contextlib.aclosing(db.stream(select(messages.c.id)))
            )
            await anext(rows)
            stats = db.pool_stats()
            assert stats is not None
            assert (stats.size, stats.checked_out, stats.overflow) == (2, 2, 0)

            calls = {
                "messages.add": lambda: store.messages.add(
                    session.id, sender="blocked", content="never written"
                ),
                "messages.add_many": lambda: store.messages.add_many(
                    session.id, [NewMessage(sender="blocked", content="never written")] * 3
                ),
                "memory.set": lambda: store.memory.set("blocked", "k", 1),
                "audit.record": lambda: store.audit.record("blocked", agent_id="blocked"),
                "messages.list": lambda: store.messages.list(session.id, viewer=VIEWER),
                "sessions.get": lambda: store.sessions.get(session.id),
            }
            # all at once, with a health probe longer than pool_timeout and one shorter
            results = await asyncio.gather(
                *(_timed(call) for call in calls.values()),
                _timed(lambda: store.health(timeout=3.0)),
                _timed(lambda: store.health(timeout=0.5)),
            )
            *failed, (long_latency, long_report), (short_latency, short_report) = results
            for name, (elapsed, outcome) in zip(calls, failed, strict=True):
                assert isinstance(outcome, PoolExhaustedError), (name, outcome)
                assert isinstance(outcome, DatabaseUnavailableError)
                assert outcome.may_have_committed is False, name
                assert POOL_TIMEOUT * 0.9 <= elapsed <= POOL_TIMEOUT + EXHAUSTED_MARGIN, (
                    name,
                    elapsed,
                )

            # health answers within its timeout (not after pool_timeout), never raises,
            # says the database is fine and shows the saturated pool
            for timeout, latency, report in (
                (3.0, long_latency, long_report),
                (0.5, short_latency, short_report),
            ):
                assert isinstance(report, HealthReport), report
                assert latency <= timeout + HEALTH_MARGIN, (timeout, latency)
                assert report.ok is True, report.error
                assert report.error is None
                assert report.server_version
                assert report.pool is not None
                assert report.pool.checked_out == report.pool.size == 2
            print(
                f"\n{store.dialect}: PoolExhaustedError after "
                f"{min(e for e, _ in failed):.3f}-{max(e for e, _ in failed):.3f} s "
                f"(pool_timeout {POOL_TIMEOUT:g} s); health(timeout=3) answered in "
                f"{long_latency:.3f} s: {long_report.error!r}; health(timeout=0.5) answered in "
                f"{short_latency:.3f} s: {short_report.error!r}"
            )

        # released: nothing the blocked calls tried was written, and everything works again
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
        blocked = await db.fetch_value(
            select(func.count()).select_from(messages).where(messages.c.sender == "blocked")
        )
        assert blocked == 0
        assert await store.memory.get("blocked", "k") is None
        held_rows = await db.fetch_value(
            select(func.count()).select_from(audit_log).where(audit_log.c.agent_id == "holder")
        )
        assert held_rows == 1  # the holder's transaction committed when it let go
        assert (await store.audit.list(agent_id="blocked")).items == []
        await store.messages.add(session.id, sender="after", content="works again")
        assert await store.messages.count(session.id, viewer=VIEWER) == 3
        report = await store.health(timeout=5.0)
        assert report.ok, report.error
        assert report.pool is not None
        assert report.pool.checked_out == 0
