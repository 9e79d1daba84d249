"""A real deadlock between two units of work, resolved by ``run_transaction``.

Only the servers lock rows: on SQLite ``BEGIN IMMEDIATE`` makes the second
unit wait for the first (see the contract suite), so no deadlock can form.
Two units update the same two sessions in opposite orders and meet at a
barrier after their first update, so each waits for the other's row lock. The
server rolls one back (PostgreSQL 40P01, MariaDB 1213); ``run_transaction``
runs that unit's work again from the start and both commit.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from contextstore import Settings, Store, Transaction

SERVERS = [
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@pytest.fixture(params=SERVERS)
def server_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_empty_url")
    return url


async def test_run_transaction_re_runs_the_deadlock_victim(server_url: str) -> None:
    async with Store(Settings(database_url=server_url)) as store:
        for session_id in ("a", "b"):
            await store.sessions.create(purpose="0", created_by="t", session_id=session_id)
        barrier = asyncio.Barrier(2)
        attempts: Counter[str] = Counter()

        def transfer(name: str, first: str, second: str) -> object:
            async def work(tx: Transaction) -> str:
                attempts[name] += 1
                await tx.sessions.update(first, purpose=f"{name} first")
                if attempts[name] == 1:  # only the first attempts meet: a re-run goes through
                    await asyncio.wait_for(barrier.wait(), 30)
                await tx.sessions.update(second, purpose=f"{name} second")
                return name

            return store.run_transaction(work)

        done = await asyncio.wait_for(
            asyncio.gather(transfer("ab", "a", "b"), transfer("ba", "b", "a")), 60
        )

        assert sorted(done) == ["ab", "ba"]
        # one unit was the victim and ran again; the other committed at once
        assert sorted(attempts.values()) == [1, 2]
        victim = next(name for name, count in attempts.items() if count == 2)
        # the victim ran last, so its second updates are what is stored
        first, second = ("a", "b") if victim == "ab" else ("b", "a")
        stored_first = await store.sessions.get(first)
        stored_second = await store.sessions.get(second)
        assert stored_first is not None
        assert stored_second is not None
        assert stored_first.purpose == f"{victim} first"
        assert stored_second.purpose == f"{victim} second"
