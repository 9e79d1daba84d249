"""A server process that stops answering (SIGSTOP), then continues (SIGCONT).

Every process of the private server is frozen: TCP connections stay open, the
kernel even accepts new ones, but nothing answers. A call must fail with a
typed error within ``statement_timeout`` plus a small margin and discard its
connection; ``health(timeout=1)`` must answer ``ok=False`` within about a
second; after SIGCONT (always sent, in ``finally``) the store works again and
nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from contextstore import ContextStoreError, Store

from ._instances import Admin
from ._workload import FAILED, OK, UNKNOWN, Workload, operation_deadline, report, verify
from .conftest import FaultDatabase
from .test_network import GIVE_UP, HANG_MARGIN, HEALTH_MARGIN, HEALTH_TIMEOUT, SHORT_TIMEOUT

pytestmark = pytest.mark.faults


async def test_frozen_server_fails_typed_and_in_time(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    instance = fault_db.instance
    settings = fault_db.settings(statement_timeout=SHORT_TIMEOUT, connect_timeout=SHORT_TIMEOUT)
    async with Store(settings) as store:
        workload = await Workload.prepare(store, seed=6)
        for kind in ("add", "memory", "list"):  # a pooled connection is ready
            assert (await workload.step(kind)).status == OK
        stalled = []
        health = None
        health_s = 0.0
        instance.freeze()
        try:
            write = await asyncio.wait_for(workload.step("add"), GIVE_UP)
            stalled.append(write)
            read = await asyncio.wait_for(workload.step("list"), GIVE_UP)
            stalled.append(read)
            started = time.monotonic()
            health = await asyncio.wait_for(store.health(timeout=HEALTH_TIMEOUT), GIVE_UP)
            health_s = time.monotonic() - started
            pool_while_frozen = store.db.pool_stats()
        finally:
            instance.thaw()
        after = [await workload.step(kind) for kind in ("add", "add_many", "memory", "list")]
        await asyncio.sleep(0.5)  # let the abandoned health probe finish
        pool = store.db.pool_stats()
    left = await admin.wait_no_sessions(fault_db.name)
    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "frozen_calls": [op.describe() for op in stalled],
            "health_s": round(health_s, 3),
            "health_error": health.error if health else None,
            **verdict.figures(),
        },
    )
    # every problem at once: the data first, then the bounds
    problems = [f"{name}: {items[:5]}" for name, items in verdict.problems().items()]
    for op in stalled:
        if op.status not in (FAILED, UNKNOWN) or not isinstance(op.error, ContextStoreError):
            problems.append(f"not a typed failure: {op.describe()}")
        if op.duration > SHORT_TIMEOUT + HANG_MARGIN:
            problems.append(f"past statement_timeout + {HANG_MARGIN:g} s: {op.describe()}")
    if health is None or health.ok or health_s > HEALTH_TIMEOUT + HEALTH_MARGIN:
        problems.append(f"health {health} after {health_s:.2f} s")
    if pool_while_frozen is None or pool_while_frozen.checked_out > 1:
        # at most the abandoned health probe may still hold one
        problems.append(f"connections still checked out while frozen: {pool_while_frozen}")
    if any(op.status != OK for op in after):
        problems.append(f"no recovery after SIGCONT: {[op.describe() for op in after]}")
    if pool is None or pool.checked_out != 0:
        problems.append(f"connections checked out at the end: {pool}")
    if left:
        problems.append(f"sessions left on the server after close(): {left}")
    assert not problems, "\n".join(problems)
