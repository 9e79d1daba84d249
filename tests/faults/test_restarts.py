"""Server restarts during a workload: the store recovers by itself, nothing is lost.

Three times within 60 s the private server is stopped (PostgreSQL fast
shutdown, MariaDB SIGTERM: every session is disconnected), left down for a
second (new connections are refused) and started again, while four workers
keep writing and reading. Calls during the outage fail with typed errors; the
first call to succeed after the server is ready again must do so within 5 s;
afterwards every acknowledged write is there exactly once.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from contextstore import Store

from ._instances import connect_admin
from ._workload import OK, EngineWatch, Workload, operation_deadline, report, verify
from .conftest import FaultDatabase

pytestmark = pytest.mark.faults

RESTARTS = 3
#: the issue's window for the three restarts.
WINDOW = 60.0
#: the first success after the server is ready again must come within this.
FIRST_SUCCESS_BOUND = 5.0
#: seconds of normal work before each restart, and the outage itself.
UP_SECONDS = 3.0
DOWN_SECONDS = 1.0


async def test_restarts_during_a_workload(
    fault_db: FaultDatabase, request: pytest.FixtureRequest
) -> None:
    instance = fault_db.instance
    settings = fault_db.settings()
    cycles: list[dict[str, float]] = []
    async with Store(settings) as store:
        workload = await Workload.prepare(store, seed=2)
        watch = EngineWatch(store)
        stop = asyncio.Event()
        running = asyncio.create_task(workload.run(stop=stop, workers=4, pause=0.01))
        began = time.monotonic()
        try:
            for _ in range(RESTARTS):
                await asyncio.sleep(UP_SECONDS)
                before = instance.pids()
                stopping = time.monotonic()
                await asyncio.to_thread(instance.stop)
                stopped = time.monotonic()
                await asyncio.sleep(DOWN_SECONDS)
                await asyncio.to_thread(instance.launch)
                ready = await asyncio.to_thread(instance.wait_ready)
                assert set(instance.pids()).isdisjoint(before), "the server was not restarted"
                cycles.append({"stopping": stopping, "stopped": stopped, "ready": ready})
            await asyncio.sleep(UP_SECONDS)
        finally:
            stop.set()
            await running
            if not instance.is_ready():  # restore the server whatever happened
                await asyncio.to_thread(instance.start)
        elapsed = time.monotonic() - began
        pool = store.db.pool_stats()
        assert pool is not None
        assert pool.checked_out == 0
    admin = await connect_admin(instance)  # after the restarts, which would cut it
    try:
        left = await admin.wait_no_sessions(fault_db.name)
    finally:
        await admin.close()

    latencies = []
    outage_errors = []
    for cycle in cycles:
        after = [op.ended for op in workload.ops if op.status == OK and op.ended > cycle["stopped"]]
        assert after, "no call succeeded after the restart"
        # <= 0 when a call got through before the readiness poll noticed the server
        latencies.append(round(max(0.0, min(after) - cycle["ready"]), 3))
        outage_errors.append(
            sum(
                1
                for op in workload.ops
                if op.status != OK and cycle["stopping"] <= op.ended <= cycle["ready"] + 1
            )
        )
    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "restarts": len(cycles),
            "restart_phase_s": round(elapsed, 1),
            "downtime_s": [round(c["ready"] - c["stopping"], 2) for c in cycles],
            "first_success_after_ready_s": latencies,
            "errors_during_outages": outage_errors,
            **verdict.figures(),
            **watch.figures(len(workload.ops)),
        },
    )
    assert left == [], f"sessions left on the server after close(): {left}"
    assert len(cycles) == RESTARTS
    assert elapsed <= WINDOW
    # the outages were real: calls failed while the server was away
    assert all(errors > 0 for errors in outage_errors), outage_errors
    assert max(latencies) <= FIRST_SUCCESS_BOUND, latencies
    verdict.check()
