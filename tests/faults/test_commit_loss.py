"""Lost COMMIT acknowledgements: the server commits, the client never hears it.

The proxy forwards a COMMIT, waits for the server's answer, throws it away and
aborts the connection (every other COMMIT, so the retry that follows one gets
through). Writes that are idempotent by construction (``messages.add``,
``add_many``, ``audit.record``, ``memory.set`` with and without overwrite)
are retried, find their rows by client token or key, and succeed; a write the
store cannot know to be idempotent (``store.db.execute(insert(...))``)
surfaces ``DatabaseUnavailableError(may_have_committed=True)`` instead of
being repeated. Either way nothing is lost and nothing is written twice. The
acknowledgement dropped is that of an explicit COMMIT or of a single
statement committed in autocommit, whichever the store sends.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from contextstore import Store

from ._instances import Admin
from ._proxy import FaultProxy
from ._workload import OK, UNKNOWN, EngineWatch, Op, Workload, operation_deadline, report, verify
from .conftest import FaultDatabase

pytestmark = pytest.mark.faults

DROPS = 50
#: the writes whose retry after a lost COMMIT must succeed (insert if absent, read back).
IDEMPOTENT = ("add", "add_many", "memory", "memory_new", "audit")
WRITE_MIX = {"add": 3, "add_many": 2, "memory": 2, "memory_new": 2, "audit": 2, "raw_insert": 2}
#: the run gives up if the drops have not all happened by then.
LIMIT_SECONDS = 60.0


async def test_dropped_commit_acknowledgements(
    fault_db: FaultDatabase, admin: Admin, request: pytest.FixtureRequest
) -> None:
    with FaultProxy(fault_db.instance.port, protocol=fault_db.dialect) as proxy:
        settings = fault_db.settings(proxy.url(fault_db.url))
        async with Store(settings) as store:
            workload = await Workload.prepare(store, mix=WRITE_MIX, seed=3)
            watch = EngineWatch(store)
            raw_dropped: list[Op] = []
            proxy.drop_commits(DROPS, every=2)
            limit = time.monotonic() + LIMIT_SECONDS
            dropped_in: Counter[str] = Counter()
            while proxy.stats.commits_dropped < DROPS and time.monotonic() < limit:
                before = proxy.stats.commits_dropped
                op = await workload.step()
                dropped_in[op.kind] += proxy.stats.commits_dropped - before
                if op.kind == "raw_insert" and proxy.stats.commits_dropped > before:
                    raw_dropped.append(op)
            for _ in range(10):  # and the store works on normally afterwards
                await workload.step()
            pool = store.db.pool_stats()
            assert pool is not None
            assert pool.checked_out == 0
        stats = proxy.stats
    left = await admin.wait_no_sessions(fault_db.name)

    verdict = await verify(fault_db.url, [workload], deadline=operation_deadline(settings))
    outcomes = Counter((op.kind, op.status) for op in workload.ops)
    report(
        request.node.name,
        {
            "commits_seen": stats.commits_seen,
            "commits_dropped": stats.commits_dropped,
            "dropped_per_kind": dict(sorted(dropped_in.items())),
            **verdict.figures(),
            "outcomes": dict(sorted((f"{k}:{s}", n) for (k, s), n in outcomes.items())),
            **watch.figures(len(workload.ops)),
        },
    )
    assert left == [], f"sessions left on the server after close(): {left}"
    assert stats.commits_dropped == DROPS
    # every kind of write lost an acknowledgement at least once
    assert set(dropped_in) >= set(WRITE_MIX), dropped_in
    assert all(dropped_in[kind] > 0 for kind in WRITE_MIX), dropped_in
    verdict.check()
    not_ok = [op.describe() for op in workload.ops if op.kind in IDEMPOTENT and op.status != OK]
    assert not not_ok, f"idempotent writes not retried after a lost COMMIT: {not_ok[:5]}"
    # a write that is not idempotent is not repeated: the caller hears "unknown"
    assert raw_dropped
    wrong = [op.describe() for op in raw_dropped if op.status != UNKNOWN]
    assert not wrong, f"lost acknowledgement of a plain execute() not surfaced: {wrong[:5]}"
    assert verdict.unknown_absent == 0  # the proxy drops only acknowledgements of commits
