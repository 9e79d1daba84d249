"""The verifier of the fault suite catches what it must: a lost write, a duplicate,
a partial batch, a failed write that landed, a late call and an untyped error.

Without this, a verifier that found nothing wrong would look the same as a
store that did nothing wrong.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select

from contextstore import DatabaseUnavailableError, Settings, Store
from contextstore.schema import messages

from ._workload import FAILED, Workload, verify

pytestmark = [pytest.mark.faults, pytest.mark.sqlite]


async def test_verifier_reports_every_kind_of_damage(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'verify.db'}"
    async with Store(Settings(database_url=url)) as store:
        workload = await Workload.prepare(store)
        added = [await workload.step("add") for _ in range(4)]
        batch = await workload.step("add_many")
        clean = await verify(url, [workload], deadline=60)
        assert clean.problems() == {}

        lost, doubled, failed, late = added
        await store.db.execute(delete(messages).where(messages.c.id == lost.ids[0]))
        await store.db.execute(
            insert(messages).values(
                session_id=workload.session_id,
                sender=workload.agent,
                sender_type="generic",
                content=doubled.markers[0],
                visibility="public",
                message_type="agent_response",
                metadata={},
                timestamp=(
                    await store.messages.get(doubled.ids[0], viewer=workload.viewer)
                ).timestamp,  # type: ignore[union-attr]
            )
        )
        await store.db.execute(delete(messages).where(messages.c.id == batch.ids[0]))
        # pretend the call said "nothing written", "took too long", or leaked a raw error
        failed.status = FAILED
        failed.error = DatabaseUnavailableError("lost", may_have_committed=False)
        late.ended = late.started + 120
        reads = await workload.step("count")
        reads.status, reads.error = "untyped", RuntimeError("driver error")
        remaining = await store.db.fetch_value(
            select(messages.c.id).where(messages.c.content == doubled.markers[0]).limit(1)
        )
        assert remaining is not None

    damaged = await verify(url, [workload], deadline=60)
    problems = damaged.problems()
    # the batch lost a row: it is partial, and an acknowledged write is missing
    assert [op.split()[0] for op in problems["lost acknowledged writes"]] == [
        f"#{lost.id}",
        f"#{batch.id}",
    ]
    assert [op.split()[0] for op in problems["duplicates"]] == [f"#{doubled.id}"]
    assert [op.split()[0] for op in problems["partial batches"]] == [f"#{batch.id}"]
    assert [op.split()[0] for op in problems["failed (may_have_committed=False) but written"]] == [
        f"#{failed.id}"
    ]
    assert [op.split()[0] for op in problems["operations past their deadline"]] == [f"#{late.id}"]
    assert [op.split()[0] for op in problems["untyped errors escaped"]] == [f"#{reads.id}"]
    with pytest.raises(AssertionError):
        damaged.check()
