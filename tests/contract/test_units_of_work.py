"""Units of work: several repository calls in one transaction, on every backend.

``store.transaction()`` commits everything at the end of its block or nothing;
``store.run_transaction(work)`` runs ``work`` again only where that is safe.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contextstore import (
    ConflictError,
    ContextStoreError,
    NotFoundError,
    Settings,
    Store,
    Transaction,
    ValidationError,
)

from ._factories import ADMIN, make_session, new_message, snapshot


class Boom(Exception):
    """The caller's own exception: it must come out of the block unchanged."""


async def _fill(tx: Transaction, session_id: str = "s1") -> None:
    """One write through each of the five repositories."""
    await tx.sessions.create(purpose="plan", created_by="planner", session_id=session_id)
    await tx.participants.join(session_id, "coder", agent_type="coder")
    await tx.messages.add(session_id, sender="planner", content="kick-off")
    await tx.memory.set("coder", "todo", ["review"], session_id=session_id)
    await tx.audit.record("session_opened", agent_id="planner", session_id=session_id)


async def _counts(store: Store, session_id: str = "s1") -> dict[str, Any]:
    return {
        "session": await store.sessions.get(session_id) is not None,
        "participants": len(await store.participants.list(session_id)),
        "messages": await store.messages.count(session_id, viewer=ADMIN),
        "memory": await store.memory.get("coder", "todo", session_id=session_id) is not None,
        "audit": len((await store.audit.list(session_id=session_id)).items),
    }


COMMITTED = {"session": True, "participants": 1, "messages": 1, "memory": True, "audit": 1}
NOTHING = {"session": False, "participants": 0, "messages": 0, "memory": False, "audit": 0}


def _second_store(store: Store) -> Store:
    return Store(
        Settings(database_url=store.settings.effective_database_url, backend=store.backend)
    )


async def test_a_unit_of_work_commits_across_all_five_repositories(store: Store) -> None:
    async with store.transaction() as tx:
        await _fill(tx)
    assert await _counts(store) == COMMITTED


async def test_an_exception_rolls_everything_back_and_leaves_unchanged(store: Store) -> None:
    boom = Boom("the caller's own error")
    with pytest.raises(Boom) as caught:  # noqa: PT012 - the block is the unit of work under test
        async with store.transaction() as tx:
            await _fill(tx)
            raise boom
    assert caught.value is boom
    assert await _counts(store) == NOTHING


async def test_reads_inside_see_the_units_own_writes(store: Store) -> None:
    async with store.transaction() as tx:
        await _fill(tx)
        assert await tx.sessions.get("s1") is not None
        assert await tx.messages.count("s1", viewer=ADMIN) == 1
        entry = await tx.memory.get("coder", "todo", session_id="s1")
        assert entry is not None
        assert entry.value == ["review"]
        assert [p.agent_id for p in await tx.participants.list("s1")] == ["coder"]


async def test_nobody_else_sees_the_writes_before_commit(store: Store) -> None:
    async with _second_store(store) as other:
        async with store.transaction() as tx:
            await _fill(tx)
            # another Store reads committed data only (on SQLite in WAL mode a
            # reader does not wait for the writer's lock)
            assert await _counts(other) == NOTHING
        assert await _counts(other) == COMMITTED


async def test_a_savepoint_rolls_back_only_its_own_part(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.sessions.create(purpose="kept", created_by="planner", session_id="s1")
        with pytest.raises(Boom):  # noqa: PT012 - the block is the unit of work under test
            async with tx.savepoint():
                await tx.sessions.create(purpose="undone", created_by="planner", session_id="s2")
                await tx.messages.add("s1", sender="planner", content="undone too")
                raise Boom
        await tx.messages.add("s1", sender="planner", content="after the savepoint")
    assert await store.sessions.get("s1") is not None
    assert await store.sessions.get("s2") is None
    page = await store.messages.list("s1", viewer=ADMIN)
    assert [m.content for m in page.items] == ["after the savepoint"]


async def test_a_savepoint_that_succeeds_keeps_its_part(store: Store) -> None:
    async with store.transaction() as tx, tx.savepoint():
        await tx.sessions.create(purpose="nested", created_by="planner", session_id="s1")
        async with tx.savepoint():
            await tx.participants.join("s1", "coder")
    assert [p.agent_id for p in await store.participants.list("s1")] == ["coder"]


async def test_a_failed_call_inside_a_savepoint_lets_the_unit_go_on(store: Store) -> None:
    await make_session(store, "s1")
    async with store.transaction() as tx:
        with pytest.raises(ConflictError):
            async with tx.savepoint():
                await tx.sessions.create(purpose="dup", created_by="planner", session_id="s1")
        await tx.sessions.create(purpose="second", created_by="planner", session_id="s2")
    assert await store.sessions.get("s2") is not None


async def test_a_call_that_failed_in_the_database_fails_the_whole_unit(store: Store) -> None:
    await make_session(store, "s1")
    before = await snapshot(store)
    with pytest.raises(ContextStoreError, match="rolled back") as caught:  # noqa: PT012 - the block is the unit of work under test
        async with store.transaction() as tx:
            await tx.sessions.create(purpose="new", created_by="planner", session_id="s2")
            with pytest.raises(ConflictError):
                await tx.sessions.create(purpose="dup", created_by="planner", session_id="s1")
            # the unit refuses further calls ...
            with pytest.raises(ContextStoreError, match="failed earlier"):
                await tx.sessions.get("s2")
    # ... and is rolled back, not committed, although the block handled the error
    assert isinstance(caught.value.__cause__, ConflictError)
    assert await snapshot(store) == before
    assert await store.sessions.get("s2") is None


async def test_bad_input_refused_before_any_sql_leaves_the_unit_usable(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.sessions.create(purpose="ok", created_by="planner", session_id="s1")
        with pytest.raises(ValidationError):
            await tx.messages.add("s1", sender="planner", content="")
        await tx.messages.add("s1", sender="planner", content="still fine")
    assert await store.messages.count("s1", viewer=ADMIN) == 1


async def test_a_missing_session_inside_a_unit_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        async with store.transaction() as tx:
            await tx.messages.add("nowhere", sender="planner", content="hello")
    assert await store.sessions.get("nowhere") is None


async def test_add_many_inside_a_unit_is_all_or_nothing_with_the_unit(store: Store) -> None:
    with pytest.raises(Boom):  # noqa: PT012 - the block is the unit of work under test
        async with store.transaction() as tx:
            await tx.sessions.create(purpose="bulk", created_by="planner", session_id="s1")
            added = await tx.messages.add_many("s1", [new_message(f"m{i}") for i in range(250)])
            assert len(added) == 250
            assert await tx.messages.count("s1", viewer=ADMIN) == 250
            raise Boom
    assert await store.messages.count("s1", viewer=ADMIN) == 0


async def test_tx_is_unusable_after_its_block(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        await tx.sessions.get("s1")
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        await tx.memory.set("a", "k", 1)
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        tx.savepoint()
    assert await store.sessions.get("s1") is not None


async def test_tx_is_unusable_after_a_block_that_raised(store: Store) -> None:
    with pytest.raises(Boom):
        async with store.transaction() as tx:
            raise Boom
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        await tx.audit.record("late", agent_id="a")


async def test_two_units_of_work_on_one_database_queue(store: Store) -> None:
    # read your writes is per task: the counts below see the units' writes
    # because this task has written before starting them (see
    # test_concurrent_sets_of_one_global_key_leave_one_entry)
    await store.memory.set("setup", "k", 0)
    entered = asyncio.Event()

    async def first() -> None:
        async with store.transaction() as tx:
            await tx.sessions.create(purpose="one", created_by="a", session_id="s1")
            entered.set()
            await asyncio.sleep(0.2)  # hold the unit open while the second begins
            await tx.messages.add("s1", sender="a", content="from the first")

    async def second() -> None:
        await entered.wait()
        async with store.transaction() as tx:
            await tx.sessions.create(purpose="two", created_by="b", session_id="s2")
            await tx.messages.add("s2", sender="b", content="from the second")

    await asyncio.gather(first(), second())
    assert await store.messages.count("s1", viewer=ADMIN) == 1
    assert await store.messages.count("s2", viewer=ADMIN) == 1


async def test_run_transaction_returns_what_work_returns(store: Store) -> None:
    async def work(tx: Transaction) -> str:
        await _fill(tx)
        return "done"

    assert await store.run_transaction(work) == "done"
    assert await _counts(store) == COMMITTED


async def test_run_transaction_does_not_retry_the_callers_exception(store: Store) -> None:
    calls = 0

    async def work(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        await _fill(tx)
        raise Boom

    with pytest.raises(Boom):
        await store.run_transaction(work)
    assert calls == 1
    assert await _counts(store) == NOTHING


async def test_run_transaction_does_not_retry_a_conflict(store: Store) -> None:
    await make_session(store, "s1")
    calls = 0

    async def work(tx: Transaction) -> None:
        nonlocal calls
        calls += 1
        await tx.sessions.create(purpose="dup", created_by="planner", session_id="s1")

    with pytest.raises(ConflictError):
        await store.run_transaction(work)
    assert calls == 1


async def test_a_cancelled_unit_commits_nothing_and_releases_its_connection(
    store: Store,
) -> None:
    inside = asyncio.Event()

    async def unit() -> None:
        async with store.transaction() as tx:
            await _fill(tx)
            inside.set()
            await asyncio.sleep(30)  # cancelled here, with the unit's writes in flight

    task = asyncio.create_task(unit())
    await asyncio.wait_for(inside.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _counts(store) == NOTHING
    # the unit's connection (and on SQLite its write lock) was given back:
    # the next unit gets through at once instead of waiting for it
    async with asyncio.timeout(10), store.transaction() as tx:
        await _fill(tx)
    assert await _counts(store) == COMMITTED
