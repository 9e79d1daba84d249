"""PostgreSQL only: session settings from the startup packet, statement timeouts."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from sqlalchemy import literal, select, text

from contextstore import DatabaseUnavailableError, QueryTimeoutError

from ._scratch import (
    assert_batch_left_nothing,
    in_transaction,
    managed,
    other_tasks,
    server_url,
    silent_server,
)

pytestmark = pytest.mark.postgresql


async def test_session_settings(postgresql_empty_url: str) -> None:
    async with managed(postgresql_empty_url, statement_timeout=0.5) as db:
        assert await db.fetch_value(text("SHOW application_name")) == "contextstore"
        assert await db.fetch_value(text("SHOW statement_timeout")) == "500ms"
    async with managed(postgresql_empty_url, statement_timeout=None) as db:
        assert await db.fetch_value(text("SHOW statement_timeout")) == "0"


async def test_statement_timeout_raises_query_timeout(postgresql_empty_url: str) -> None:
    async with managed(postgresql_empty_url, statement_timeout=0.5) as db:
        started = time.perf_counter()
        with pytest.raises(QueryTimeoutError) as caught:
            await db.fetch_value(text("SELECT pg_sleep(5)"))
        assert time.perf_counter() - started < 5  # the server cut it short
        cause = caught.value.__cause__
        assert cause is not None
        assert getattr(cause, "orig", None) is not None
        assert cause.orig.sqlstate == "57014"  # type: ignore[attr-defined]
        with pytest.raises(QueryTimeoutError):
            async with db.transaction() as conn:
                await conn.execute(text("SELECT pg_sleep(5)"))
        # the connection survived and went back to the pool
        assert await db.fetch_value(select(literal(1))) == 1
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_client_command_timeout_is_a_query_timeout_too(postgresql_empty_url: str) -> None:
    # the server limit switched off for one transaction: asyncpg's own
    # command_timeout (statement_timeout + 2 s) fires with a bare TimeoutError
    async with managed(postgresql_empty_url, statement_timeout=0.5) as db:
        with pytest.raises(QueryTimeoutError) as caught:
            await in_transaction(
                db, text("SET LOCAL statement_timeout = 0"), text("SELECT pg_sleep(10)")
            )
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert await db.fetch_value(select(literal(1))) == 1
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_connect_timeout_is_unavailable_not_a_query_timeout() -> None:
    # asyncpg reports its connect timeout as a bare TimeoutError, like its
    # command_timeout; before any statement ran it means "cannot reach"
    async with (
        silent_server() as server,
        managed(server_url("postgresql", server.port), connect_timeout=0.3) as db,
    ):
        started = time.perf_counter()
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.fetch_value(select(literal(1)))
        assert not isinstance(caught.value, QueryTimeoutError)
        assert caught.value.may_have_committed is False
        assert isinstance(caught.value.__cause__, TimeoutError)
        assert time.perf_counter() - started < 10  # RETRY_WINDOW, not forever
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
    assert other_tasks() == set()


# -- add_many through COPY ------------------------------------------------------


async def test_large_add_many_goes_through_copy_and_keeps_everything(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from contextstore import NewMessage, NotFoundError, Settings, Store, Viewer
    from contextstore._dialects.postgresql import COPY_MIN_ROWS, copy_parts

    log: list[tuple[str, int]] = []
    _copies_counted(monkeypatch, log)
    n = COPY_MIN_ROWS + 50
    batch = [
        NewMessage(
            sender=f"agent-{i % 7}",
            content=f"zebrafish report {i} ünïcode 日本 \U0001f680",
            visibility="private" if i % 3 else "public",
            metadata={"i": i, "big": 2**62 + i, "nested": {"k": [1, None, "x"]}},
        )
        for i in range(n)
    ]
    admin = Viewer(agent_id="root", is_admin=True)
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        await store.sessions.create(purpose="copy", created_by="a", session_id="s1")
        await store.sessions.create(purpose="copy", created_by="a", session_id="s2")
        added, other = await asyncio.gather(
            store.messages.add_many("s1", batch), store.messages.add_many("s2", batch)
        )
        # each batch in parts, one COPY each (the two batches' COPYs interleave)
        parts = [stop - start for start, stop in copy_parts(n)]
        assert len(parts) > 1
        copies = [rows for event, rows in log if event == "answered"]
        assert sorted(copies) == sorted(parts + parts)
        for result in (added, other):
            ids = [m.id for m in result]
            assert ids == sorted(ids)
            assert len(set(ids)) == n
        assert not {m.id for m in added} & {m.id for m in other}
        for message, item in zip(added, batch, strict=True):
            assert message.content == item.content
            assert message.metadata == item.metadata
        for message in (added[0], added[-1], added[n // 2]):
            assert await store.messages.get(message.id, viewer=admin) == message
        page = await store.messages.list("s1", viewer=admin, limit=1000)
        assert page.items == added
        hits = await store.messages.search("zebrafish", viewer=admin, session_id="s1", limit=5)
        assert len(hits) == 5  # the search vector was computed for copied rows
        later = await store.messages.add("s1", sender="a", content="after the copy")
        assert later.id > max(m.id for m in added + other)
        # COPY checks constraints like INSERT: a missing session writes nothing
        with pytest.raises(NotFoundError):
            await store.messages.add_many("missing", batch)
        assert await store.messages.count("s1", viewer=admin) == n + 1


def test_copy_parts_start_small_and_double_up_to_the_cap() -> None:
    from contextstore._dialects.postgresql import (
        COPY_FIRST_ROWS,
        COPY_PART_MAX_ROWS,
        copy_parts,
    )

    for count in (1, COPY_FIRST_ROWS, COPY_FIRST_ROWS + 1, 1_000, 20_000, 123_457):
        parts = list(copy_parts(count))
        # contiguous, in order, covering every row once
        assert parts[0][0] == 0
        assert parts[-1][1] == count
        assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(parts))
        sizes = [stop - start for start, stop in parts]
        assert sizes[0] == min(count, COPY_FIRST_ROWS)
        assert max(sizes) <= COPY_PART_MAX_ROWS
        for before, after in itertools.pairwise(sizes[:-1]):
            assert after == min(2 * before, COPY_PART_MAX_ROWS)
    assert [stop - start for start, stop in copy_parts(1_000)] == [100, 200, 400, 300]


def _copies_counted(
    monkeypatch: pytest.MonkeyPatch,
    log: list[tuple[str, int]],
    answered: Callable[[], None] = lambda: None,
) -> None:
    """Every COPY asyncpg sends logged: ("sent", rows) before it, ("answered",
    rows) after the server's reply, when ``answered()`` is called too."""
    import asyncpg

    real_copy = asyncpg.connection.Connection.copy_records_to_table

    async def logged_copy(self: object, table: str, **kwargs: Any) -> object:
        records = list(kwargs["records"])
        kwargs["records"] = records
        log.append(("sent", len(records)))
        result = await real_copy(self, table, **kwargs)
        log.append(("answered", len(records)))
        answered()
        return result

    monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", logged_copy)


async def test_each_copy_part_is_made_while_the_server_loads_the_one_before(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextstore import NewMessage, Settings, Store
    from contextstore._dialects.postgresql import copy_parts
    from contextstore.repositories import messages as repository

    log: list[tuple[str, int]] = []
    _copies_counted(monkeypatch, log)
    real_with_ids = repository._with_ids

    def logged_with_ids(form: Any, part: Any, *args: Any) -> Any:
        log.append(("made", len(part)))
        return real_with_ids(form, part, *args)

    monkeypatch.setattr(repository, "_with_ids", logged_with_ids)
    items = [NewMessage(sender="a", content=f"row {n}") for n in range(1_000)]
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        await store.sessions.create(purpose="copy", created_by="a", session_id="s1")
        records = await store.messages.add_many("s1", items)
        assert [r.content for r in records] == [i.content for i in items]
    sizes = [stop - start for start, stop in copy_parts(1_000)]
    expected: list[tuple[str, int]] = [("made", sizes[0])]
    for size, upcoming in itertools.zip_longest(sizes, sizes[1:]):
        # part k on the server, then part k+1 made before part k's answer
        expected.append(("sent", size))
        if upcoming is not None:
            expected.append(("made", upcoming))
        expected.append(("answered", size))
    assert log == expected


async def test_cancelled_between_copies_writes_nothing_and_leaks_nothing(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from contextstore import NewMessage, Settings, Store, Viewer
    from contextstore._dialects import postgresql

    monkeypatch.setattr(postgresql, "COPY_FIRST_ROWS", 20)
    monkeypatch.setattr(postgresql, "COPY_PART_MAX_ROWS", 20)
    log: list[tuple[str, int]] = []
    halfway = asyncio.Event()

    def answered() -> None:
        if log.count(("answered", 20)) == 5:
            halfway.set()

    _copies_counted(monkeypatch, log, answered)
    items = [NewMessage(sender="a", content=f"row {n}") for n in range(2_000)]
    admin = Viewer(agent_id="root", is_admin=True)
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        await store.sessions.create(purpose="copy", created_by="a", session_id="s1")
        before = asyncio.all_tasks()
        task = asyncio.create_task(store.messages.add_many("s1", items))
        await asyncio.wait_for(halfway.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(log) < 2 * 2_000 // 20  # stopped before the last COPY
        # no COPY left running on a connection the pool has back
        assert not {t for t in asyncio.all_tasks() - before if not t.done()}
        await assert_batch_left_nothing(store, "s1")
        records = await store.messages.add_many("s1", items[:300])
        assert await store.messages.count("s1", viewer=admin) == len(records) == 300


async def test_a_part_that_cannot_be_made_leaves_the_connection_in_step(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # making a later part fails while the COPY before it is on the server:
    # that COPY is answered first, nothing of the batch stays, and the pooled
    # connection serves the next calls normally
    from contextstore import ContextStoreError, NewMessage, Settings, Store, Viewer
    from contextstore.repositories import messages as repository

    real_with_ids = repository._with_ids

    def failing_with_ids(form: Any, part: Any, *args: Any) -> Any:
        if part[0]["content"] == "row 300":
            raise TypeError("cannot bind this value")
        return real_with_ids(form, part, *args)

    monkeypatch.setattr(repository, "_with_ids", failing_with_ids)
    items = [NewMessage(sender="a", content=f"row {n}") for n in range(1_000)]
    admin = Viewer(agent_id="root", is_admin=True)
    settings = Settings(database_url=postgresql_empty_url, pool_size=1, max_overflow=0)
    async with Store(settings) as store:
        await store.sessions.create(purpose="copy", created_by="a", session_id="s1")
        backend = text("SELECT pg_backend_pid()")
        before = await store.db.fetch_value(backend)
        with pytest.raises((ContextStoreError, TypeError)):
            await store.messages.add_many("s1", items)
        # the same server connection, still usable: it was not left mid-COPY
        assert await store.db.fetch_value(backend) == before
        await assert_batch_left_nothing(store, "s1")
        monkeypatch.setattr(repository, "_with_ids", real_with_ids)
        records = await store.messages.add_many("s1", items)
        assert [r.content for r in records] == [i.content for i in items]
        assert await store.messages.count("s1", viewer=admin) == 1_000


# -- values read without a conversion of ours ---------------------------------


async def test_asyncpg_returns_timestamptz_as_utc_so_reads_skip_the_conversion(
    postgresql_empty_url: str,
) -> None:
    # reads on the core take asyncpg's timestamptz as it comes
    # (PostgreSQLDialect.datetime_results_utc): this fails if asyncpg ever
    # returns another zone, or a naive value, for any session TimeZone
    from datetime import UTC, datetime, timedelta, timezone

    from contextstore import Settings, Store, Viewer

    moment = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5)))
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        await store.sessions.create(purpose="zones", created_by="a", session_id="z")
        added = await store.messages.add("z", sender="a", content="when")
        async with store.db.transaction() as conn:
            await conn.execute(text("SET LOCAL TimeZone = 'America/St_Johns'"))
            value = (await conn.execute(select(literal(moment)))).scalar_one()
            driver = await conn.get_raw_connection()
            raw = await driver.driver_connection.fetchval(  # type: ignore[union-attr]
                "SELECT $1::timestamptz", moment
            )
        for each in (value, raw):
            assert each.tzinfo is UTC
            assert each == moment
        got = await store.messages.get(added.id, viewer=Viewer(agent_id="a"))
        assert got is not None
        assert got.timestamp == added.timestamp
        assert got.timestamp.tzinfo is UTC


async def test_json_and_jsonb_values_read_the_same_through_the_core_and_sqlalchemy(
    postgresql_empty_url: str,
) -> None:
    # the json and jsonb codecs contextstore installs replace SQLAlchemy's: Core
    # statements (JSON and JSONB bound as text by SQLAlchemy) and the core both
    # round-trip; the core's own columns are json, which keeps every float
    from sqlalchemy import cast as sql_cast
    from sqlalchemy.dialects.postgresql import JSON, JSONB

    from contextstore import Settings, Store
    from tests._typed_json import typed

    documents = [
        {},
        {"big": 2**70, "neg": -(2**64) - 1, "f": 1.5, "s": "ünï \U0001f680", "n": None},
        [1, [2, [3]], {"k": "v"}],
        "text",
        12345678901234567890123,
        [1e16, -0.0, 1e308, 5e-324],
    ]
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        for document in documents:
            stored = await store.memory.set("agent", "k", document)
            assert typed(stored.value) == typed(document)
            entry = await store.memory.get("agent", "k")
            assert entry is not None
            assert typed(entry.value) == typed(document)
            json_bound = sql_cast(literal(document, JSON), JSON)
            assert typed(await store.db.fetch_value(select(json_bound))) == typed(document)
        # jsonb keeps numbers as numeric (1e308 reads back as the int 10**308):
        # the same values for documents without such floats
        for document in documents[:-1]:
            jsonb_bound = sql_cast(literal(document, JSONB), JSONB)
            assert await store.db.fetch_value(select(jsonb_bound)) == document


async def test_cancelled_streaming_copy_writes_nothing_and_leaks_nothing(
    postgresql_empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the COPY reads its rows as it sends them: a task cancelled in the middle
    # of the stream leaves no row of the batch and no connection checked out.
    # The cancel is requested from inside the stream (at its 1,000th row), so
    # it is always mid-stream; it lands at the next await, which is mid-stream
    # when asyncpg waits for the socket and at the end of the COPY (before the
    # COMMIT) when the server keeps up: either way nothing may be written.
    import asyncio

    import asyncpg

    from contextstore import NewMessage, Settings, Store, Viewer

    read = 0
    task: asyncio.Task[Any] | None = None
    real_copy = asyncpg.connection.Connection.copy_records_to_table

    async def signalling_copy(self: object, table: str, **kwargs: Any) -> object:
        def watched(records: Iterable[Any]) -> Iterator[Any]:
            nonlocal read
            for record in records:
                read += 1
                if read == 1000:
                    assert task is not None
                    task.cancel()
                yield record

        kwargs["records"] = watched(kwargs["records"])
        return await real_copy(self, table, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncpg.connection.Connection, "copy_records_to_table", signalling_copy)
    batch = [NewMessage(sender="bulk", content=f"row {i} " + "x" * 400) for i in range(20_000)]
    admin = Viewer(agent_id="root", is_admin=True)
    async with Store(Settings(database_url=postgresql_empty_url)) as store:
        await store.sessions.create(purpose="cancel", created_by="a", session_id="c")
        task = asyncio.create_task(store.messages.add_many("c", batch))
        with pytest.raises(asyncio.CancelledError):
            await task
        assert read >= 1000  # the stream had begun when the cancel came
        await assert_batch_left_nothing(store, "c")
        added = await store.messages.add_many("c", batch[:500])
        assert await store.messages.count("c", viewer=admin) == len(added) == 500
