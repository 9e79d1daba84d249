"""Cancellation at any point: the task re-raises CancelledError and nothing leaks or half-lands.

Per backend, waves of concurrent tasks run a mixed workload (single and batch
writes, memory, audit, reads, streams, explicit transactions) and each is
cancelled after a random delay of a few milliseconds, so cancellations land
while a task waits for the pool, pre-pings, runs a statement, iterates a
stream, sits inside a transaction or commits. Half of the waves (core) run on
a two-connection pool so most tasks are waiting for a checkout.

Afterwards: every task whose ``cancel()`` took effect ended cancelled (no
other exception, no swallowed cancel); no connection is checked out, no
aiosqlite thread and no server session outlives ``close()``; no warning and no
"exception never retrieved" report appeared; every batch and every
transaction is all or nothing when read back through a fresh connection; and
the store still works.

A process that never calls ``close()`` must still exit (``test_forgotten_close``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import gc
import logging
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from contextstore import ConnectionManager, NewMessage, Settings, Store, Viewer
from contextstore.schema import audit_log, messages
from tests._servers import Server

pytestmark = pytest.mark.faults

#: cancellations that must take effect (``task.cancel()`` returned True) per backend.
TARGET = 1000
#: tasks started together in one wave.
WAVE = 24
#: each task is cancelled after uniform(0, max_delay) seconds; max_delay starts here and
#: adapts per wave so that roughly a third of the tasks finish first, which spreads
#: the cancellations over every phase of an operation, whatever the backend's speed.
FIRST_MAX_DELAY = 0.005
DELAY_BOUNDS = (0.001, 0.5)
#: seed rows for the reads and the streams.
SEED_MESSAGES = 300
#: waiting bounds (generous: they only end a wait, they never measure speed).
SETTLE = 15.0

VIEWER = Viewer(agent_id="observer", is_admin=True)
WORKER_THREAD = "(_connection_worker_thread)"


# -- where a cancellation lands -------------------------------------------------


class Phases:
    """The phase each workload task is in, updated from engine and pool events.

    Events run inside the task that triggered them (SQLAlchemy's greenlets
    stay in the caller's task), so ``asyncio.current_task()`` names it.
    """

    def __init__(self) -> None:
        self.of: dict[asyncio.Task[Any], str] = {}

    def set(self, phase: str) -> None:
        task = asyncio.current_task()
        if task is not None and task in self.of:
            self.of[task] = phase

    def instrument(self, store: Store) -> None:
        engine = store.db.engine.sync_engine
        event.listen(engine, "checkout", lambda *_: self.set("checked out"))
        event.listen(engine, "before_cursor_execute", lambda *_: self.set("statement"))
        event.listen(engine, "after_cursor_execute", lambda *_: self.set("between statements"))
        event.listen(engine, "commit", lambda *_: self.set("commit"))
        dialect = engine.dialect
        ping = dialect.do_ping

        def do_ping(dbapi_connection: Any) -> bool:
            self.set("pre-ping")
            try:
                return bool(ping(dbapi_connection))
            finally:
                self.set("checked out")

        dialect.do_ping = do_ping  # type: ignore[method-assign]
        connect = dialect.connect

        def connecting(*args: Any, **kwargs: Any) -> Any:
            self.set("connecting")
            return connect(*args, **kwargs)

        dialect.connect = connecting  # type: ignore[method-assign]


# -- the workload ----------------------------------------------------------------


@dataclass
class Workload:
    store: Store
    session_id: str
    phases: Phases
    rng: random.Random
    core: bool
    #: add_many marker (the sender of every message of the batch) -> batch size
    batches: dict[str, int] = field(default_factory=dict)
    #: agent_id marker of each explicit transaction (it writes two audit rows)
    transactions: set[str] = field(default_factory=set)

    @property
    def start(self) -> str:
        """The phase from the call until the first event: the pool wait (core)."""
        return "pool wait" if self.core else "in flight"

    def operations(self) -> list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]]:
        ops: list[tuple[str, Callable[[], Coroutine[Any, Any, Any]]]] = [
            ("messages.add", self.add),
            ("messages.add_many", self.add_many),
            ("memory.set", self.memory_set),
            ("audit.record", self.audit_record),
            ("read", self.read),
        ]
        if self.core:
            ops += [("db.stream", self.stream), ("db.transaction", self.transaction)]
        return ops

    async def add(self) -> Any:
        self.phases.set(self.start)
        return await self.store.messages.add(
            self.session_id, sender="single", content=f"single write {uuid.uuid4().hex}"
        )

    async def add_many(self) -> Any:
        marker = f"batch-{uuid.uuid4().hex}"
        size = self.rng.randint(5, 50)
        self.batches[marker] = size
        items = [NewMessage(sender=marker, content=f"batch item {i}") for i in range(size)]
        self.phases.set(self.start)
        return await self.store.messages.add_many(self.session_id, items)

    async def memory_set(self) -> Any:
        self.phases.set(self.start)
        return await self.store.memory.set(
            f"agent-{self.rng.randint(0, 5)}",
            f"key-{self.rng.randint(0, 30)}",
            {"n": self.rng.random()},
            ttl=3600,
        )

    async def audit_record(self) -> Any:
        self.phases.set(self.start)
        return await self.store.audit.record(
            "cancel.record", agent_id="canceller", session_id=self.session_id
        )

    async def read(self) -> Any:
        store, sid = self.store, self.session_id
        reads: list[Callable[[], Awaitable[Any]]] = [
            lambda: store.messages.list(sid, viewer=VIEWER, limit=100),
            lambda: store.messages.count(sid, viewer=VIEWER),
            lambda: store.messages.search("batch", viewer=VIEWER, limit=20),
            lambda: store.messages.get(1, viewer=VIEWER),
            lambda: store.sessions.get(sid),
            lambda: store.memory.get("agent-1", "key-1"),
            lambda: store.audit.list(limit=50),
        ]
        self.phases.set(self.start)
        return await self.rng.choice(reads)()

    async def stream(self) -> int:
        stmt = select(messages.c.id, messages.c.content).where(
            messages.c.session_id == self.session_id
        )
        count = 0
        self.phases.set(self.start)
        async with contextlib.aclosing(self.store.db.stream(stmt, batch_size=50)) as rows:
            async for _row in rows:
                count += 1
                self.phases.set("mid-stream")
                if count % 20 == 0:
                    await asyncio.sleep(0)  # a consumer doing work between rows
        return count

    async def transaction(self) -> None:
        marker = f"tx-{uuid.uuid4().hex}"
        self.transactions.add(marker)
        row = {"event_type": "cancel.tx", "agent_id": marker, "metadata": {}}
        self.phases.set(self.start)
        async with self.store.db.transaction() as conn:
            await conn.execute(insert(audit_log).values(timestamp=datetime.now(UTC), **row))
            self.phases.set("mid-transaction")
            await asyncio.sleep(0.003)  # the body doing other work between its writes
            await conn.execute(insert(audit_log).values(timestamp=datetime.now(UTC), **row))
            self.phases.set("mid-transaction")


@dataclass
class Tally:
    """What happened to every task."""

    landed: collections.Counter[str] = field(default_factory=collections.Counter)
    completed_first: int = 0
    by_operation: collections.Counter[str] = field(default_factory=collections.Counter)
    #: tasks whose cancel() took effect but that did not end cancelled
    not_cancelled: list[str] = field(default_factory=list)
    #: tasks that failed although nothing but cancellation was injected
    failed: list[str] = field(default_factory=list)

    @property
    def total_landed(self) -> int:
        return sum(self.landed.values())


async def run_wave(workload: Workload, tally: Tally, max_delay: float) -> float:
    """Run one wave; return the next wave's max_delay."""
    loop = asyncio.get_running_loop()
    rng = workload.rng
    phases = workload.phases
    ops = workload.operations()
    tasks: dict[asyncio.Task[Any], tuple[str, bool]] = {}
    landed_in: dict[asyncio.Task[Any], str] = {}

    def cancel(task: asyncio.Task[Any]) -> None:
        phase = phases.of.get(task, "?")
        took = task.cancel()
        tasks[task] = (tasks[task][0], took)
        if took:
            tally.landed[phase] += 1
            landed_in[task] = phase

    for _ in range(WAVE):
        name, op = rng.choice(ops)
        task = loop.create_task(op())
        phases.of[task] = "not started"
        tasks[task] = (name, False)
        # a few are cancelled before they ever run; the rest after 0-5 ms
        delay = 0.0 if rng.random() < 0.04 else rng.uniform(0, max_delay)
        if delay == 0.0:
            cancel(task)
        else:
            loop.call_later(delay, cancel, task)
    await asyncio.wait(tasks)
    finished_first = 0
    for task, (name, took) in tasks.items():
        phases.of.pop(task, None)
        if took:
            tally.by_operation[name] += 1
            if not task.cancelled():
                outcome = repr(task.exception()) if task.exception() else "returned a result"
                tally.not_cancelled.append(f"{name} in {landed_in[task]}: {outcome}")
        else:
            finished_first += 1
            tally.completed_first += 1
            if task.cancelled():  # cancelled by something other than us
                tally.not_cancelled.append(f"{name}: cancelled without a cancel() from the test")
            elif task.exception() is not None:
                tally.failed.append(f"{name}: {task.exception()!r}")
    share = finished_first / len(tasks)
    factor = 1.5 if share < 0.2 else (0.7 if share > 0.5 else 1.0)
    low, high = DELAY_BOUNDS
    return min(high, max(low, max_delay * factor))


# -- leak and noise detectors ------------------------------------------------------


@dataclass
class Noise:
    """Warnings, loop exception reports, unraisable and thread exceptions, log records."""

    warnings: list[str] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)
    unraisable: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return self.warnings + self.loop_errors + self.unraisable + self.records


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"{record.name} {record.levelname}: {record.getMessage()}")


@contextlib.contextmanager
def listening(loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> Iterator[Noise]:
    """Collect every kind of noise an abandoned connection or task can make."""
    noise = Noise()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(
        lambda _loop, context: noise.loop_errors.append(
            f"{context.get('message')}: {context.get('exception')!r}"
        )
    )
    monkeypatch.setattr(
        sys, "unraisablehook", lambda u: noise.unraisable.append(f"{u.exc_value!r} in {u.object!r}")
    )
    monkeypatch.setattr(
        threading, "excepthook", lambda a: noise.unraisable.append(f"thread: {a.exc_value!r}")
    )
    handler = _Collect(noise.records)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield noise
            gc.collect()  # finalisers of anything abandoned run now, while we listen
        noise.warnings.extend(f"{w.category.__name__}: {w.message}" for w in caught)
    finally:
        root.removeHandler(handler)
        loop.set_exception_handler(previous)


def worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.endswith(WORKER_THREAD) and t.is_alive()}


async def settle(condition: Callable[[], Awaitable[bool]]) -> bool:
    """Wait (up to SETTLE seconds) until ``condition()`` holds."""
    deadline = time.monotonic() + SETTLE
    while True:
        if await condition():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)


async def server_sessions(server: Server, database: str) -> int:
    """Sessions the server holds on ``database`` (the admin connection is elsewhere)."""
    if server.dialect == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = :db"
    else:
        sql = "SELECT count(*) FROM information_schema.processlist WHERE db = :db"
    url = server.admin_url.set(
        drivername="postgresql+asyncpg" if server.dialect == "postgresql" else "mysql+aiomysql"
    )
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(sql), {"db": database})).scalar_one())
    finally:
        await engine.dispose()


# -- the test ----------------------------------------------------------------------


async def test_random_cancellations_leave_nothing_behind(
    backend_url: tuple[str, str],
    servers: dict[str, Server],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    backend, url = backend_url
    core = backend == "core"
    rng = random.Random()
    threads_before = worker_threads()
    loop = asyncio.get_running_loop()
    roomy = Store(Settings(database_url=url, backend=backend))
    # two connections, a long pool_timeout and pre-ping: most tasks of a wave wait for a
    # checkout, and every reused connection is pinged first
    tight = Store(
        Settings(
            database_url=url,
            backend=backend,
            pool_size=2,
            max_overflow=0,
            pool_timeout=60,
            pool_pre_ping=True,
        )
    )
    tally = Tally()
    with listening(loop, monkeypatch) as noise:
        async with roomy, tight:
            session = await roomy.sessions.create(purpose="cancellation", created_by="test")
            await roomy.messages.add_many(
                session.id,
                [NewMessage(sender="seed", content=f"seed row {i}") for i in range(SEED_MESSAGES)],
            )
            phases = Phases()
            workloads = [Workload(roomy, session.id, phases, rng, core)]
            if core:
                workloads.append(Workload(tight, session.id, phases, rng, core))
                for store in (roomy, tight):
                    phases.instrument(store)
            started = time.perf_counter()
            wave = 0
            delays = [FIRST_MAX_DELAY] * len(workloads)
            while tally.total_landed < TARGET:
                which = wave % len(workloads)
                delays[which] = await run_wave(workloads[which], tally, delays[which])
                wave += 1
                assert wave < 20 * TARGET // WAVE, f"cancellations rarely land: {tally}"
            elapsed = time.perf_counter() - started

            # quiesce: every connection back in its pool
            for store in (roomy, tight) if core else ():
                assert await settle(functools.partial(_idle, store)), store.db.pool_stats()
            # the store still works, on both pools
            for store in (roomy, tight):
                await store.messages.add(session.id, sender="after", content="still works")
                assert (await store.memory.set("after", "k", 1)).value == 1
                page = await store.messages.list(session.id, viewer=VIEWER, sender="after")
                assert page.items
                report = await store.health(timeout=10)
                assert report.ok, report.error
            for store in (roomy, tight) if core else ():
                assert await settle(functools.partial(_idle, store)), store.db.pool_stats()
        batches = {m: n for w in workloads for m, n in w.batches.items()}
        transactions = {m for w in workloads for m in w.transactions}

        # read back through a fresh connection: all or nothing
        fresh = ConnectionManager(Settings(database_url=url, auto_migrate=False))
        try:
            landed_batches = await _group_count(fresh, messages.c.sender, batches)
            landed_tx = await _group_count(fresh, audit_log.c.agent_id, transactions)
        finally:
            await fresh.dispose()

        # nothing outlives close(): no aiosqlite thread, no server session
        async def no_threads() -> bool:
            return not (worker_threads() - threads_before)

        assert await settle(no_threads), worker_threads() - threads_before
        dialect = roomy.dialect
        database = str(roomy.settings.effective_database_url.database)
        if roomy.settings.pooler_mode != "none":
            # behind PgBouncer the server sessions are the pooler's (kept for
            # its server_idle_timeout): ours are its client connections
            bouncer = request.getfixturevalue("shared_pgbouncer")

            def pooler_clients() -> list[list[str]]:
                return [row for row in bouncer.admin("SHOW CLIENTS") if row[2] == database]

            async def no_clients() -> bool:
                return pooler_clients() == []

            assert await settle(no_clients), pooler_clients()
        elif dialect in servers:
            server = servers[dialect]

            async def no_sessions() -> bool:
                return await server_sessions(server, database) == 0

            assert await settle(no_sessions), await server_sessions(server, database)

    partial = {m: (landed_batches.get(m, 0), n) for m, n in batches.items()}
    partial = {m: got for m, got in partial.items() if got[0] not in (0, got[1])}
    half_tx = {m: n for m, n in landed_tx.items() if n not in (0, 2)}
    whole_batches = sum(1 for m, n in batches.items() if landed_batches.get(m, 0) == n)
    whole_tx = sum(1 for m in transactions if landed_tx.get(m, 0) == 2)
    print(
        f"\n{backend}-{dialect}: {tally.total_landed} cancellations landed in {wave} waves "
        f"({elapsed:.1f} s, final max delays {[f'{d * 1000:.1f} ms' for d in delays]}), "
        f"{tally.completed_first} tasks completed before their cancel; "
        f"landed in: {dict(tally.landed.most_common())}; by operation: "
        f"{dict(tally.by_operation.most_common())}; batches {whole_batches}/{len(batches)} "
        f"landed whole, the rest not at all; transactions {whole_tx}/{len(transactions)} "
        f"committed whole, the rest not at all"
    )
    assert tally.total_landed >= TARGET
    assert tally.not_cancelled == [], collections.Counter(tally.not_cancelled)
    assert tally.failed == [], collections.Counter(tally.failed)
    assert noise.all() == [], collections.Counter(noise.all())
    assert partial == {}
    assert half_tx == {}
    # the fault really happened: cancellations landed inside the work, not only before it
    in_work = tally.total_landed - tally.landed["not started"]
    assert in_work >= TARGET // 2, tally.landed
    if core:
        assert tally.landed["pool wait"] > 0
        assert tally.landed["statement"] > 0
        assert tally.landed["mid-stream"] > 0
        # inside an open transaction: between its writes, or while it commits
        assert tally.landed["mid-transaction"] + tally.landed["commit"] > 0


async def _idle(store: Store) -> bool:
    stats = store.db.pool_stats()
    return stats is not None and stats.checked_out == 0


async def _group_count(db: ConnectionManager, column: Any, markers: Any) -> dict[str, int]:
    if not markers:
        return {}
    stmt = (
        select(column.label("marker"), func.count().label("n"))
        .where(column.in_(sorted(markers)))
        .group_by(column)
    )
    return {row["marker"]: int(row["n"]) for row in await db.fetch_all(stmt)}


# -- a forgotten close() ---------------------------------------------------------------

FORGETFUL = textwrap.dedent(
    """
    import asyncio, sys
    from contextstore import NewMessage, Settings, Store, Viewer

    KEPT = []  # still referenced at interpreter exit, never closed

    async def main(url, backend):
        store = Store(Settings(database_url=url, backend=backend))
        KEPT.append(store)
        await store.connect()
        session = await store.sessions.create(purpose="forgetful", created_by="script")
        await asyncio.gather(*(
            store.messages.add(session.id, sender=f"a{i}", content="hello there")
            for i in range(8)
        ))
        await store.messages.add_many(
            session.id, [NewMessage(sender="b", content=f"item {i}") for i in range(20)]
        )
        await store.memory.set("a", "k", {"v": 1})
        viewer = Viewer(agent_id="a", is_admin=True)
        assert await store.messages.count(session.id, viewer=viewer) == 28
        print("work done", flush=True)
        # returns without store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)

#: seconds a forgetful process may take to exit (imports included).
EXIT_BOUND = 20.0


def test_process_that_forgets_close_still_exits(
    backend_url: tuple[str, str], tmp_path: Path
) -> None:
    backend, url = backend_url
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-c", FORGETFUL, url, backend],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=EXIT_BOUND,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the process did not exit within {EXIT_BOUND:g} s: {exc.stderr!r}")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "work done" in result.stdout
    print(f"\n{backend} on {url.split(':')[0]}: exited in {elapsed:.2f} s without close()")
