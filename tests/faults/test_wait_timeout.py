"""MariaDB closes pooled connections that idled past its ``wait_timeout``.

The private server's global ``wait_timeout`` is set to 2 s (restored in
``finally``; never on the shared server), so every session the store opens
gets it. After the pool has idled for longer, the server has closed all of
them (none is left in its process list, ``Aborted_clients`` went up). The next
calls must still succeed: the dead connection fails its first statement, is
discarded, and the unit is retried on a fresh one, so nothing is surfaced to
the caller. With and without ``pool_pre_ping``.
"""

from __future__ import annotations

import asyncio

import pytest

from contextstore import Store

from ._instances import connect_admin
from ._workload import OK, EngineWatch, Workload, operation_deadline, report, verify
from .conftest import FaultDatabase

pytestmark = [pytest.mark.faults, pytest.mark.mysql]

WAIT_TIMEOUT = 2
IDLE_SECONDS = 4.0
#: calls run together first, so several connections sit in the pool.
CONCURRENT = 4
ABORTED_CLIENTS = (
    "SELECT variable_value FROM information_schema.global_status "
    "WHERE variable_name = 'ABORTED_CLIENTS'"
)
AFTER_IDLE = ("add", "add_many", "memory", "memory_new", "audit", "raw_insert", "list", "count")


@pytest.mark.parametrize("pre_ping", [False, True], ids=["no-pre-ping", "pre-ping"])
async def test_idle_connections_closed_by_the_server(
    mysql_fault_db: FaultDatabase, pre_ping: bool, request: pytest.FixtureRequest
) -> None:
    db = mysql_fault_db
    admin = await connect_admin(db.instance)
    original = await admin.scalar("SELECT @@GLOBAL.wait_timeout")
    try:
        await admin.scalar(f"SET GLOBAL wait_timeout = {WAIT_TIMEOUT}")
        settings = db.settings(pool_pre_ping=pre_ping)
        async with Store(settings) as store:
            workload = await Workload.prepare(store, seed=8)
            watch = EngineWatch(store)
            await asyncio.gather(*(workload.step(kind) for kind in AFTER_IDLE[:CONCURRENT]))
            pool_before = store.db.pool_stats()
            aborted_before = int(await admin.scalar(ABORTED_CLIENTS))
            await asyncio.sleep(IDLE_SECONDS)
            sessions_after_idle = await admin.sessions(db.name)
            aborted_after = int(await admin.scalar(ABORTED_CLIENTS))
            # one by one, then all at once so every pooled connection is touched
            after = [await workload.step(kind) for kind in AFTER_IDLE]
            after += await asyncio.gather(*(workload.step(kind) for kind in AFTER_IDLE))
            pool = store.db.pool_stats()
        left = await admin.wait_no_sessions(db.name)
    finally:
        await admin.scalar(f"SET GLOBAL wait_timeout = {int(original)}")
        await admin.close()
    verdict = await verify(db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "pooled_before_idle": pool_before.checked_in if pool_before else None,
            "closed_by_server": aborted_after - aborted_before,
            **verdict.figures(),
            **watch.figures(len(workload.ops)),
        },
    )
    assert pool_before is not None
    assert pool_before.checked_in >= 2
    # the fault happened: the server closed every idle pooled session
    assert sessions_after_idle == []
    assert aborted_after - aborted_before >= pool_before.checked_in
    assert [op.status for op in after] == [OK] * len(after), [
        op.describe() for op in after if op.status != OK
    ]
    assert pool is not None
    assert pool.checked_out == 0
    assert left == [], f"sessions left on the server after close(): {left}"
    verdict.check()
