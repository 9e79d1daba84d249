"""A request the server refuses for its size is bad input, not an outage.

On a private MariaDB whose ``max_allowed_packet`` is 64 KiB: a bulk write
with a row the server could never take is refused before that row's
statement is sent (the statements before it, made while the server ran the
one before, are rolled back with the batch); a single statement too large
is refused by the server, and that refusal is a ``ValidationError`` (never
"connection lost", never retried: the server counts no new connection),
nothing is written, and the Store goes on working with no connection leaked.
The shared servers' own limits are not changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from contextstore import NewMessage, Settings, Store, ValidationError, Viewer
from contextstore.errors import REFUSALS

from ._instances import Admin, Instance, connect_admin
from .conftest import FaultDatabase

pytestmark = [pytest.mark.asyncio, pytest.mark.mysql]

SMALL_PACKET = 64 * 1024
DEFAULT_PACKET = 16 * 1024 * 1024
ADMIN = Viewer(agent_id="root", is_admin=True)


@pytest.fixture
async def small_packet(private_mysql: Instance) -> AsyncIterator[Admin]:
    admin = await connect_admin(private_mysql)
    try:
        await admin.scalar(f"SET GLOBAL max_allowed_packet = {SMALL_PACKET}")
        yield admin
    finally:
        await admin.scalar(f"SET GLOBAL max_allowed_packet = {DEFAULT_PACKET}")
        await admin.close()


async def _connections(admin: Admin) -> int:
    return int(
        await admin.scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
            "WHERE VARIABLE_NAME = 'CONNECTIONS'"
        )
    )


async def _inserts(admin: Admin) -> int:
    return int(
        await admin.scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS "
            "WHERE VARIABLE_NAME = 'COM_INSERT'"
        )
    )


CASES: list[Any] = [
    pytest.param(
        lambda s: s.messages.add_many(
            "s1", [NewMessage(sender="a", content="x" * 100_000) for _ in range(3)]
        ),
        id="add_many of rows the server cannot take",
    ),
    pytest.param(
        lambda s: s.messages.add_many(
            "s1",
            [NewMessage(sender="a", content=f"small {n}") for n in range(400)]
            + [NewMessage(sender="a", content="x" * 100_000)],
        ),
        # its part is made after earlier statements were sent
        id="add_many whose last row the server cannot take",
    ),
    pytest.param(
        lambda s: s.messages.add("s1", sender="a", content="é" * 60_000),
        id="one message",
    ),
    pytest.param(lambda s: s.memory.set("a", "k", "v" * 200_000), id="one memory value"),
]


@pytest.mark.parametrize("call", CASES)
async def test_a_request_too_large_is_a_validation_error_not_an_outage(
    mysql_fault_db: FaultDatabase,
    small_packet: Admin,
    call: Callable[[Store], Awaitable[Any]],
) -> None:
    async with Store(Settings(database_url=mysql_fault_db.url, pool_size=2)) as store:
        await store.sessions.create(purpose="p", created_by="a", session_id="s1")
        await store.messages.add("s1", sender="a", content="small")  # a warm pool
        before = await _connections(small_packet)
        with pytest.raises(ValidationError) as caught:
            await call(store)
        assert str(caught.value) == REFUSALS["too_large"]
        assert caught.value.__class__ is ValidationError
        # refused once: no attempt reconnected to try again
        assert await _connections(small_packet) == before
        # nothing written, nothing leaked, and the next call works
        assert await store.messages.count("s1", viewer=ADMIN) == 1
        assert await store.memory.get("a", "k") is None
        stats = store.db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
        await store.messages.add("s1", sender="a", content="after")
        assert await store.messages.count("s1", viewer=ADMIN) == 2


async def test_a_late_refusal_in_a_unit_of_work_leaves_no_part_of_the_batch(
    mysql_fault_db: FaultDatabase, small_packet: Admin
) -> None:
    # the refused row's part is made after statements of the batch were sent in
    # the unit's transaction: a savepoint around the call takes them back, and
    # the unit commits what it did before and after
    async with Store(Settings(database_url=mysql_fault_db.url, pool_size=2)) as store:
        await store.sessions.create(purpose="p", created_by="a", session_id="s1")
        batch = [NewMessage(sender="a", content=f"small {n}") for n in range(400)]
        inserts_before = await _inserts(small_packet)
        async with store.transaction() as tx:
            await tx.messages.add("s1", sender="a", content="before")
            with pytest.raises(ValidationError) as caught:
                async with tx.savepoint():
                    await tx.messages.add_many(
                        "s1", [*batch, NewMessage(sender="a", content="x" * 100_000)]
                    )
            assert str(caught.value) == REFUSALS["too_large"]
            # the case this is about: the batch's first statements had run
            assert await _inserts(small_packet) - inserts_before >= 3
            await tx.messages.add("s1", sender="a", content="after")
        page = await store.messages.list("s1", viewer=ADMIN)
        assert [m.content for m in page.items] == ["before", "after"]
        stats = store.db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
