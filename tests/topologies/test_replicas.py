"""Read replicas on a real primary with two hot standbys (``_pg_cluster``).

What is shown, each by the servers' own answers: single reads are served by
the standbys (``inet_server_port()`` of the server that answered, and each
standby's own ``pg_stat_database`` counters), a task reads its own writes
(1,000 write-then-read pairs, also with a standby whose replay is paused),
a stopped standby fails no read and shows ``ok=False`` in ``health()``, and a
write never reaches a standby.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import func, select

from contextstore import ReplicaHealth, Settings, Store, Viewer
from tests.topologies._pg_cluster import PgCluster

pytestmark = [pytest.mark.asyncio, pytest.mark.postgresql, pytest.mark.replicas]

ADMIN = Viewer(agent_id="agent", is_admin=True)
#: seconds a restarted standby may take to serve reads again
BACK_WAIT = 30.0
#: seconds a standby's statistics may take to show a reader's transactions
STATS_WAIT = 30.0


@pytest.fixture
def cluster(pg_cluster: PgCluster) -> Iterator[PgCluster]:
    """The worker's cluster, every standby running and replaying at the end of the test."""
    yield pg_cluster
    for node in pg_cluster.standbys:
        node.thaw()
        if not node.running:
            node.start()
        else:
            node.sql("SELECT pg_wal_replay_resume()")


@pytest.fixture
async def store(cluster: PgCluster, postgresql_replicas_empty_url: str) -> AsyncIterator[Store]:
    url = postgresql_replicas_empty_url
    replicas = [node.url_for(_database(url)) for node in cluster.standbys]
    settings = Settings(database_url=url, replica_urls=replicas, connect_timeout=2.0)
    async with Store(settings) as connected:
        cluster.wait_replayed()  # the schema, for reads of other tasks
        yield connected


def _database(url: str) -> str:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name is not None
    return name


def _commits(node_sql: object, database: str) -> int:
    return int(
        node_sql(  # type: ignore[operator]
            f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database}'"
        )
        or 0
    )


async def test_single_reads_are_served_by_the_standbys(cluster: PgCluster, store: Store) -> None:
    database = _database(store.settings.effective_database_url.render_as_string())
    before = [_commits(node.sql, database) for node in cluster.standbys]
    ports = [await store.db.fetch_value(select(func.inet_server_port())) for _ in range(200)]
    standby_ports = {node.port for node in cluster.standbys}
    assert set(ports) == standby_ports, "every read on a standby, spread over both"
    for port in standby_ports:
        assert ports.count(port) >= 50
    # the repositories' reads too, counted by each standby itself
    session = await store.sessions.create(purpose="replicated", created_by="tester")
    cluster.wait_replayed()
    for _ in range(100):
        assert (await store.sessions.get(session.id)).purpose == "replicated"
        await store.messages.list(session.id, viewer=ADMIN, limit=5)
    deadline = time.monotonic() + STATS_WAIT
    while True:
        grown = [
            _commits(node.sql, database) - was
            for node, was in zip(cluster.standbys, before, strict=True)
        ]
        if all(count >= 100 for count in grown) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert all(count >= 100 for count in grown), grown


async def test_a_task_reads_its_own_writes(cluster: PgCluster, store: Store) -> None:
    session = await store.sessions.create(purpose="pairs", created_by="tester")
    stale = 0
    for number in range(1000):
        await store.memory.set("agent", "counter", number, session_id=session.id)
        entry = await store.memory.get("agent", "counter", session_id=session.id)
        if entry is None or entry.value != number:
            stale += 1
    assert stale == 0
    # a unit of work's writes, then single reads
    for number in range(200):
        async with store.transaction() as tx:
            await tx.memory.set("agent", "unit", number, session_id=session.id)
        entry = await store.memory.get("agent", "unit", session_id=session.id)
        if entry is None or entry.value != number:
            stale += 1
    assert stale == 0
    served = {await store.db.fetch_value(select(func.inet_server_port())) for _ in range(20)}
    assert served <= {node.port for node in cluster.standbys}


async def test_a_paused_standby_serves_no_stale_read(cluster: PgCluster, store: Store) -> None:
    session = await store.sessions.create(purpose="paused", created_by="tester")
    cluster.wait_replayed()
    cluster.standbys[0].sql("SELECT pg_wal_replay_pause()")
    stale = 0
    for number in range(200):
        await store.messages.add(session.id, sender="agent", content=f"m{number}")
        page = await store.messages.list(session.id, viewer=ADMIN, limit=500)
        if len(page.items) != number + 1:
            stale += 1
    assert stale == 0
    cluster.standbys[0].sql("SELECT pg_wal_replay_resume()")


async def test_a_stopped_standby_fails_no_read_and_shows_in_health(
    cluster: PgCluster, store: Store
) -> None:
    session = await store.sessions.create(purpose="one down", created_by="tester")
    cluster.wait_replayed()
    for _ in range(20):  # both standbys hold pooled connections now
        await store.sessions.get(session.id)
    cluster.standbys[0].stop()
    failed = 0
    ports = set()
    for _ in range(200):
        try:
            assert (await store.sessions.get(session.id)).purpose == "one down"
            ports.add(await store.db.fetch_value(select(func.inet_server_port())))
        except Exception:
            failed += 1
    assert failed == 0
    assert cluster.standbys[0].port not in ports
    report = await store.health(timeout=5.0)
    assert report.ok is True  # the primary answers
    assert [each.ok for each in report.replicas] == [False, True]
    down, up = report.replicas
    assert isinstance(down, ReplicaHealth)
    assert down.error is not None
    assert up.error is None
    assert up.lag_ms is not None
    assert str(cluster.standbys[1].port) in up.url
    # back: a probe finds it answering, and it serves reads again
    await asyncio.to_thread(cluster.standbys[0].start)
    deadline = time.monotonic() + BACK_WAIT
    while cluster.standbys[0].port not in ports and time.monotonic() < deadline:
        ports.add(await store.db.fetch_value(select(func.inet_server_port())))
        await asyncio.sleep(0.01)
    assert cluster.standbys[0].port in ports


async def test_health_lists_every_replica_masked(cluster: PgCluster) -> None:
    server = cluster.server()
    url = server.create_database()
    try:
        cluster.wait_replayed()
        replicas = [
            node.url_for(_database(url)).replace("postgres@", "postgres:s3cret@")
            for node in cluster.standbys
        ]
        async with Store(Settings(database_url=url, replica_urls=replicas)) as store:
            report = await store.health(timeout=5.0)
        assert len(report.replicas) == 2
        assert all(each.ok for each in report.replicas), report.replicas
        text = report.model_dump_json()
        assert "s3cret" not in text
        assert "***" in report.replicas[0].url
    finally:
        server.drop_database(url)


async def test_without_replicas_health_lists_none(postgresql_replicas_empty_url: str) -> None:
    async with Store(Settings(database_url=postgresql_replicas_empty_url)) as store:
        report = await store.health(timeout=5.0)
    assert report.ok is True
    assert report.replicas == []


async def test_a_write_never_reaches_a_standby(cluster: PgCluster, store: Store) -> None:
    session = await store.sessions.create(purpose="writes", created_by="tester")
    for number in range(50):
        await store.messages.add(session.id, sender="agent", content=f"w{number}")
        async with store.transaction() as tx:
            await tx.memory.set("agent", f"k{number}", number)
    # a standby refuses every write (25006): had one gone there, it would have failed
    assert (await store.messages.list(session.id, viewer=ADMIN, limit=100)).items[
        -1
    ].content == "w49"
    database = _database(store.settings.effective_database_url.render_as_string())
    written = cluster.primary.sql("SELECT count(*) FROM agent_memory", database)
    assert written == 50


async def test_a_hung_standby_fails_no_read_and_health_answers_in_time(
    cluster: PgCluster, postgresql_replicas_empty_url: str
) -> None:
    url = postgresql_replicas_empty_url
    replicas = [node.url_for(_database(url)) for node in cluster.standbys]
    settings = Settings(
        database_url=url, replica_urls=replicas, connect_timeout=1.0, statement_timeout=1.0
    )
    async with Store(settings) as store:
        session = await store.sessions.create(purpose="hung", created_by="tester")
        cluster.wait_replayed()
        for _ in range(20):
            await store.sessions.get(session.id)
        cluster.standbys[0].freeze()
        failed = 0
        for _ in range(100):
            try:
                assert (await store.sessions.get(session.id)) is not None
            except Exception:
                failed += 1
        assert failed == 0
        report = await store.health(timeout=1.0)
        cluster.standbys[0].thaw()
    assert [each.ok for each in report.replicas] == [False, True]
    assert report.replicas[0].error is not None


async def test_a_task_reads_what_the_tasks_it_started_wrote(store: Store) -> None:
    session = await store.sessions.create(purpose="children", created_by="tester")
    stale = 0
    for round_ in range(50):
        await asyncio.gather(
            *(
                store.messages.add(session.id, sender="child", content=f"r{round_}c{child}")
                for child in range(4)
            )
        )
        page = await store.messages.list(session.id, viewer=ADMIN, limit=500)
        if len(page.items) != 4 * (round_ + 1):
            stale += 1
    assert stale == 0


async def test_tasks_started_after_a_write_share_its_fence_on_paused_standbys(
    cluster: PgCluster, store: Store
) -> None:
    session = await store.sessions.create(purpose="paused children", created_by="tester")
    for round_ in range(10):
        # the standbys have replayed all so far, and this task's position is
        # known: a fence the children's writes did not move would let the
        # read below go to a standby that has not replayed them
        cluster.wait_replayed()
        await store.messages.list(session.id, viewer=ADMIN, limit=500)
        for node in cluster.standbys:
            node.sql("SELECT pg_wal_replay_pause()")
        await asyncio.gather(
            *(
                store.messages.add(session.id, sender="child", content=f"r{round_}c{child}")
                for child in range(4)
            )
        )
        page = await store.messages.list(session.id, viewer=ADMIN, limit=500)
        assert len(page.items) == 4 * (round_ + 1), f"round {round_}: a stale read"
        for node in cluster.standbys:
            node.sql("SELECT pg_wal_replay_resume()")
