"""Crash durability: the server, or the SQLite writer process, killed with SIGKILL mid-workload.

PostgreSQL and MariaDB run as private instances with production durability
settings (``_instances``, ``durable=True``). Four tasks write through one
Store (``sessions.create``, ``messages.add``, ``messages.add_many`` of 30 rows,
``memory.set``, ``audit.record``) while every process of the server is killed
with SIGKILL at a random moment (PostgreSQL 10 times, MariaDB 5 times) and
started again at once, so each start is a crash recovery. The Store is never
reopened: calls during an outage fail with contextstore errors and the
workload carries on after the restart.

SQLite: a writer process runs the same calls through its own Store on a file
and is killed with SIGKILL 20 times, a new one started each time. It reports
each call before it starts and after it returns, through a file it appends to
with ``os.write`` (a SIGKILL loses the process's buffers, never what the kernel
already holds).

Afterwards, read back through a fresh Store: every acknowledged write is there
exactly once, no batch is partial, nothing is duplicated, and a call whose
outcome is unknown (``may_have_committed=True``, or killed in flight) landed
at most once and whole. On SQLite ``PRAGMA integrity_check`` and the
full-text index's own integrity check (against the messages table) pass too.

The kill moments come from a seed (``CONTEXTSTORE_TEST_CRASH_SEED`` overrides it,
the figures print it): a failure replays the same schedule.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contextstore import Settings, Store
from contextstore._dialects.sqlite import FTS_TABLE

from ._instances import Instance, PrivateMariaDB, PrivatePostgres, connect_admin
from ._workload import (
    FAILED,
    OK,
    UNKNOWN,
    UNTYPED,
    Op,
    Workload,
    judge,
    operation_deadline,
    report,
    verify,
)
from .conftest import FaultDatabase, _database

pytestmark = pytest.mark.faults

#: the writes of the issue's mix, weighted towards messages.
MIX = {"session": 1, "add": 4, "add_many": 2, "memory": 2, "audit": 2}
BATCH = 30
WORKERS = 4
KILLS = {"postgresql": 10, "mysql": 5}
SEEDS = {"postgresql": 1510, "mysql": 1505, "sqlite": 1520}
#: seconds of work between the server answering again and the next kill.
UP_SECONDS = (0.3, 1.5)
#: the first call to succeed after the server is ready again must come within this.
FIRST_SUCCESS_BOUND = 5.0


def _seed(name: str) -> int:
    override = os.environ.get("CONTEXTSTORE_TEST_CRASH_SEED")
    return int(override) if override else SEEDS[name]


@pytest.fixture(
    params=[
        pytest.param(PrivatePostgres, id="postgresql", marks=pytest.mark.postgresql),
        pytest.param(PrivateMariaDB, id="mysql", marks=pytest.mark.mysql),
    ]
)
def durable_db(request: pytest.FixtureRequest) -> Iterator[FaultDatabase]:
    """A fresh database on a private durable instance of its own, removed afterwards."""
    instance: Instance = request.param.create(durable=True)
    try:
        instance.start()
        yield from _database(instance)
    finally:
        instance.destroy()


async def test_server_killed_mid_workload(
    durable_db: FaultDatabase, request: pytest.FixtureRequest
) -> None:
    instance = durable_db.instance
    kills = KILLS[instance.dialect]
    seed = _seed(instance.dialect)
    schedule = random.Random(seed)
    settings = durable_db.settings()
    cycles: list[dict[str, float]] = []
    recoveries_before = instance.recoveries()
    async with Store(settings) as store:
        workload = await Workload.prepare(store, mix=MIX, seed=seed, batch_size=BATCH)
        stop = asyncio.Event()
        running = asyncio.create_task(workload.run(stop=stop, workers=WORKERS))
        try:
            for _ in range(kills):
                await asyncio.sleep(schedule.uniform(*UP_SECONDS))
                in_flight = sum(1 for op in workload.ops if op.is_write and not op.ended)
                killed = time.monotonic()
                await asyncio.to_thread(instance.crash)
                await asyncio.to_thread(instance.launch)
                ready = await asyncio.to_thread(instance.wait_ready)
                cycles.append({"killed": killed, "ready": ready, "in_flight": in_flight})
            await asyncio.sleep(UP_SECONDS[1])
        finally:
            stop.set()
            await running
            if not instance.is_ready():  # restore the server whatever happened
                await asyncio.to_thread(instance.start)
        pool = store.db.pool_stats()
        assert pool is not None
        assert pool.checked_out == 0
    admin = await connect_admin(instance)  # after the kills, which would cut it
    try:
        left = await admin.wait_no_sessions(durable_db.name)
    finally:
        await admin.close()
    recoveries = instance.recoveries() - recoveries_before

    first_success = []
    outage_errors = []
    for cycle in cycles:
        after = [op.ended for op in workload.ops if op.status == OK and op.started > cycle["ready"]]
        assert after, "no call succeeded after the restart"
        first_success.append(round(min(after) - cycle["ready"], 3))
        outage_errors.append(
            sum(
                1
                for op in workload.ops
                if op.status != OK and cycle["killed"] <= op.ended <= cycle["ready"] + 1
            )
        )
    writes = [op for op in workload.ops if op.is_write]
    verdict = await verify(durable_db.url, [workload], deadline=operation_deadline(settings))
    report(
        request.node.name,
        {
            "seed": seed,
            "kills": len(cycles),
            "crash_recoveries": recoveries,
            "writes_in_flight_at_kill": [int(c["in_flight"]) for c in cycles],
            "recovery_s": [round(c["ready"] - c["killed"], 2) for c in cycles],
            "first_success_after_ready_s": first_success,
            "errors_during_outages": outage_errors,
            "acknowledged_writes_checked": sum(1 for op in writes if op.status == OK),
            "rows_checked": sum(len(op.markers) for op in writes if op.status == OK),
            **verdict.figures(),
        },
    )
    assert left == [], f"sessions left on the server after close(): {left}"
    assert len(cycles) == kills
    # every start after a kill was a crash recovery, not a clean start
    assert recoveries == kills, instance.log_tail()
    # the kills landed mid-workload, with calls on their way
    assert sum(c["in_flight"] for c in cycles) > 0
    assert max(first_success) <= FIRST_SUCCESS_BOUND, first_success
    verdict.check()


#: Imports contextstore once, then forks one writer process per line it reads
#: (``[url, session id, tag, seed, report file]``), prints its pid, waits for it
#: and prints how it ended. Each writer reports ``begin`` before a call and how
#: the call ended after it returns. Forking saves the 1.5 s an import takes.
WRITERS = textwrap.dedent(
    """
    import asyncio, json, os, random, sys
    from contextstore import (
        ContextStoreError, DatabaseUnavailableError, NewMessage, Settings, Store,
    )

    KINDS = {KINDS!r}
    BATCH = {BATCH!r}

    async def write(url, session_id, tag, seed, report):
        rng = random.Random(seed)
        out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def emit(*fields):
            os.write(out, (json.dumps(fields) + "\\n").encode())

        # the test made the schema; checking it again would load alembic, 1 s
        async with Store(Settings(database_url=url, auto_migrate=False)) as store:
            n = 0
            while True:
                n += 1
                kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
                marker = f"{{tag}}:{{n}}"
                if kind == "add_many":
                    markers = [f"{{marker}}:{{i}}" for i in range(BATCH)]
                else:
                    markers = [marker]
                emit("begin", n, kind, markers)
                try:
                    if kind == "add":
                        await store.messages.add(session_id, sender=tag, content=marker)
                    elif kind == "add_many":
                        batch = [NewMessage(sender=tag, content=m) for m in markers]
                        await store.messages.add_many(session_id, batch)
                    elif kind == "memory":
                        await store.memory.set(tag, marker, {{"n": n}})
                    elif kind == "audit":
                        await store.audit.record("crash.write", agent_id=tag, resource=marker)
                    elif kind == "session":
                        await store.sessions.create(purpose=marker, created_by=tag)
                except DatabaseUnavailableError as exc:
                    status = "unknown" if exc.may_have_committed else "failed"
                    emit(status, n, repr(exc))
                except ContextStoreError as exc:
                    emit("failed", n, repr(exc))
                except Exception as exc:
                    emit("untyped", n, repr(exc))
                else:
                    emit("ok", n)

    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                url, session_id, tag, seed, report = json.loads(line)
                asyncio.run(write(url, session_id, tag, seed, report))
            finally:
                os._exit(1)  # a writer only ever ends killed
        print(json.dumps(pid), flush=True)
        print(json.dumps(os.waitpid(pid, 0)[1]), flush=True)
    """
).format(KINDS=MIX, BATCH=BATCH)
SQLITE_KILLS = 20
#: seconds the writer runs, after its first acknowledged call, before it is killed.
WRITER_SECONDS = (0.05, 0.6)
WRITER_START_LIMIT = 60.0


@pytest.mark.sqlite
async def test_sqlite_writer_killed_mid_workload(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    seed = _seed("sqlite")
    schedule = random.Random(seed)
    async with Store(Settings(database_url=url)) as store:  # the schema, before any writer
        session = await store.sessions.create(purpose="crash writers", created_by="faults")
    ops: list[Op] = []
    tags: list[str] = []
    in_flight_at_kill = []
    errors = tmp_path / "writers.err"
    began = time.monotonic()
    with errors.open("wb") as stderr:
        spawner = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", WRITERS),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert spawner.stdin is not None
    assert spawner.stdout is not None
    try:
        for run in range(SQLITE_KILLS):
            tag = f"w{run}"
            tags.append(tag)
            log = tmp_path / f"{tag}.log"
            spawner.stdin.write(
                f"{json.dumps([url, session.id, tag, seed + run, str(log)])}\n".encode()
            )
            await spawner.stdin.drain()
            pid = json.loads(await spawner.stdout.readline())
            deadline = time.monotonic() + WRITER_START_LIMIT
            # mid-workload: only once the writer has had a call acknowledged
            while not any(line[0] == OK for line in _lines(log)):
                assert time.monotonic() < deadline, errors.read_text()[-2000:]
                await asyncio.sleep(0.005)
            await asyncio.sleep(schedule.uniform(*WRITER_SECONDS))
            os.kill(pid, signal.SIGKILL)
            status = json.loads(await spawner.stdout.readline())
            assert os.WIFSIGNALED(status), errors.read_text()[-2000:]
            assert os.WTERMSIG(status) == signal.SIGKILL
            run_ops = _ops(_lines(log), first_id=len(ops))
            in_flight_at_kill.append(sum(1 for op in run_ops if op.status == UNKNOWN))
            ops.extend(run_ops)
    finally:
        spawner.stdin.close()
        await spawner.wait()
    elapsed = time.monotonic() - began

    integrity = _integrity(tmp_path / "crash.db")
    verdict = await judge(url, ops, agents=tags, session_ids=[session.id])
    statuses = Counter(op.status for op in ops)
    report(
        request.node.name,
        {
            "seed": seed,
            "kills": SQLITE_KILLS,
            "seconds": round(elapsed, 1),
            "calls_in_flight_at_kill": sum(in_flight_at_kill),
            "acknowledged_writes_checked": statuses[OK],
            "rows_checked": sum(len(op.markers) for op in ops if op.status == OK),
            **integrity,
            **verdict.figures(),
        },
    )
    assert statuses[FAILED] == statuses[UNTYPED] == 0, [
        op.describe() for op in ops if op.status in (FAILED, UNTYPED)
    ]
    assert integrity["integrity_check"] == "ok"
    assert integrity["fts_integrity_check"] == "ok"
    verdict.check()


def _lines(log: Path) -> list[list[Any]]:
    """The writer's reports so far; a line cut short by the kill is not one."""
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return found


def _ops(lines: list[list[Any]], *, first_id: int) -> list[Op]:
    """One Op per call the writer began; a call it never finished is ``unknown``."""
    ops: dict[int, Op] = {}
    for record in lines:
        status, n = record[0], record[1]
        if status == "begin":
            ops[n] = Op(id=first_id + n, kind=record[2], markers=tuple(record[3]), status=UNKNOWN)
        else:
            ops[n].status = status
            if len(record) > 2:
                ops[n].error = RuntimeError(record[2])
    return list(ops.values())


def _integrity(path: Path) -> dict[str, str]:
    """SQLite's own checks of the file, and of the full-text index against its table."""
    with sqlite3.connect(path) as conn:
        pages = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        try:
            # rank 1: also compare the index with the external content table
            conn.execute(
                f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rank) VALUES ('integrity-check', 1)"
            )
            fts = "ok"
        except sqlite3.DatabaseError as exc:
            fts = str(exc)
    conn.close()
    return {"integrity_check": pages, "fts_integrity_check": fts}
