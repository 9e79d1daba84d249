"""The inputs of every operation, prepared once per dialect, and the timed call of each."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .corpus import Corpus, MessageData, utcnow
from .plan import (
    MEMORY_AGENT,
    MEMORY_KEYS,
    PAGE_SIZE,
    READ_SESSION,
    WRITE_SESSION,
    OpSpec,
    Plan,
)
from .subjects import OrmSubject, PagePosition, RawSubject, StoreSubject, Subject

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Context:
    """Inputs shared by every subject, prepared once per dialect (untimed)."""

    corpus: Corpus
    query: str
    get_ids: list[int]
    far: dict[str, PagePosition]
    memory_values: list[dict[str, Any]]
    writes: list[MessageData]


async def prepare(
    plan: Plan,
    core: StoreSubject,
    raw: RawSubject,
    console: Console,
    dialect: str,
    *,
    orm: OrmSubject | None = None,
) -> Context:
    """Create the sessions, seed messages and memory, and find the far page.

    The far page's position is found by each kind of subject its own way:
    core (and legacy) follow ``next_cursor``, raw and the ORM take the
    ``(time, id)`` of the row before it with an ``OFFSET`` query.
    """
    corpus = Corpus()
    store = core.store
    for session_id in (READ_SESSION, WRITE_SESSION):
        await store.sessions.create(
            session_id=session_id, purpose="benchmark", created_by="bench-runner"
        )
    start = utcnow() - timedelta(days=3)
    await raw.seed(READ_SESSION, corpus.messages(plan.session_messages), start)
    for n in range(MEMORY_KEYS):
        await store.memory.set(MEMORY_AGENT, f"key-{n:03d}", {"n": n, "note": "seed value"})
    await raw.analyze()
    low, high = await raw.id_range(READ_SESSION)
    rng = random.Random(7)
    get_ids = [rng.randint(low, high) for _ in range(4096)]
    cursor = await core.walk_to(READ_SESSION, plan.far_page)
    position = await raw.far_position(READ_SESSION, plan.far_page)
    far = {
        "raw": position,
        "core": PagePosition(cursor=cursor),
        "legacy": PagePosition(cursor=cursor),
    }
    if orm is not None:
        far["orm"] = await orm.far_position(READ_SESSION, plan.far_page)
    if len(await core.page(READ_SESSION, far["core"])) < PAGE_SIZE:
        raise RuntimeError(f"page {plan.far_page} is not a full page; seed more messages")
    values = [{"n": n, "payload": "x" * 64, "tags": ["a", "b"]} for n in range(256)]
    writes = corpus.messages(2048)
    return Context(
        corpus=corpus,
        query=corpus.search_query(),
        get_ids=get_ids,
        far=far,
        memory_values=values,
        writes=writes,
    )


def call_for(
    spec: OpSpec, subject: Subject, ctx: Context, plan: Plan
) -> Callable[[int], Awaitable[object]]:
    """The timed call of ``spec`` on ``subject``: ``call(i)`` runs the i-th operation."""
    ids, writes = ctx.get_ids, ctx.writes
    if spec.key == "get":
        return lambda i: subject.get(ids[i % len(ids)])
    if spec.key == "concurrent_get":
        return lambda i: subject.pooled_get(ids[i % len(ids)])
    if spec.key == "list_newest":
        return lambda _i: subject.list_newest(READ_SESSION)
    if spec.key == "page_1":
        return lambda _i: subject.page(READ_SESSION, None)
    if spec.key == "page_far":
        position = ctx.far[subject.name]
        return lambda _i: subject.page(READ_SESSION, position)
    if spec.key == "search":
        return lambda _i: subject.search(ctx.query)
    if spec.key == "memory_get":
        return lambda i: subject.memory_get(f"key-{i % MEMORY_KEYS:03d}")
    if spec.key == "memory_set":
        values = ctx.memory_values
        return lambda i: subject.memory_set(f"key-{i % MEMORY_KEYS:03d}", values[i % len(values)])
    if spec.key == "unit_of_work":
        values = ctx.memory_values
        return lambda i: subject.unit_of_work(
            WRITE_SESSION,
            writes[i % len(writes)],
            ids[i % len(ids)],
            f"key-{i % MEMORY_KEYS:03d}",
            values[i % len(values)],
        )
    if spec.key == "add":
        return lambda i: subject.add(WRITE_SESSION, writes[i % len(writes)])
    size = plan.bulk_small if spec.key == "add_many_small" else plan.bulk_large
    batch = _cycle(writes, size)
    return lambda _i: subject.add_many(WRITE_SESSION, batch)


def _cycle(items: list[MessageData], size: int) -> list[MessageData]:
    return [items[n % len(items)] for n in range(size)]
