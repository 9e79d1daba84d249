"""Opposite-order updates that deadlock: the server rolls one back, the policy retries it.

Two transactions (``ConnectionManager.run(work, write=True)``) each update
row A then row B, in opposite orders, meeting at a barrier after their first
update, so each waits for the other's lock: a real deadlock. The server picks
a victim and rolls it back (PostgreSQL 40P01, MariaDB 1213); the retry policy
repeats that whole transaction, and both end committed with no error surfaced.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from contextstore import ConnectionManager

from ._instances import Admin
from ._workload import report
from .conftest import FaultDatabase

pytestmark = pytest.mark.faults

counters = Table(
    "fault_counters",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("n", Integer, nullable=False),
)
#: the codes a deadlock victim sees: PostgreSQL SQLSTATE, MariaDB errno.
DEADLOCK_CODES = {"40P01", 1213}


async def test_opposite_order_updates_deadlock_and_both_commit(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    db = ConnectionManager(fault_db.settings(auto_migrate=False))
    deadlocks = 0
    errors: list[str] = []

    def seen(context: Any) -> None:
        nonlocal deadlocks
        orig = context.original_exception
        sqlstate = getattr(orig, "sqlstate", None)
        errno = orig.args[0] if orig.args else None
        errors.append(f"{type(orig).__name__}: {orig}".splitlines()[0])
        if sqlstate in DEADLOCK_CODES or errno in DEADLOCK_CODES:
            deadlocks += 1

    try:
        from sqlalchemy import event

        event.listen(db.engine.sync_engine, "handle_error", seen)
        async with db.engine.begin() as conn:
            await conn.run_sync(counters.metadata.create_all)
            await conn.execute(counters.insert(), [{"id": 1, "n": 0}, {"id": 2, "n": 0}])

        barrier = asyncio.Barrier(2)
        attempts: Counter[str] = Counter()

        def transfer(name: str, first: int, second: int) -> Any:
            async def work(conn: AsyncConnection) -> None:
                attempts[name] += 1
                bump = counters.c.n + 1
                await conn.execute(update(counters).where(counters.c.id == first).values(n=bump))
                if attempts[name] == 1:  # only the first attempts meet: a retry goes through
                    await asyncio.wait_for(barrier.wait(), 30)
                await conn.execute(update(counters).where(counters.c.id == second).values(n=bump))

            return db.run(work, write=True)

        outcomes = await asyncio.wait_for(
            asyncio.gather(transfer("ab", 1, 2), transfer("ba", 2, 1), return_exceptions=True),
            60,
        )
        final = {row["id"]: row["n"] for row in await db.fetch_all(select(counters).order_by("id"))}
        pool = db.pool_stats()
    finally:
        await db.dispose()
    left = await admin.wait_no_sessions(fault_db.name)
    report(
        request.node.name,
        {"attempts": dict(attempts), "deadlocks_seen": deadlocks, "driver_errors": errors},
    )
    assert list(outcomes) == [None, None], outcomes  # no error surfaced
    assert deadlocks == 1, "the server did not report exactly one deadlock"
    assert sorted(attempts.values()) == [1, 2]  # the victim, and only it, ran again
    assert final == {1: 2, 2: 2}  # both transactions committed once
    assert pool is not None
    assert pool.checked_out == 0
    assert left == [], f"sessions left on the server after dispose(): {left}"
