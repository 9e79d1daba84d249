"""PostgreSQL failover through a multi-host ``database_url`` (``_pg_cluster``).

One Store writes continuously; the primary is stopped at once (``-m
immediate``) and a standby promoted. Writes resume on the new primary without
a new Store, every failure in between is a typed ``DatabaseUnavailableError``,
and every acknowledged write is read back from the new primary. The primary
waits for the promoted standby's flush at each COMMIT (``sync_standby``), as a
deployment that promises no lost acknowledged write must.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy.engine import make_url

from contextstore import DatabaseUnavailableError, Settings, Store, Viewer
from tests.topologies._pg_cluster import PgCluster, PgNode

pytestmark = [pytest.mark.asyncio, pytest.mark.postgresql, pytest.mark.replicas]

#: writes that must succeed on the new primary before the run ends
AFTER_PROMOTION = 100
#: seconds the writes may take to resume after the promotion
RESUME_WAIT = 60.0


def _multi_host(nodes: list[PgNode], database: str) -> str:
    hosts = "&".join(f"host=127.0.0.1:{node.port}" for node in nodes)
    return f"postgresql://postgres@/{database}?{hosts}"


async def test_writes_resume_after_a_failover_and_none_acknowledged_is_lost() -> None:
    cluster = PgCluster.create(sync_standby="standby1")
    try:
        url = cluster.server().create_database()
        database = make_url(url).database
        assert database is not None
        cluster.wait_replayed()
        new_primary, other = cluster.standbys
        # a standby listed first: the connection (and the automatic migration)
        # must still find the server that takes writes
        hosts = [new_primary, cluster.primary, other]
        settings = Settings(
            database_url=_multi_host(hosts, database), connect_timeout=2.0, statement_timeout=5.0
        )
        async with Store(settings) as store:
            session = await store.sessions.create(purpose="failover", created_by="tester")
            acknowledged: list[str] = []
            unknown: list[str] = []
            refused: list[str] = []
            stop = asyncio.Event()
            warmed = asyncio.Event()  # 100 writes acknowledged before the failover

            async def writer() -> None:
                number = 0
                while not stop.is_set():
                    number += 1
                    content = f"m{number}"
                    try:
                        await store.messages.add(session.id, sender="writer", content=content)
                    except DatabaseUnavailableError as exc:
                        (unknown if exc.may_have_committed else refused).append(content)
                        await asyncio.sleep(0.02)
                    else:
                        acknowledged.append(content)
                        if len(acknowledged) == 100:
                            warmed.set()

            task = asyncio.create_task(writer())
            await asyncio.wait_for(warmed.wait(), RESUME_WAIT)
            await asyncio.to_thread(cluster.primary.stop, "immediate")
            await asyncio.to_thread(new_primary.promote)
            promoted = len(acknowledged)
            deadline = time.monotonic() + RESUME_WAIT
            while len(acknowledged) < promoted + AFTER_PROMOTION and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                assert not task.done(), task  # an untyped error would end the writer
            stop.set()
            await task
            assert len(acknowledged) >= promoted + AFTER_PROMOTION, (len(acknowledged), promoted)
            # read back through the same Store (now on the new primary) and directly
            through_store: set[str] = set()
            cursor: str | None = None
            while True:
                page = await store.messages.list(
                    session.id, viewer=Viewer(agent_id="reader", is_admin=True), cursor=cursor
                )
                through_store.update(message.content for message in page.items)
                if (cursor := page.next_cursor) is None:
                    break
        stored = new_primary.sql(
            f"SELECT array_agg(content) FROM messages WHERE session_id = '{session.id}'", database
        )
        assert not new_primary.sql("SELECT pg_is_in_recovery()")
        lost = [content for content in acknowledged if content not in set(stored)]
        assert lost == []
        assert set(acknowledged) <= through_store
        # a refused write (nothing committed) was not written
        assert not set(refused) & set(stored)
        print(
            f"failover: {len(acknowledged)} acknowledged, {len(refused)} refused, "
            f"{len(unknown)} unknown outcome, 0 lost"
        )
    finally:
        cluster.destroy()


async def test_a_write_on_a_standby_is_a_typed_refusal(pg_cluster: PgCluster) -> None:
    url = pg_cluster.server().create_database()
    database = make_url(url).database
    assert database is not None
    async with Store(Settings(database_url=url)) as store:
        session = await store.sessions.create(purpose="standby", created_by="tester")
    pg_cluster.wait_replayed()
    standby = pg_cluster.standbys[0]
    settings = Settings(database_url=standby.url_for(database), auto_migrate=False)
    async with Store(settings) as on_standby:
        assert (await on_standby.sessions.get(session.id)) is not None
        with pytest.raises(DatabaseUnavailableError, match="accepts no writes") as caught:
            await on_standby.messages.add(session.id, sender="writer", content="refused")
        assert caught.value.may_have_committed is False


async def test_migration_never_runs_on_a_standby(pg_cluster: PgCluster) -> None:
    url = pg_cluster.server().create_database()
    database = make_url(url).database
    assert database is not None
    pg_cluster.wait_replayed()
    standby = pg_cluster.standbys[0]
    # only the standby: the migration is refused, typed, and nothing changes
    with pytest.raises(DatabaseUnavailableError):
        await Store(Settings(database_url=standby.url_for(database))).connect()
    # the standby first, then the primary: the migration runs on the primary
    nodes = [standby, pg_cluster.primary]
    async with Store(Settings(database_url=_multi_host(nodes, database))) as store:
        assert (await store.health(timeout=5.0)).schema_current is True
    assert pg_cluster.primary.sql("SELECT count(*) FROM sessions", database) == 0
