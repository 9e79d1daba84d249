"""A write that committed but whose acknowledgement was lost is retried without a duplicate.

The loss is injected at ConnectionManager's own attempt boundary: the first
attempt really commits on the real database, then fails the way a connection
reset while reading the COMMIT reply fails. (tests/faults drops real COMMIT
replies through a TCP proxy on the servers; this covers every dialect fast.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from contextstore import ConnectionManager, NewMessage, Settings, Store
from contextstore._execute import Leases
from contextstore.schema import agent_memory, audit_log, messages


class LoseAcks:
    """Makes the next ``pending`` committed attempts look like lost COMMIT replies,
    and the next ``drops`` attempts lose their connection before COMMIT."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pending = 0
        self.lost = 0
        self.drops = 0
        # both attempt boundaries: the execution core's (a held driver
        # connection) and the one on SQLAlchemy Connections
        for owner, name in ((Leases, "attempt"), (ConnectionManager, "_attempt")):
            monkeypatch.setattr(owner, name, self._lossy(getattr(owner, name)))

    def _lossy(self, real: Any) -> Any:
        async def attempt(owner: Any, *args: Any) -> Any:
            # the work is the fourth argument from the end (write, autocommit, progress follow)
            *before, work, write, autocommit, progress = args
            if self.drops:
                self.drops -= 1

                async def dropped(conn: Any) -> Any:
                    await work(conn)
                    raise OperationalError("INSERT", {}, ConnectionResetError("dropped"))

                return await real(owner, *before, dropped, write, autocommit, progress)
            result = await real(owner, *args)
            if self.pending:
                self.pending -= 1
                self.lost += 1
                raise OperationalError("COMMIT", {}, ConnectionResetError("reply lost"))
            return result

        return attempt


@pytest.fixture
async def store(empty_url: str) -> AsyncIterator[Store]:
    async with Store(Settings(database_url=empty_url)) as connected:
        await connected.sessions.create(purpose="acks", created_by="a", session_id="s1")
        yield connected


async def _count(store: Store, stmt: Any) -> int:
    return int(await store.db.fetch_value(stmt))


async def test_messages_add_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    acks = LoseAcks(monkeypatch)
    acks.pending = 1
    message = await store.messages.add("s1", sender="a", content="exactly once")
    assert acks.lost == 1
    count = select(func.count()).select_from(messages).where(messages.c.content == "exactly once")
    assert await _count(store, count) == 1
    stored = await store.db.fetch_value(
        select(messages.c.id).where(messages.c.content == "exactly once")
    )
    assert message.id == stored


# 250 rows: PostgreSQL's COPY, whose ids are reserved before the rows are sent
@pytest.mark.parametrize("size", [25, 250], ids=["small", "bulk-path"])
# a first attempt that wrote its rows and lost its connection before COMMIT
# (rolled back), then one whose COMMIT reply is lost: the retry must return the
# second attempt's ids, not the first's
@pytest.mark.parametrize("drops", [0, 1], ids=["lost-commit", "dropped-then-lost-commit"])
async def test_add_many_once_and_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch, size: int, drops: int
) -> None:
    acks = LoseAcks(monkeypatch)
    acks.drops = drops
    acks.pending = 1
    batch = [NewMessage(sender="a", content=f"batch {i}") for i in range(size)]
    added = await store.messages.add_many("s1", batch)
    assert acks.lost == 1
    assert acks.drops == 0
    assert [m.content for m in added] == [m.content for m in batch]
    count = select(func.count()).select_from(messages).where(messages.c.content.like("batch %"))
    assert await _count(store, count) == size
    stored = await store.db.fetch_all(
        select(messages.c.id, messages.c.content, messages.c.timestamp)
        .where(messages.c.content.like("batch %"))
        .order_by(messages.c.id)
    )
    assert [(m.id, m.content, m.timestamp) for m in added] == [
        (row["id"], row["content"], row["timestamp"]) for row in stored
    ]


async def test_audit_record_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    acks = LoseAcks(monkeypatch)
    acks.pending = 1
    event = await store.audit.record("login", agent_id="a", resource="once")
    assert acks.lost == 1
    count = select(func.count()).select_from(audit_log).where(audit_log.c.resource == "once")
    assert await _count(store, count) == 1
    assert (await store.audit.list(agent_id="a")).items == [event]


@pytest.mark.parametrize("overwrite", [True, False])
async def test_memory_set_once_without_a_false_conflict(
    store: Store, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    acks = LoseAcks(monkeypatch)
    acks.pending = 1
    entry = await store.memory.set("a", "k", {"v": 1}, overwrite=overwrite)
    assert acks.lost == 1
    assert entry.value == {"v": 1}
    count = select(func.count()).select_from(agent_memory).where(agent_memory.c.key == "k")
    assert await _count(store, count) == 1
    assert await store.memory.get("a", "k") == entry


async def test_the_read_back_never_claims_another_callers_row(store: Store) -> None:
    # the retry's read-back recognises only this call's own row: an entry
    # someone else wrote stays a conflict
    from sqlalchemy import event

    from contextstore import ConflictError

    await store.memory.set("a", "k", 1)
    inserts: list[str] = []

    def drop_first_insert(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("INSERT INTO AGENT_MEMORY"):
            inserts.append(statement)
            if len(inserts) == 1:  # lost before it ran: nothing was written
                raise OperationalError(statement, {}, ConnectionResetError("dropped"))

    event.listen(store.db.engine.sync_engine, "before_cursor_execute", drop_first_insert)
    with pytest.raises(ConflictError):
        await store.memory.set("a", "k", 2, overwrite=False)
    assert len(inserts) == 2  # the retry ran, read back, and still conflicted
    entry = await store.memory.get("a", "k")
    assert entry is not None
    assert entry.value == 1
