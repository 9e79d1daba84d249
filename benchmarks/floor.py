"""How fast could any client be? The database's own time next to the ORM's and legacy's.

    uv run python benchmarks/floor.py [--dialect D ...] [--rounds N]

Some targets ask core for more than the database leaves to any client: core
>= 2x the ORM (and >= 3x legacy) on ``search``, where nearly all of a call
is the database running the query, and on MariaDB's ``add_many 1k``, where
most of it is the server inserting the rows. Every subject sends the same
statement, so no client can take less than the database's own time for it.
For those operations this script measures, in one process, on the full
benchmark's data (100,000 messages; ``--messages`` to change):

* each subject's median call time (raw, core, ORM, and legacy on SQLite),
  and the database's own time, in interleaved rounds;
* as the database's own time for the statement raw sends: PostgreSQL's
  ``EXPLAIN (ANALYZE, TIMING OFF)`` execution time (no planning: a
  prepared statement may run a cached plan); MariaDB's
  ``ANALYZE FORMAT=JSON`` time for the search, and for the insert, the
  statement raw's driver would send, its text built beforehand, sent and
  committed; SQLite's own ``sqlite3`` call in this thread, no event loop;

and prints the best ratio a client could reach: the ORM's (or legacy's)
median over the database's time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if not __package__:
    # run as a file: put the repository root on the path instead of benchmarks/
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from rich.console import Console

from benchmarks.corpus import VIEWER_ID, VIEWER_TYPE, utcnow
from benchmarks.plan import DIALECTS, WRITE_SESSION, Plan
from benchmarks.scratch import Scratch
from benchmarks.subjects import StoreSubject, Subject, orm_subject, raw_subject
from benchmarks.subjects.orm import search_query
from benchmarks.subjects.raw_mysql import RawMySQL
from benchmarks.subjects.raw_postgresql import RawPostgreSQL
from benchmarks.subjects.raw_sqlite import RawSQLite
from benchmarks.workload import prepare

Timed = Callable[[], Awaitable[object]]
#: the entry of the database's own time among the timed calls
DATABASE = "database"


@dataclass
class Floor:
    """One operation's medians (ms per call, by subject) and the database's own time."""

    dialect: str
    operation: str
    times: dict[str, float]
    database: float

    def best(self, other: str) -> float:
        """core/``other`` for a client that took no time beside the database's."""
        return self.times[other] / self.database


async def _medians(calls: dict[str, Timed], rounds: int, per_round: int) -> dict[str, float]:
    """Median milliseconds per call of each of ``calls``, in interleaved rounds;
    a call that returns a float reports its own milliseconds (the database's
    time, read from the server) instead of the wall time around it."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for name in names:
        await calls[name]()  # warm-up
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            for _ in range(per_round):
                started = time.perf_counter()
                reported = await calls[name]()
                wall = (time.perf_counter() - started) * 1e3
                samples[name].append(reported if isinstance(reported, float) else wall)
    return {name: statistics.median(values) for name, values in samples.items()}


async def _search_floor(
    raw: Subject, query: str, dialect: str, closing: list[Callable[[], None]]
) -> Timed:
    """The database's own time for raw's search statement, as a timed call
    returning milliseconds; what must be closed afterwards goes to ``closing``."""
    if isinstance(raw, RawPostgreSQL):
        terms = search_query(dialect, query)
        explain = f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {raw._search}"

        async def postgresql() -> float:
            (plan,) = json.loads(await raw._conn.fetchval(explain, terms, VIEWER_ID, VIEWER_TYPE))
            # planning left out: a prepared statement may run a cached plan
            return float(plan["Execution Time"])

        return postgresql
    if isinstance(raw, RawMySQL):
        words = search_query(dialect, query)

        async def mysql() -> float:
            async with raw._conn.cursor() as cursor:
                await cursor.execute(
                    f"ANALYZE FORMAT=JSON {raw._search}", (words, words, VIEWER_ID, VIEWER_TYPE)
                )
                ((text,),) = await cursor.fetchall()
            return float(json.loads(text)["query_block"]["r_total_time_ms"])

        return mysql
    if not isinstance(raw, RawSQLite):
        raise TypeError(dialect)
    match = search_query(dialect, query)
    connection = sqlite3.connect(raw._path)
    closing.append(connection.close)

    async def sqlite() -> float:
        started = time.perf_counter()
        connection.execute(raw._search, (match, VIEWER_ID, VIEWER_TYPE)).fetchall()
        return (time.perf_counter() - started) * 1e3

    return sqlite


async def _insert_floor(raw: RawMySQL, rows: list[tuple[Any, ...]]) -> float:
    """Milliseconds the server takes for ``rows`` as the multi-row INSERT raw's
    driver sends (its text built beforehand), committed."""
    conn = raw._conn
    values = ",".join("(" + ",".join(conn.literal(value) for value in row) + ")" for row in rows)
    statement = raw._insert.split(" VALUES ")[0] + " VALUES " + values
    started = time.perf_counter()
    await conn.begin()
    async with conn.cursor() as cursor:
        await cursor.execute(statement)
    await conn.commit()
    return (time.perf_counter() - started) * 1e3


async def floor(dialect: str, messages: int, rounds: int, console: Console) -> list[Floor]:
    """Measure and print the floors of ``dialect``; empty when its server is unreachable."""
    plan = Plan(
        mode="custom",
        session_messages=messages,
        far_page=2,  # prepare() walks to it; no page is timed here
        bulk_small=1_000,
        bulk_large=1_000,
        rounds=rounds,
        large_rounds=rounds,
        budget=0.5,
    )
    scratch = Scratch(dialect)
    reason = await scratch.create()
    if reason is not None:
        console.print(f"{dialect}: skipped - {reason}")
        return []
    subjects: list[Subject] = []
    closing: list[Callable[[], None]] = []
    found: list[Floor] = []
    try:
        core = StoreSubject("core", scratch.store_url(), backend="core")
        raw = raw_subject(dialect, scratch)
        orm = orm_subject(scratch)
        timed: list[Subject] = [raw, core, orm]
        if dialect == "sqlite":
            timed.append(StoreSubject("legacy", scratch.store_url(), backend="legacy"))
        for subject in (core, *timed):  # core first: it migrates the scratch database
            if subject not in subjects:
                await subject.open()
                subjects.append(subject)
        ctx = await prepare(plan, core, raw, console, dialect, orm=orm)
        query = ctx.query
        calls: dict[str, Timed] = {s.name: (lambda s=s: s.search(query)) for s in timed}
        calls[DATABASE] = await _search_floor(raw, query, dialect, closing)
        times = await _medians(calls, rounds, 5)
        found.append(Floor(dialect, "search", times, times.pop(DATABASE)))
        if isinstance(raw, RawMySQL):
            batch = ctx.writes[:1_000]
            calls = {s.name: (lambda s=s: s.add_many(WRITE_SESSION, batch)) for s in timed}
            now = raw._naive(utcnow())
            rows = [raw._row(WRITE_SESSION, item, now) for item in batch]
            calls[DATABASE] = lambda: _insert_floor(raw, rows)
            times = await _medians(calls, rounds, 1)
            found.append(Floor(dialect, "add_many 1k", times, times.pop(DATABASE)))
    finally:
        for close in closing:
            close()
        for subject in reversed(subjects):
            await subject.close()
        await scratch.drop()
    for each in found:
        _report(console, each)
    return found


def _report(console: Console, found: Floor) -> None:
    times = found.times
    each = ", ".join(f"{name} {value:.2f}" for name, value in times.items())
    console.print(
        f"{found.dialect} {found.operation}: median ms {each}; "
        f"the database's own {found.database:.2f}"
    )
    for other in ("orm", "legacy"):
        if other in times:
            console.print(
                f"  core/{other} at best {found.best(other):.2f} (a client taking no time"
                f" beside the database's); raw/{other} {times[other] / times['raw']:.2f};"
                f" core/{other} {times[other] / times['core']:.2f}"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="floor", description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", action="append", choices=DIALECTS)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    console = Console()
    for dialect in args.dialect or list(DIALECTS):
        asyncio.run(floor(dialect, args.messages, args.rounds, console))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
