"""Network faults between the store and its server, injected by a loopback proxy.

* every connection cut (RST) several times during a workload: calls recover
  or fail typed, nothing acknowledged is lost, nothing is doubled;
* traffic stalled both ways (a hung server or network): a call fails with a
  typed error within ``statement_timeout`` plus a small margin, its connection
  is discarded (closed by the client while the stall lasts, so its bytes never
  reach the server later), ``health(timeout=1)`` answers ``ok=False`` within
  about a second, and once traffic flows again the store works.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from contextstore import ContextStoreError, Store

from ._instances import Admin
from ._proxy import FaultProxy
from ._workload import (
    FAILED,
    OK,
    UNKNOWN,
    EngineWatch,
    Workload,
    operation_deadline,
    report,
    verify,
)
from .conftest import FaultDatabase

pytestmark = pytest.mark.faults

CUTS = 5
#: statement and connect timeouts while a stall is tested.
SHORT_TIMEOUT = 2.0
#: a hung call must fail within SHORT_TIMEOUT plus this.
HANG_MARGIN = 3.0
HEALTH_TIMEOUT = 1.0
HEALTH_MARGIN = 0.75
#: a call still running after this long is hung for good: fail instead of waiting.
GIVE_UP = 60.0


async def test_every_connection_cut_during_a_workload(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    with FaultProxy(fault_db.instance.port, protocol=fault_db.dialect) as proxy:
        settings = fault_db.settings(proxy.url(fault_db.url))
        async with Store(settings) as store:
            workload = await Workload.prepare(store, seed=4)
            watch = EngineWatch(store)
            stop = asyncio.Event()
            running = asyncio.create_task(workload.run(stop=stop, workers=4))
            cut = []
            try:
                for _ in range(CUTS):
                    await asyncio.sleep(1.0)
                    cut.append(proxy.cut())
                await asyncio.sleep(1.0)
            finally:
                stop.set()
                await running
            pool = store.db.pool_stats()
            assert pool is not None
            assert pool.checked_out == 0
    left = await admin.wait_no_sessions(fault_db.name)
    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "cuts": len(cut),
            "connections_cut": sum(cut),
            **verdict.figures(),
            **watch.figures(len(workload.ops)),
        },
    )
    assert left == [], f"sessions left on the server after close(): {left}"
    assert all(n > 0 for n in cut), f"a cut found no open connection: {cut}"
    verdict.check()
    assert verdict.summary["ok"] > 0


async def test_stalled_traffic_fails_typed_and_in_time(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    with FaultProxy(fault_db.instance.port, protocol=fault_db.dialect) as proxy:
        settings = fault_db.settings(
            proxy.url(fault_db.url),
            statement_timeout=SHORT_TIMEOUT,
            connect_timeout=SHORT_TIMEOUT,
        )
        async with Store(settings) as store:
            workload = await Workload.prepare(store, seed=5)
            for kind in ("add", "memory", "list"):  # a pooled connection is ready
                assert (await workload.step(kind)).status == OK
            stalled: list[str] = []
            proxy.stall()
            try:
                write = await asyncio.wait_for(workload.step("add"), GIVE_UP)
                stalled.append(write.describe())
                read = await asyncio.wait_for(workload.step("list"), GIVE_UP)
                stalled.append(read.describe())
                started = time.monotonic()
                health = await asyncio.wait_for(store.health(timeout=HEALTH_TIMEOUT), GIVE_UP)
                health_s = time.monotonic() - started
                pool_while_stalled = store.db.pool_stats()
                discarded = proxy.stats.closed_by_client_while_stalled
            finally:
                proxy.resume()
            after = [await workload.step(kind) for kind in ("add", "add_many", "memory", "list")]
            await asyncio.sleep(0.5)  # let the abandoned health probe finish
            pool = store.db.pool_stats()
    left = await admin.wait_no_sessions(fault_db.name)
    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "stalled_calls": stalled,
            "health_s": round(health_s, 3),
            "health_error": health.error,
            "discarded_connections": discarded,
            **verdict.figures(),
        },
    )
    # every problem at once: the data first, then the bounds
    problems = [f"{name}: {items[:5]}" for name, items in verdict.problems().items()]
    for op in (write, read):
        if op.status not in (FAILED, UNKNOWN) or not isinstance(op.error, ContextStoreError):
            problems.append(f"not a typed failure: {op.describe()}")
        if op.duration > SHORT_TIMEOUT + HANG_MARGIN:
            problems.append(f"past statement_timeout + {HANG_MARGIN:g} s: {op.describe()}")
    if health.ok or health_s > HEALTH_TIMEOUT + HEALTH_MARGIN:
        problems.append(f"health ok={health.ok} after {health_s:.2f} s")
    if pool_while_stalled is None or pool_while_stalled.checked_out > 1:
        # at most the abandoned health probe may still hold one
        problems.append(f"connections still checked out while stalled: {pool_while_stalled}")
    if pool is None or pool.checked_out != 0:
        problems.append(f"connections checked out at the end: {pool}")
    if discarded < 1:
        problems.append("no hung connection was closed by the client during the stall")
    if any(op.status != OK for op in after):
        problems.append(f"no recovery after the stall: {[op.describe() for op in after]}")
    if left:
        problems.append(f"sessions left on the server after close(): {left}")
    assert not problems, "\n".join(problems)
