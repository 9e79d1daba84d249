# ruff: noqa: F811  (the fixtures are imported, then named as parameters)
"""contextstore behind PgBouncer 1.18 with its default configuration, both modes.

What the issue measured on main, and what these tests hold: in transaction
mode no statement relies on a named prepared statement (none is left on the
server connections, no call ever sees another client's result); nothing is
sent as a startup parameter PgBouncer refuses; ``statement_timeout`` is
enforced by the server, so a statement that timed out is gone from
``pg_stat_activity``; in session mode a pool larger than the pooler's gives
``PoolExhaustedError`` within ``pool_timeout`` instead of waiting for
PgBouncer's ``query_wait_timeout`` (120 s).

``CONTEXTSTORE_TEST_PGBOUNCER_SECONDS`` sets the mixed workload's duration
(default 10; the acceptance run is 60).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from contextstore import Settings, Store, Viewer
from contextstore.errors import PoolExhaustedError, QueryTimeoutError
from tests.faults._instances import PrivatePostgres
from tests.topologies._pgbouncer import (  # noqa: F401  (fixtures)
    PgBouncer,
    pgbouncer_postgres,
    pgbouncer_session,
    pgbouncer_transaction,
    running,
)

pytestmark = [pytest.mark.pgbouncer, pytest.mark.xdist_group("pgbouncer")]

TASKS = 50
SECONDS = float(os.environ.get("CONTEXTSTORE_TEST_PGBOUNCER_SECONDS", "10"))
ADMIN = Viewer(agent_id="checker", is_admin=True)


@pytest.fixture
def database(pgbouncer_postgres: PrivatePostgres) -> Iterator[str]:
    """A fresh database on the private server (its name)."""
    server = pgbouncer_postgres.server()
    url = server.create_database()
    name = make_url(url).database
    assert name is not None
    yield name
    server.drop_database(url)


def settings(bouncer: PgBouncer, database: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": bouncer.url(database),
        "pooler_mode": bouncer.mode,
        "connect_timeout": 5.0,
        "statement_timeout": 10.0,
    }
    values.update(overrides)
    return Settings(**values)


async def direct(instance: PrivatePostgres, database: str = "postgres") -> Any:
    """A raw session on the server itself, beside the pooler."""
    return await asyncpg.connect(
        host="127.0.0.1", port=instance.port, user="postgres", database=database, timeout=5
    )


@pytest.mark.parametrize("mode", ["transaction", "session"])
async def test_default_config_works_in_both_modes(
    mode: str,
    request: pytest.FixtureRequest,
    database: str,
    pgbouncer_postgres: PrivatePostgres,
) -> None:
    bouncer: PgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    async with Store(settings(bouncer, database)) as store:
        session = await store.sessions.create(purpose="pooled", created_by="t")
        sent = [
            await store.messages.add(session.id, sender="a", content=f"hello {n}") for n in range(5)
        ]
        await store.memory.set("a", "k", {"n": 1})
        page = await store.messages.list(session.id, viewer=ADMIN)
        assert [m.id for m in page.items] == [m.id for m in sent]
        entry = await store.memory.get("a", "k")
        assert entry is not None
        assert entry.value == {"n": 1}
        # application_name reaches the server through the pooler
        name = await store.db.fetch_value(select(func.current_setting("application_name")))
        assert name == "contextstore"
        report = await store.health(timeout=5.0)
        assert report.ok, report


@pytest.mark.parametrize(
    ("mode", "observed"),
    [("transaction", False), ("transaction", True), ("session", False)],
    ids=["transaction", "transaction-sqlalchemy-path", "session"],
)
async def test_statement_timeout_ends_the_statement_on_the_server(
    mode: str,
    observed: bool,
    request: pytest.FixtureRequest,
    database: str,
    pgbouncer_postgres: PrivatePostgres,
) -> None:
    """``observed``: echo_sql on, so every call goes through SQLAlchemy's own
    execution (its asyncpg adapter begins the transaction) instead of the
    execution core's wire."""
    bouncer: PgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    admin = await direct(pgbouncer_postgres)
    try:
        async with Store(
            settings(bouncer, database, statement_timeout=1.0, echo_sql=observed)
        ) as store:
            with pytest.raises(QueryTimeoutError) as raised:
                await store.db.fetch_value(select(func.pg_sleep(8)))
            # the server's own cancellation (SQLSTATE 57014), not the client's bound
            assert "statement timeout" in str(raised.value.__cause__)
            running_sleeps = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"
            )
            assert running_sleeps == 0
            # and the next statement works on the same pool
            assert await store.db.fetch_value(text("SELECT 41 + 1")) == 42
    finally:
        await admin.close()


async def prepared_per_server_connection(bouncer: PgBouncer, database: str) -> list[int]:
    """``pg_prepared_statements`` counted on every server connection the pooler
    holds for ``database``: as many clients as it has server connections each
    hold one in an open transaction at the same time, so each reads another."""
    servers = [row for row in bouncer.admin("SHOW SERVERS") if database in row]
    clients = [
        await asyncpg.connect(
            host="127.0.0.1",
            port=bouncer.port,
            user="postgres",
            database=database,
            statement_cache_size=0,
            timeout=5,
        )
        for _ in servers
    ]
    try:
        counts: dict[int, int] = {}
        for client in clients:
            await client.execute("BEGIN")  # held until every client has counted
            row = await client.fetchrow(
                "SELECT pg_backend_pid(), count(*) FROM pg_prepared_statements"
            )
            counts[row[0]] = row[1]
        # one server connection each: every one the pooler holds was counted
        assert len(counts) == len(clients)
        return list(counts.values())
    finally:
        for client in clients:
            await client.close()


async def test_mixed_workload_is_correct_in_transaction_mode(
    pgbouncer_transaction: PgBouncer, database: str, pgbouncer_postgres: PrivatePostgres
) -> None:
    """50 tasks of mixed writes and reads for SECONDS, every read checked
    against what the task wrote: 0 errors, 0 wrong results, and no prepared
    statement left on any server connection."""
    figures: dict[str, int] = {"calls": 0, "errors": 0, "wrong": 0}
    failures: list[str] = []
    async with Store(
        settings(pgbouncer_transaction, database, pool_size=20, max_overflow=0)
    ) as store:
        deadline = time.monotonic() + SECONDS

        async def worker(number: int) -> None:
            rng = random.Random(number)
            agent = f"agent{number}"
            session = await store.sessions.create(purpose=f"load {number}", created_by=agent)
            contents: dict[int, str] = {}
            memory: dict[str, int] = {}
            step = 0
            while time.monotonic() < deadline:
                step += 1
                op = rng.randrange(6)
                try:
                    wrong: str | None = None
                    if op == 0 or not contents:
                        content = f"{agent} says {step}"
                        message = await store.messages.add(
                            session.id, sender=agent, content=content
                        )
                        contents[message.id] = content
                    elif op == 1:
                        message_id = rng.choice(list(contents))
                        got = await store.messages.get(message_id, viewer=ADMIN)
                        if got is None or got.content != contents[message_id]:
                            wrong = f"message {message_id}: {got!r}"
                    elif op == 2:
                        key = f"k{rng.randrange(5)}"
                        memory[key] = step
                        await store.memory.set(agent, key, {"step": step, "agent": agent})
                    elif op == 3 and memory:
                        key = rng.choice(list(memory))
                        entry = await store.memory.get(agent, key)
                        if entry is None or entry.value != {"step": memory[key], "agent": agent}:
                            wrong = f"memory {key}: {entry!r}"
                    elif op == 4:
                        count = await store.messages.count(session.id, viewer=ADMIN)
                        if count != len(contents):
                            wrong = f"count {count} != {len(contents)}"
                    else:

                        async def pair(tx: Any, step: int = step) -> tuple[int, str]:
                            message = await tx.messages.add(
                                session.id, sender=agent, content=f"{agent} unit {step}"
                            )
                            await tx.memory.set(agent, "unit", {"step": step, "agent": agent})
                            return message.id, message.content

                        message_id, content = await store.run_transaction(pair)
                        contents[message_id] = content
                        memory["unit"] = step
                    figures["calls"] += 1
                    if wrong is not None:
                        figures["wrong"] += 1
                        failures.append(wrong)
                except Exception as exc:
                    figures["errors"] += 1
                    failures.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(worker(n) for n in range(TASKS)))
    counts = await prepared_per_server_connection(pgbouncer_transaction, database)
    print(
        f"\npgbouncer transaction mode, {TASKS} tasks x {SECONDS:g} s: {figures}, "
        f"server connections {len(counts)}, prepared statements on them {counts}"
    )
    assert failures[:5] == []
    assert figures["errors"] == 0
    assert figures["wrong"] == 0
    assert figures["calls"] > TASKS
    assert counts  # the pooler holds server connections for the database
    assert sum(counts) == 0


async def test_session_mode_pool_beyond_the_pooler_gives_pool_exhausted(
    pgbouncer_postgres: PrivatePostgres, database: str
) -> None:
    """contextstore's pool of 10 above PgBouncer's pool of 2: the calls that find
    no server connection fail with PoolExhaustedError within pool_timeout,
    the others succeed; nothing waits for query_wait_timeout (120 s)."""
    pool_timeout = 2.0
    with running(pgbouncer_postgres.port, "session", default_pool_size=2) as bouncer:
        async with Store(
            settings(bouncer, database, pool_size=10, max_overflow=0, pool_timeout=pool_timeout)
        ) as store:
            started = time.monotonic()

            async def call() -> tuple[Any, float]:
                try:
                    value: Any = await store.db.fetch_value(text("SELECT pg_sleep(1.0)::text"))
                except Exception as exc:
                    value = exc
                return value, time.monotonic() - started

            # a hang would last PgBouncer's query_wait_timeout (120 s)
            timed = await asyncio.wait_for(asyncio.gather(*(call() for _ in range(12))), timeout=60)
    results = [value for value, _ in timed]
    waits = sorted(round(elapsed, 2) for value, elapsed in timed if isinstance(value, Exception))
    print(f"\nPoolExhaustedError after {waits} s (pool_timeout {pool_timeout:g} s)")
    ok = [r for r in results if not isinstance(r, BaseException)]
    exhausted = [r for r in results if isinstance(r, PoolExhaustedError)]
    other = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, PoolExhaustedError)
    ]
    print(
        f"\nsession mode, pooler pool 2, contextstore pool 10: {len(ok)} ok, "
        f"{len(exhausted)} PoolExhaustedError"
    )
    assert other == []
    assert ok
    assert exhausted
    assert "pool_timeout" in str(exhausted[0])


async def test_driver_options_in_the_url_query_work(
    pgbouncer_transaction: PgBouncer, database: str
) -> None:
    """``?statement_cache_size=0`` used to fail inside asyncpg ('<' not
    supported between 'str' and 'int'): it is an int now, through the pooler."""
    url = pgbouncer_transaction.url(database) + (
        "?statement_cache_size=0&prepared_statement_cache_size=0&max_cacheable_statement_size=4096"
    )
    async with Store(Settings(database_url=url, pooler_mode="transaction")) as store:
        session = await store.sessions.create(purpose="query options", created_by="t")
        assert (await store.sessions.get(session.id)) == session


async def test_a_server_side_limit_serves_reads_without_a_transaction(
    pgbouncer_transaction: PgBouncer, database: str, pgbouncer_postgres: PrivatePostgres
) -> None:
    """The cheaper set-up the guide describes: the database's own
    statement_timeout, contextstore's None; a long statement still ends on
    the server with QueryTimeoutError."""
    admin = await direct(pgbouncer_postgres)
    try:
        await admin.execute(f"ALTER DATABASE \"{database}\" SET statement_timeout = '1s'")
        async with Store(
            settings(pgbouncer_transaction, database, statement_timeout=None)
        ) as store:
            with pytest.raises(QueryTimeoutError) as raised:
                await store.db.fetch_value(select(func.pg_sleep(8)))
            assert "statement timeout" in str(raised.value.__cause__)
    finally:
        await admin.close()
