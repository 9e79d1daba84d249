"""Server-side kills of the store's sessions during a mixed workload.

An admin session terminates one or two of the test database's sessions
(``pg_terminate_backend`` / ``KILL CONNECTION``) every 0.5-1 s, preferring
sessions busy in a statement or transaction, while six workers run messages,
batches, memory, audit and reads. Afterwards: nothing acknowledged is lost,
nothing is written twice, no batch is partial, only contextstore errors
escaped, every call ended within its deadline, the pool has nothing checked
out, and ``close()`` leaves no session on the server.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from contextstore import Store

from ._instances import Admin
from ._workload import EngineWatch, Workload, operation_deadline, report, verify
from .conftest import FaultDatabase

pytestmark = pytest.mark.faults

#: how long the workload runs; CI runs the issue's full 60 s.
SECONDS = float(os.environ.get("CONTEXTSTORE_TEST_FAULT_SECONDS", "60"))
WORKERS = 6


async def test_backend_kills_during_a_mixed_workload(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    settings = fault_db.settings()
    kills = 0
    rounds = 0
    stop = asyncio.Event()

    async def killer() -> None:
        nonlocal kills, rounds
        rng = random.Random(7)
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.5, 1.0))
            rounds += 1
            targets = await admin.sessions(fault_db.name, busy=rng.random() < 0.7)
            if not targets:
                targets = await admin.sessions(fault_db.name)
            for session_id in rng.sample(targets, k=min(len(targets), rng.randint(1, 2))):
                if await admin.kill(session_id):
                    kills += 1

    async with Store(settings) as store:
        workload = await Workload.prepare(store, seed=1)
        watch = EngineWatch(store)
        killing = asyncio.create_task(killer())
        try:
            await workload.run(seconds=SECONDS, workers=WORKERS)
        finally:
            stop.set()
            await killing
        pool = store.db.pool_stats()
        assert pool is not None
        assert pool.checked_out == 0
    left = await admin.wait_no_sessions(fault_db.name)

    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "seconds": SECONDS,
            "kills": kills,
            "kill_rounds": rounds,
            **verdict.figures(),
            **watch.figures(len(workload.ops)),
            "not_ok": workload.not_ok(),
        },
    )
    assert left == [], f"sessions left on the server after close(): {left}"
    # the fault really happened, at least once a second
    assert kills >= SECONDS, f"only {kills} sessions killed in {SECONDS} s"
    verdict.check()
    assert verdict.summary["ok"] > 0
