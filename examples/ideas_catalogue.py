"""A catalogue of ideas in a table of the service's own, beside contextstore's.

Run it with ``uv run python examples/ideas_catalogue.py``: it works on a
throw-away SQLite file, or on the database ``CONTEXTSTORE_DATABASE_URL``
names (any of the three dialects; its table ``example_ideas`` is emptied
first). It shows a bulk import, a lookup by source id, an upsert, filtered
keyset pages, numbered pages and counts, and a unit of work that writes a
contextstore session and the service's own rows together.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, true

from contextstore import Settings, Store
from contextstore.types import JSONDocument, UTCDateTime

metadata = MetaData()

ideas = Table(
    "example_ideas",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source_id", String(255), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("category", String(100), index=True),
    Column("keywords", JSONDocument),
    Column("score", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    mysql_charset="utf8mb4",
)


class Idea(BaseModel):
    id: int | None = None
    source_id: str
    title: str
    category: str | None = None
    keywords: list[str] = []
    score: int | None = None
    created_at: datetime


CATEGORIES = ("tools", "ops", "research")
START = datetime(2026, 1, 1, tzinfo=UTC)


def feed(count: int) -> list[Idea]:
    """What an importer would read from its sources: ``count`` ideas."""
    return [
        Idea(
            source_id=f"yt-{number:04d}",
            title=f"Idea number {number}",
            category=CATEGORIES[number % 3],
            keywords=[f"topic-{number % 5}", "imported"],
            score=number % 6,
            created_at=START + timedelta(hours=number),
        )
        for number in range(1, count + 1)
    ]


async def catalogue(store: Store) -> None:
    async with store.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    repo = store.table(ideas, Idea)
    await repo.delete_where(true())  # a fresh start on every run

    imported = await repo.add_many(feed(120))
    print(f"imported {len(imported)} ideas, ids {imported[0].id}..{imported[-1].id}")

    found = await repo.get_by(source_id="yt-0042")
    print(f"yt-0042 is {found.title!r} in {found.category}" if found else "yt-0042 missing")

    renamed = await repo.upsert(
        Idea(source_id="yt-0042", title="The answer", category="research", created_at=START),
        on=("source_id",),
    )
    print(f"upserted yt-0042: id {renamed.id} kept, title now {renamed.title!r}")

    # keyset pages: the best ops ideas first, 10 at a time, however far it goes
    pages, rows, cursor = 0, 0, None
    while True:
        page = await repo.list(
            ideas.c.score >= 4,
            category="ops",
            order_by="score",
            descending=True,
            limit=10,
            cursor=cursor,
        )
        pages, rows = pages + 1, rows + len(page.items)
        if pages == 1:
            print(f"best ops idea: {page.items[0].source_id} (score {page.items[0].score})")
        cursor = page.next_cursor
        if cursor is None:
            break
    print(f"ops ideas scoring 4 or more: {rows} in {pages} keyset pages")

    # numbered pages, for a screen with page numbers
    second = await repo.page(number=2, size=15, order_by="created_at", category="research")
    last_page = -(-second.total // second.size)
    print(
        f"research page {second.number} of {last_page}: {len(second.items)} ideas, "
        f"first {second.items[0].source_id}, has_next={second.has_next}, "
        f"has_prev={second.has_prev}"
    )

    counts = {category: await repo.count(category=category) for category in CATEGORIES}
    print("per category: " + ", ".join(f"{name}={count}" for name, count in counts.items()))

    # one unit of work: a contextstore session and the service's own rows commit together
    async with store.transaction() as tx:
        session = await tx.sessions.create(purpose="review ideas", created_by="curator")
        await tx.table(ideas, Idea).update(renamed.id, score=5, keywords=["reviewed"])
        await tx.messages.add(session.id, sender="curator", content="yt-0042 reviewed")
    reviewed = await repo.get(renamed.id)
    print(f"reviewed yt-0042: score {reviewed.score if reviewed else None}")
    print(f"total ideas: {await repo.count()}")


async def main() -> None:
    if os.environ.get("CONTEXTSTORE_DATABASE_URL"):
        async with Store() as store:  # the environment's settings
            await catalogue(store)
        return
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'ideas.db'}"
        async with Store(Settings(database_url=url)) as store:
            await catalogue(store)


if __name__ == "__main__":
    asyncio.run(main())
