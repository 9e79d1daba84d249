"""The benchmark's placement pins what it says, restores what it touched, and
touches nothing that is not the local server's.

The server cases pin only the process (PostgreSQL) or thread (MariaDB) that
serves the test's own connection, and check it is given back its CPUs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import aiomysql
import asyncpg
import pytest
from sqlalchemy.engine import make_url

from benchmarks.placement import Placement, _identity

from .._servers import Server

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="pinning needs sched_setaffinity (Linux)"
)
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="split placement needs two CPUs")


@pytest.fixture
def idle_thread() -> Iterator[threading.Thread]:
    done = threading.Event()
    thread = threading.Thread(target=done.wait, daemon=True)
    thread.start()
    yield thread
    done.set()
    thread.join()


@two_cpus
def test_split_pins_the_loop_and_every_other_thread(idle_thread: threading.Thread) -> None:
    before = os.sched_getaffinity(0)
    placement = Placement("split")
    placement.start()
    try:
        placement.pin_threads()
        assert os.sched_getaffinity(0) == {CPUS[0]}
        assert idle_thread.native_id is not None
        assert os.sched_getaffinity(idle_thread.native_id) == {CPUS[1]}
        # a thread started afterwards (legacy opens one per call) moves itself there too
        seen: list[set[int]] = []
        later = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        later.start()
        later.join()
        assert seen == [{CPUS[1]}]
        assert placement.to_json()["mode"] == "split"
        assert f"event loop on CPU {CPUS[0]}" in placement.describe()
    finally:
        placement.stop()
    assert os.sched_getaffinity(0) == before
    # the thread moved is given back its CPUs too
    assert os.sched_getaffinity(idle_thread.native_id) == before
    # stopped: a new thread starts where its creator is, untouched
    after: list[set[int]] = []
    thread = threading.Thread(target=lambda: after.append(os.sched_getaffinity(0)))
    thread.start()
    thread.join()
    assert after == [before]


@two_cpus
def test_a_new_thread_runs_even_where_it_cannot_be_placed() -> None:
    # the profile function must never raise: the thread would die before its
    # target, and aiosqlite's connect would wait for it forever
    placement = Placement("split")
    placement.start()
    ran: list[bool] = []
    try:
        placement.server_cpu = 1 << 16  # no such CPU: sched_setaffinity fails
        thread = threading.Thread(target=lambda: ran.append(True))
        thread.start()
        thread.join(5)
    finally:
        placement.stop()
    assert ran == [True]


def test_split_on_one_cpu_runs_shared_and_says_so() -> None:
    seen: dict[str, object] = {}

    def one_cpu() -> None:
        os.sched_setaffinity(0, {CPUS[0]})
        placement = Placement("split")
        placement.start()
        seen["mode"] = placement.mode
        seen["cpus"] = (placement.client_cpu, placement.server_cpu)
        seen["description"] = placement.describe()
        placement.stop()

    thread = threading.Thread(target=one_cpu)
    thread.start()
    thread.join()
    assert seen["mode"] == "shared"
    assert seen["cpus"] == (CPUS[0], CPUS[0])
    assert "split needs two CPUs" in str(seen["description"])


def test_free_pins_nothing(idle_thread: threading.Thread) -> None:
    assert idle_thread.native_id is not None
    before = os.sched_getaffinity(idle_thread.native_id)
    placement = Placement("free")
    placement.start()
    placement.pin_threads()
    assert os.sched_getaffinity(0) == set(CPUS)
    assert os.sched_getaffinity(idle_thread.native_id) == before
    placement.stop()
    assert placement.describe().startswith("free: nothing pinned")


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="split, shared, free"):
        Placement("spread")


def test_only_a_server_process_counts_as_one() -> None:
    # what the pinning checks an id against: the name of its process, and a
    # start time that tells a reused id apart
    me = _identity(os.getpid())
    assert me is not None
    assert me.command not in {"postgres", "mariadbd", "mysqld"}
    assert me.started.isdigit()
    # a thread of this process carries its process's name, its own start time
    thread = _identity(threading.get_native_id())
    assert thread is not None
    assert thread.command == me.command
    assert _identity(2**22 + 1) is None  # above pid_max: no such process


@pytest.mark.postgresql
async def test_a_server_that_cannot_be_watched_leaves_the_run_going(
    servers: dict[str, Server],
) -> None:
    server = servers["postgresql"]
    placement = Placement("shared")
    placement.start()
    try:
        # nothing listens on port 1: the admin connection is refused
        await placement.attach("postgresql", server.admin_url.set(port=1), "x")
        await placement.pin()
        refused = "postgresql server processes not pinned"
        assert any(note.startswith(refused) for note in placement.notes)
        # the admin connection lost after attach: the next batch goes on unpinned
        placement.notes.clear()
        url = make_url(server.create_database())
        await placement.attach("postgresql", server.admin_url, url.database or "")
        watched = placement._server
        assert watched is not None
        await watched.close()
        await placement.pin()
        assert any(note.startswith(refused) for note in placement.notes)
        await placement.pin()  # no admin connection any more: nothing to fail
    finally:
        await placement.detach()
        placement.stop()


async def test_a_server_on_another_host_is_not_pinned() -> None:
    placement = Placement("shared")
    placement.start()
    try:
        await placement.attach("postgresql", make_url("postgresql://u@db.example:5432/x"), "x")
        await placement.pin()
        assert "postgresql server on db.example: its processes not pinned" in placement.notes
    finally:
        await placement.detach()
        placement.stop()


@two_cpus
@pytest.mark.postgresql
async def test_postgresql_backend_is_pinned_then_restored(servers: dict[str, Server]) -> None:
    server = servers["postgresql"]
    url = make_url(server.create_database())
    database = url.database
    assert database is not None
    conn = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database=database
    )
    placement = Placement("split")
    placement.start()
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        before = os.sched_getaffinity(pid)
        await placement.attach("postgresql", server.admin_url, database)
        await placement.pin()
        if placement.notes:
            pytest.skip(f"this server's processes cannot be pinned here: {placement.notes}")
        assert os.sched_getaffinity(pid) == {CPUS[1]}
        await placement.detach()
        assert os.sched_getaffinity(pid) == before
    finally:
        await placement.detach()
        placement.stop()
        await conn.close()


@two_cpus
@pytest.mark.mysql
async def test_mariadb_connection_thread_is_pinned_then_restored(
    servers: dict[str, Server],
) -> None:
    server = servers["mysql"]
    url = make_url(server.create_database())
    database = url.database
    assert database is not None
    conn = await aiomysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        db=database,
    )
    placement = Placement("split")
    placement.start()
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(
                "SELECT TID FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
            )
            (tid,) = await cursor.fetchone()
        before = os.sched_getaffinity(tid)
        await placement.attach("mysql", server.admin_url, database)
        await placement.pin()
        if placement.notes:
            pytest.skip(f"this server's threads cannot be pinned here: {placement.notes}")
        assert os.sched_getaffinity(tid) == {CPUS[1]}
        await placement.detach()
        # the server keeps the thread for a later connection: it must have its CPUs back
        assert os.sched_getaffinity(tid) == before
    finally:
        await placement.detach()
        placement.stop()
        conn.close()
