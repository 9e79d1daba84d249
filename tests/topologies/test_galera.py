"""contextstore on a three-node MariaDB Galera cluster (tests/topologies/_galera.py).

What is checked, against real nodes:

* two Stores on two nodes setting one memory key 500 times each: every call
  returns the entry it wrote or raises a typed error, the key stays one row on
  every node, and no acknowledged write is lost (see :func:`assert_no_lost_write`);
* the same with a third Store on a node killed (SIGKILL) mid-run: that Store's
  calls fail with typed errors, the other two go on to the end;
* a certification conflict (another node's write wins) is a rollback that
  ``run_transaction`` runs again, that ``transaction()`` reports as
  ``DatabaseUnavailableError(may_have_committed=False)`` (at COMMIT, or at the
  next statement of a unit another node's write overtook), and increments in
  units of work on two nodes are never lost nor applied twice;
* read your writes across nodes: a write acknowledged on node 1 is seen by the
  next read on node 3, 200 times in 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text

from contextstore import Settings, Store, Transaction
from contextstore.errors import (
    ContextStoreError,
    DatabaseUnavailableError,
    QueryTimeoutError,
)

from ._galera import GaleraCluster, galera_database

pytestmark = [pytest.mark.galera]

#: the errors a call may end with while nodes conflict or one is lost.
TYPED = (DatabaseUnavailableError, QueryTimeoutError)
AGENT = "agent"
KEY = "shared"
CALLS = 500


def settings(url: str) -> Settings:
    """Short bounds, so a lost node shows within seconds."""
    return Settings(
        database_url=url,
        connect_timeout=2.0,
        statement_timeout=5.0,
        pool_timeout=5.0,
    )


def on_node(url: str, port: int) -> str:
    """``url`` (a database on node 1) pointed at the node listening on ``port``."""
    head, database = url.rsplit("/", 1)
    return f"{head.rsplit(':', 1)[0]}:{port}/{database}"


@dataclass
class Writer:
    """One Store's run of ``memory.set`` calls on the shared key, in order."""

    tag: str
    store: Store
    #: (value, "ok") or (value, the error) per call, in call order.
    outcomes: list[tuple[str, Any]] = field(default_factory=list)
    #: monotonic time each call began and ended.
    began: list[float] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)
    #: called after each call (tests wait on what it sets).
    watch: Any = None

    async def run(self, calls: int, stop: asyncio.Event | None = None) -> None:
        for number in range(calls):
            if stop is not None and stop.is_set():
                return
            value = f"{self.tag}-{number}"
            self.began.append(time.monotonic())
            try:
                entry = await self.store.memory.set(AGENT, KEY, value)
            except ContextStoreError as exc:
                self.outcomes.append((value, exc))
            else:
                # the entry returned is the row as stored by this call
                assert entry.value == value, (entry.value, value)
                self.outcomes.append((value, "ok"))
            self.ended.append(time.monotonic())
            if self.watch is not None:
                self.watch(self)

    def acknowledged(self) -> list[str]:
        return [value for value, outcome in self.outcomes if outcome == "ok"]

    def errors(self) -> list[BaseException]:
        return [outcome for _, outcome in self.outcomes if outcome != "ok"]

    def unknown_after_last_ack(self) -> list[str]:
        """Values whose call may have committed, issued after this writer's last
        acknowledged one (each of them may be the last write of this writer)."""
        last = max((i for i, (_, o) in enumerate(self.outcomes) if o == "ok"), default=-1)
        return [
            value
            for value, outcome in self.outcomes[last + 1 :]
            if isinstance(outcome, DatabaseUnavailableError) and outcome.may_have_committed
        ]


def assert_only_typed(writers: list[Writer]) -> None:
    for writer in writers:
        for error in writer.errors():
            assert isinstance(error, TYPED), f"{writer.tag}: untyped {error!r}"


def assert_no_lost_write(final: str, survivors: list[Writer]) -> None:
    """No acknowledged write is lost.

    Each writer's calls are sequential, so each acknowledged write of a writer
    is superseded by its own next acknowledged one; what remains to check is
    its last. The key's final value must therefore be the last acknowledged
    write of one of the writers that ran to the end (or a later write of one of
    them whose outcome was reported unknown, ``may_have_committed=True``): a
    final value older than some writer's last acknowledged write, or written
    by nobody, would mean an acknowledged write vanished or was overwritten by
    an older one. Together with every acknowledged call returning the row it
    stored (``Writer.run``), each acknowledged write was the stored value at
    its commit and is either the final value or superseded by a later write.
    """
    allowed = set()
    for writer in survivors:
        acked = writer.acknowledged()
        assert acked, f"{writer.tag} had no acknowledged write"
        allowed.add(acked[-1])
        allowed.update(writer.unknown_after_last_ack())
    assert final in allowed, (final, sorted(allowed))


def figures(request: pytest.FixtureRequest, **measured: Any) -> None:
    """Shown in the run's summary (tests/conftest.py ``pytest_terminal_summary``)."""
    request.node.user_properties.append(("fault figures", (request.node.nodeid, measured)))


def rows_of_key(cluster: GaleraCluster, database: str) -> list[int]:
    """How many rows hold the shared key, on every running node."""
    sql = f"SELECT COUNT(*) FROM `{database}`.agent_memory WHERE agent_id = %s AND `key` = %s"
    return [int(node.execute(sql, (AGENT, KEY))[0][0]) for node in cluster.running()]


async def stores_on(url: str, ports: list[int]) -> list[Store]:
    """One connected Store per node, one after the other (the first migrates);
    when one cannot connect, those already connected are closed."""
    stores: list[Store] = []
    try:
        for port in ports:
            store = Store(settings(on_node(url, port)))
            await store.connect()
            stores.append(store)
    except BaseException:
        for store in stores:
            await store.close()
        raise
    return stores


@pytest.fixture
def galera_url(mysql_galera_empty_url: str) -> str:
    return mysql_galera_empty_url


@pytest.fixture
async def two_stores(galera_cluster: GaleraCluster, galera_url: str) -> AsyncIterator[list[Store]]:
    """Stores on nodes 1 and 2 of the shared cluster."""
    stores = await stores_on(galera_url, [node.port for node in galera_cluster.nodes[:2]])
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def test_sessions_on_galera_nodes_read_their_clusters_writes(
    galera_cluster: GaleraCluster, two_stores: list[Store]
) -> None:
    first, _ = two_stores
    sync_wait = await first.db.fetch_value(text("SELECT @@SESSION.wsrep_sync_wait"))
    retry = await first.db.fetch_value(text("SELECT @@SESSION.wsrep_retry_autocommit"))
    assert (int(sync_wait), int(retry)) == (1, 0)


async def test_two_nodes_setting_one_key_lose_nothing(
    request: pytest.FixtureRequest,
    galera_cluster: GaleraCluster,
    galera_url: str,
    two_stores: list[Store],
) -> None:
    writers = [Writer("n1", two_stores[0]), Writer("n2", two_stores[1])]
    await asyncio.gather(*(writer.run(CALLS) for writer in writers))

    assert [len(writer.outcomes) for writer in writers] == [CALLS, CALLS]
    assert_only_typed(writers)
    final = {
        (await store.memory.get(AGENT, KEY)).value  # type: ignore[union-attr]
        for store in two_stores
    }
    assert len(final) == 1, final  # both nodes agree
    assert_no_lost_write(final.pop(), writers)
    database = galera_url.rsplit("/", 1)[1]
    assert rows_of_key(galera_cluster, database) == [1, 1, 1]
    figures(request, typed_errors=sum(len(w.errors()) for w in writers))


@pytest.fixture
def own_cluster() -> Iterator[GaleraCluster]:
    """A cluster of this test's own: it kills a node, which the others evict
    within about 2 s (``fast_eviction``)."""
    cluster = GaleraCluster.create(fast_eviction=True)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def test_a_node_killed_mid_run_gives_typed_errors_then_the_run_goes_on(
    request: pytest.FixtureRequest, own_cluster: GaleraCluster
) -> None:
    databases = galera_database(own_cluster)
    url = next(databases)
    stores = await stores_on(url, [node.port for node in own_cluster.nodes])
    try:
        writers = [Writer(f"n{n}", store) for n, store in enumerate(stores, 1)]
        doomed = writers[2]
        killed_at = 0.0
        third_done, stop_doomed = asyncio.Event(), asyncio.Event()

        def at_a_third(writer: Writer) -> None:
            if len(writer.outcomes) >= CALLS // 3:
                third_done.set()

        def since_kill(writer: Writer) -> list[Any]:
            """Outcomes of the calls that began once the node was dead."""
            return [
                outcome
                for (_, outcome), began in zip(writer.outcomes, writer.began, strict=False)
                if began > killed_at
            ]

        def after_kill(writer: Writer) -> None:
            # the Store on the dead node cannot go on: a few calls show how it fails
            if killed_at and len(since_kill(writer)) >= 3:
                stop_doomed.set()

        writers[0].watch, doomed.watch = at_a_third, after_kill

        async def kill_node_3() -> None:
            nonlocal killed_at
            await third_done.wait()
            await asyncio.to_thread(own_cluster.nodes[2].kill)
            killed_at = time.monotonic()

        await asyncio.gather(
            writers[0].run(CALLS),
            writers[1].run(CALLS),
            doomed.run(CALLS, stop=stop_doomed),
            kill_node_3(),
        )

        survivors = writers[:2]
        assert_only_typed(writers)
        dead = since_kill(doomed)
        assert dead, "the Store on the killed node made no call after the kill"
        assert all(isinstance(o, DatabaseUnavailableError) for o in dead), dead
        for writer in survivors:
            assert len(writer.outcomes) == CALLS
            # the run went on: acknowledged writes after the kill
            acked_after = [
                value
                for (value, outcome), ended in zip(writer.outcomes, writer.ended, strict=True)
                if outcome == "ok" and ended > killed_at + 0.1
            ]
            assert acked_after, f"{writer.tag} wrote nothing after the kill"
        final = {
            (await store.memory.get(AGENT, KEY)).value  # type: ignore[union-attr]
            for store in stores[:2]
        }
        assert len(final) == 1, final
        assert_no_lost_write(final.pop(), survivors)
        database = url.rsplit("/", 1)[1]
        assert rows_of_key(own_cluster, database) == [1, 1]
        pauses = [max(b - a for a, b in zip(w.ended, w.ended[1:], strict=False)) for w in survivors]
        figures(
            request,
            typed_errors_survivors=sum(len(w.errors()) for w in survivors),
            typed_errors_killed_node=len(doomed.errors()),
            longest_pause_s=round(max(pauses), 2),
        )
    finally:
        for store in stores:
            await store.close()
        with pytest.raises(StopIteration):
            next(databases)


async def test_a_certification_conflict_is_retried_by_run_transaction(
    two_stores: list[Store],
) -> None:
    first, second = two_stores
    await first.memory.set(AGENT, KEY, "start")
    attempts = 0
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def work(tx: Transaction) -> int:
        nonlocal attempts
        attempts += 1
        await tx.memory.set(AGENT, KEY, f"unit-{attempts}")
        if attempts == 1:
            inside.set()
            await go_on.wait()  # meanwhile node 2 commits a write to the same row
        return attempts

    unit = asyncio.create_task(first.run_transaction(work))
    await inside.wait()
    await second.memory.set(AGENT, KEY, "winner")  # certified first: it wins
    go_on.set()
    assert await unit == 2  # the loser was rolled back and run again, once
    for store in two_stores:
        entry = await store.memory.get(AGENT, KEY)
        assert entry is not None
        assert entry.value == "unit-2"


async def test_a_certification_conflict_in_a_transaction_is_a_typed_rollback(
    two_stores: list[Store],
) -> None:
    first, second = two_stores
    await first.memory.set(AGENT, KEY, "start")

    async def lose() -> None:
        async with first.transaction() as tx:
            await tx.memory.set(AGENT, KEY, "loser")
            await second.memory.set(AGENT, KEY, "winner")  # node 2 commits first

    with pytest.raises(DatabaseUnavailableError) as caught:
        await lose()
    assert caught.value.may_have_committed is False  # 1213: rolled back, not committed
    for store in two_stores:
        entry = await store.memory.get(AGENT, KEY)
        assert entry is not None
        assert entry.value == "winner"


async def test_a_unit_overtaken_by_another_nodes_write_is_a_typed_rollback(
    two_stores: list[Store],
) -> None:
    first, second = two_stores
    await first.memory.set(AGENT, KEY, "start")
    seen: list[BaseException] = []

    async def overtaken() -> None:
        async with first.transaction() as tx:
            await tx.memory.set(AGENT, KEY, "loser")
            await second.memory.set(AGENT, KEY, "winner")
            try:
                # waits (wsrep_sync_wait) until node 1 applied the winner, which
                # aborts this transaction: mostly this statement gets 1213; when
                # the abort lands after it, the COMMIT does
                await tx.memory.get(AGENT, "another key")
                await tx.memory.set(AGENT, "another key", "after")
            except DatabaseUnavailableError as exc:
                seen.append(exc)
                raise

    with pytest.raises(DatabaseUnavailableError) as caught:
        await overtaken()
    assert seen in ([], [caught.value])  # by a statement, or else by COMMIT
    assert caught.value.may_have_committed is False
    assert await first.memory.get(AGENT, "another key") is None  # nothing of it committed
    entry = await first.memory.get(AGENT, KEY)
    assert entry is not None
    assert entry.value == "winner"


async def test_increments_on_two_nodes_count_exactly(
    request: pytest.FixtureRequest,
    galera_cluster: GaleraCluster,
    galera_url: str,
    two_stores: list[Store],
) -> None:
    """Units of work on two nodes incrementing one row: the losers of certification
    are run again, so the count equals the acknowledged units exactly (none lost,
    none applied twice)."""
    database = galera_url.rsplit("/", 1)[1]
    node = galera_cluster.nodes[0]
    node.execute(f"CREATE TABLE `{database}`.counters (id INT PRIMARY KEY, n INT NOT NULL)")
    node.execute(f"INSERT INTO `{database}`.counters VALUES (1, 0)")
    increment = text("UPDATE counters SET n = n + 1 WHERE id = 1")
    units = 100
    attempts = [0, 0]
    acknowledged = [0, 0]
    failed: list[DatabaseUnavailableError] = []

    async def increments(index: int) -> None:
        async def work(tx: Transaction) -> None:
            attempts[index] += 1
            await tx.execute(increment)
            await asyncio.sleep(0.002)  # the other node's unit runs meanwhile

        for _ in range(units):
            try:
                await two_stores[index].run_transaction(work)
            except DatabaseUnavailableError as exc:
                failed.append(exc)  # attempts ran out
            else:
                acknowledged[index] += 1

    await asyncio.gather(increments(0), increments(1))
    # a certification failure is a rollback: never "may have committed"
    assert [exc for exc in failed if exc.may_have_committed] == []
    for each in galera_cluster.running():
        ((count,),) = each.execute(f"SELECT n FROM `{database}`.counters WHERE id = 1")
        assert count == sum(acknowledged)
    figures(
        request,
        units=2 * units,
        acknowledged=sum(acknowledged),
        reruns=sum(attempts) - 2 * units,
        gave_up=len(failed),
    )


async def test_a_write_on_node_1_is_read_on_node_3(
    galera_cluster: GaleraCluster, galera_url: str
) -> None:
    writer, reader = await stores_on(
        galera_url, [galera_cluster.nodes[0].port, galera_cluster.nodes[2].port]
    )
    try:
        misses = []
        for number in range(200):
            key = f"ryw-{number}"
            await writer.memory.set(AGENT, key, number)
            entry = await reader.memory.get(AGENT, key)
            if entry is None or entry.value != number:
                misses.append(number)
        assert misses == []
    finally:
        await writer.close()
        await reader.close()
