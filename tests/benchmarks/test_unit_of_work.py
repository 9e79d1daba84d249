"""Every subject's ``unit_of_work`` is its five calls in one transaction, committed once.

What is checked, on each dialect whose server is reachable: after a unit, the
new message and the memory value are there for another connection (core's
pool) to read, so the unit committed; a unit whose third call (``memory.set``
of a value no JSON encoder takes) fails leaves neither its message nor its
memory value behind, so the ``add`` before it was inside the same transaction.
On MySQL/MariaDB the raw and ORM subjects run both of their ``memory.set``
paths (``RETURNING`` where the server has it, the upsert and a ``SELECT``
where not). Speed is never checked here.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.exc import StatementError

from benchmarks.corpus import Corpus, utcnow
from benchmarks.plan import MEMORY_AGENT, READ_SESSION, WRITE_SESSION
from benchmarks.scratch import Scratch
from benchmarks.subjects import (
    OrmSubject,
    RawSubject,
    StoreSubject,
    Subject,
    orm_subject,
    raw_subject,
)
from contextstore import Viewer
from contextstore.errors import ContextStoreError

ADMIN = Viewer(agent_id="bench-admin", is_admin=True)
#: what memory.set of a set raises: json.dumps (raw), validation (core, legacy), the
#: JSON bind processor (orm); each names the value that cannot be stored
UNSERIALISABLE = (TypeError, ContextStoreError, StatementError)
KEY = "key-000"


@dataclass
class Subjects:
    dialect: str
    core: StoreSubject
    raw: RawSubject
    orm: OrmSubject
    all: list[Subject]


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ]
)
async def subjects(request: pytest.FixtureRequest) -> AsyncIterator[Subjects]:
    """Every subject of the dialect on one scratch database with a few read messages."""
    dialect: str = request.param
    scratch = Scratch(dialect)
    reason = await scratch.create()
    if reason is not None:
        if os.environ.get("CONTEXTSTORE_REQUIRE_SERVERS", "") in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    opened: list[Subject] = []
    try:
        core = StoreSubject("core", scratch.store_url(), backend="core")
        await core.open()  # migrates the scratch database
        opened.append(core)
        raw = raw_subject(dialect, scratch)
        await raw.open()
        opened.insert(0, raw)
        if dialect == "sqlite":
            legacy = StoreSubject("legacy", scratch.store_url(), backend="legacy")
            await legacy.open()
            opened.append(legacy)
        orm = orm_subject(scratch)
        await orm.open()
        opened.append(orm)
        for session_id in (READ_SESSION, WRITE_SESSION):
            await core.store.sessions.create(
                session_id=session_id, purpose="test", created_by="bench-test"
            )
        await raw.seed(READ_SESSION, Corpus().messages(20), utcnow())
        await core.store.memory.set(MEMORY_AGENT, KEY, {"n": 0, "note": "seed value"})
        yield Subjects(dialect=dialect, core=core, raw=raw, orm=orm, all=opened)
    finally:
        for subject in reversed(opened):
            await subject.close()
        await scratch.drop()


async def _messages(core: StoreSubject) -> int:
    return await core.store.messages.count(WRITE_SESSION, viewer=ADMIN)


async def _memory(core: StoreSubject) -> Any:
    entry = await core.store.memory.get(MEMORY_AGENT, KEY)
    return None if entry is None else entry.value


async def _check_subject(subject: Subject, subjects: Subjects, number: int) -> None:
    core = subjects.core
    low, _high = await subjects.raw.id_range(READ_SESSION)
    item = Corpus(seed=100 + number).message()
    value = {"n": number, "by": subject.name}

    new_id = await subject.unit_of_work(WRITE_SESSION, item, low, KEY, value)

    # committed: another connection reads the message and the memory value
    message = await core.store.messages.get(new_id, viewer=ADMIN)
    assert message is not None, subject.name
    assert (message.session_id, message.content) == (WRITE_SESSION, item.content)
    assert await _memory(core) == value, subject.name

    # one transaction: memory.set (the third call) fails, and the add before it is undone
    count = await _messages(core)
    with pytest.raises(UNSERIALISABLE, match="type set is not JSON serializable"):
        await subject.unit_of_work(
            WRITE_SESSION, Corpus(seed=200 + number).message(), low, KEY, {"bad": {1, 2}}
        )
    assert await _messages(core) == count, subject.name
    assert await _memory(core) == value, subject.name


async def test_a_unit_of_work_commits_its_calls_together_on_every_subject(
    subjects: Subjects,
) -> None:
    number = 0
    for subject in subjects.all:
        number += 1
        await _check_subject(subject, subjects, number)
    if subjects.dialect == "mysql":
        # MariaDB 10.5+ returns the upserted row; the path for MySQL, which cannot
        # (the upsert, then a SELECT), runs on MariaDB too: check it as well
        raw: Any = subjects.raw
        orm: Any = subjects.orm
        raw._returning = orm._returning = False
        for subject in (subjects.raw, subjects.orm):
            number += 1
            await _check_subject(subject, subjects, number)
