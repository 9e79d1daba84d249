"""Where does a core operation spend its time? Round trips, statements, cache hits, CPU.

    uv run python benchmarks/profile_ops.py trips [--dialect D ...] [--op OP ...]
    uv run --with pyinstrument python benchmarks/profile_ops.py cpu --dialect D --op OP

``trips`` runs each operation through the core Store and counts, per call:

* network round trips (PostgreSQL, MariaDB): the Store connects through a small
  counting TCP proxy; one round trip is a client send that follows a server
  reply (so pipelined messages count once), pool pre-pings and pool resets
  included;
* aiosqlite thread hops (SQLite): calls into the connection's worker thread;
* the statements SQLAlchemy executed, BEGIN/COMMIT/ROLLBACK, and whether each
  statement's compiled form came from the cache (``context.cache_hit``).

The same counts for the raw driver subject of the benchmark (``benchmarks``) are
printed next to them. ``cpu`` profiles N calls with pyinstrument (if
installed) and prints the call tree. Neither mode asserts anything.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import event

if not __package__:
    # run as a file, sys.path[0] is benchmarks/ itself: put the repository root
    # there instead, so that `benchmarks` imports as a package (as in bench.py)
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from benchmarks.plan import DIALECTS, Plan, operations
from benchmarks.scratch import Scratch
from benchmarks.subjects import (
    RawMySQL,
    RawPostgreSQL,
    RawSubject,
    StoreSubject,
    Subject,
    raw_subject,
)
from benchmarks.workload import call_for, prepare

OPS = ("get", "add", "list", "memory_get", "memory_set", "search", "add_many", "unit_of_work")


class CountingProxy:
    """A TCP proxy in the same event loop counting request/response turns."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.round_trips = 0
        self.bytes_up = 0
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        s_reader, s_writer = await asyncio.open_connection(self.host, self.port)
        state = {"last": "s2c"}

        async def pump(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
        ) -> None:
            try:
                while data := await reader.read(65536):
                    if direction == "c2s":
                        if state["last"] != "c2s":
                            self.round_trips += 1
                        self.bytes_up += len(data)
                    state["last"] = direction
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(c_reader, s_writer, "c2s"), pump(s_reader, c_writer, "s2c"))


class HopCounter:
    """Counts aiosqlite worker-thread hops (every ``Connection._execute``)."""

    def __init__(self) -> None:
        import aiosqlite.core

        self.hops = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self._original: Any = aiosqlite.core.Connection._execute
        counter = self

        async def counted(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            counter.hops += 1
            counter.kinds[getattr(fn, "__name__", repr(fn))] += 1
            return await counter._original(conn, fn, *args, **kwargs)

        aiosqlite.core.Connection._execute = counted  # type: ignore[method-assign,assignment]

    def restore(self) -> None:
        import aiosqlite.core

        aiosqlite.core.Connection._execute = self._original  # type: ignore[method-assign]


class StatementLog:
    """SQLAlchemy events on the core engine: statements, transactions, cache hits."""

    def __init__(self, sync_engine: Any) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.cache: collections.Counter[str] = collections.Counter()
        self.statements: list[str] = []

        @event.listens_for(sync_engine, "after_cursor_execute")
        def _after(
            conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
        ) -> None:
            self.counts["statement"] += 1
            if context is not None and hasattr(context, "_get_cache_stats"):
                self.cache[context._get_cache_stats().split(" ")[0].strip("[]")] += 1
            self.statements.append(" ".join(statement.split())[:110])

        for name in ("begin", "commit", "rollback"):
            sync_engine_listen(sync_engine, name, self.counts)
        for name in ("checkout", "checkin", "reset"):
            sync_pool_listen(sync_engine.pool, name, self.counts)

    def reset(self) -> None:
        self.counts.clear()
        self.cache.clear()
        self.statements.clear()


def sync_engine_listen(engine: Any, name: str, counts: collections.Counter[str]) -> None:
    def handler(*_args: Any) -> None:
        counts[name] += 1

    event.listen(engine, name, handler)


def sync_pool_listen(pool: Any, name: str, counts: collections.Counter[str]) -> None:
    def handler(*_args: Any) -> None:
        counts[f"pool {name}"] += 1

    event.listen(pool, name, handler)


def op_call(op: str, subject: Subject, ctx: Any) -> Callable[[int], Awaitable[object]]:
    key = {"list": "list_newest", "add_many": "add_many_small"}.get(op, op)
    spec = next(s for s in operations(PLAN) if s.key == key)
    return call_for(spec, subject, ctx, PLAN)


PLAN = Plan(
    mode="profile",
    session_messages=10_000,
    far_page=20,
    bulk_small=1000,
    bulk_large=100,
    rounds=1,
    large_rounds=1,
    budget=0.1,
)


async def open_dialect(
    dialect: str, *, proxy: bool
) -> tuple[Scratch, StoreSubject, RawSubject, Any, CountingProxy | None]:
    """Scratch database, core and raw subjects (both through the counting proxy if asked)."""
    scratch = Scratch(dialect)
    reason = await scratch.create()
    if reason is not None:
        raise SystemExit(reason)
    url = scratch.store_url()
    counting: CountingProxy | None = None
    raw: RawSubject
    if proxy and dialect != "sqlite" and scratch.url is not None:
        counting = CountingProxy(scratch.url.host or "127.0.0.1", scratch.url.port or 0)
        port = await counting.start()
        proxied = scratch.url.set(host="127.0.0.1", port=port)
        url = proxied.render_as_string(hide_password=False)
        raw = RawPostgreSQL(proxied) if dialect == "postgresql" else RawMySQL(proxied)
    else:
        raw = raw_subject(dialect, scratch)
    core = StoreSubject("core", url, backend="core")
    await core.open()
    await raw.open()
    ctx = await prepare(PLAN, core, raw, Console(stderr=True), dialect)
    return scratch, core, raw, ctx, counting


async def close_dialect(scratch: Scratch, core: StoreSubject, raw: RawSubject, proxy: Any) -> None:
    await raw.close()
    await core.close()
    if proxy is not None:
        await proxy.close()
    await scratch.drop()


async def trips(dialects: list[str], ops: list[str], calls: int) -> None:
    """Per call: round trips (servers) or thread hops (SQLite), statements, cache hits."""
    for dialect in dialects:
        scratch, core, raw, ctx, proxy = await open_dialect(dialect, proxy=True)
        hops = HopCounter() if dialect == "sqlite" else None
        log = StatementLog(core.store.db.engine.sync_engine)
        unit = "thread hops" if hops else "round trips"
        try:
            print(f"\n== {dialect}: {unit} per call (core / raw), core statements per call")
            for op in ops:
                per: dict[str, float] = {}
                for subject in (core, raw):
                    call = op_call(op, subject, ctx)
                    for n in range(5):  # warm caches and the pool
                        await call(n)
                    log.reset()
                    before = hops.hops if hops else proxy.round_trips if proxy else 0
                    for n in range(calls):
                        await call(100 + n)
                    after = hops.hops if hops else proxy.round_trips if proxy else 0
                    per[subject.name] = (after - before) / calls
                    if subject is core:
                        counts = {k: round(v / calls, 2) for k, v in sorted(log.counts.items())}
                        cache = dict(log.cache)
                        statements = list(dict.fromkeys(log.statements))
                print(
                    f"{op:<12} {unit}: core {per['core']:.2f} / raw {per['raw']:.2f}; "
                    f"{counts}; compiled cache {cache}"
                )
                for statement in statements:
                    print(f"{'':<13}{statement}")
        finally:
            if hops:
                hops.restore()
            await close_dialect(scratch, core, raw, proxy)


async def cpu(dialect: str, op: str, calls: int) -> None:
    try:
        from pyinstrument import Profiler  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise SystemExit("cpu mode needs pyinstrument: uv run --with pyinstrument ...") from None
    scratch, core, raw, ctx, proxy = await open_dialect(dialect, proxy=False)
    try:
        call = op_call(op, core, ctx)
        for n in range(20):
            await call(n)
        profiler = Profiler(interval=0.0002, async_mode="enabled")
        profiler.start()
        for n in range(calls):
            await call(1000 + n)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    finally:
        await close_dialect(scratch, core, raw, proxy)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="profile_ops", description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("trips", "cpu"))
    parser.add_argument("--dialect", action="append", choices=DIALECTS)
    parser.add_argument("--op", action="append", choices=OPS)
    parser.add_argument("--calls", type=int, default=None)
    args = parser.parse_args(argv)
    dialects = args.dialect or list(DIALECTS)
    ops = args.op or ["get", "add", "list", "memory_get", "memory_set"]
    if args.mode == "trips":
        asyncio.run(trips(dialects, ops, args.calls or 20))
    else:
        for dialect in dialects:
            for op in ops:
                print(f"\n===== {dialect} {op}")
                asyncio.run(cpu(dialect, op, args.calls or 500))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
