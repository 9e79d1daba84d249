"""A service's own tables for the ``TableRepository`` contract: the "ideas" table of
DESIGN.md, and tests <-> features linked through a junction table with a
composite primary key.

``InUnitTable`` runs each call of a table repository in a unit of work of its
own (``store.transaction()`` and ``tx.table``), as ``conftest.UnitOfWorkStore``
does for the built-in repositories.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, String, Table, Text

from contextstore import Store
from contextstore.types import ExactString, JSONDocument, UTCDateTime

service_metadata = MetaData()
#: the service's tables hold any text on MySQL/MariaDB
_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

ideas = Table(
    "ideas",
    service_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source_id", String(255), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("category", String(100), index=True),
    Column("keywords", JSONDocument),
    Column("score", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    **_OPTIONS,
)


class Idea(BaseModel):
    id: int | None = None
    source_id: str
    title: str
    category: str | None = None
    keywords: list[str] = []
    score: int | None = None
    created_at: datetime


tests_table = Table(
    "tests",
    service_metadata,
    Column("id", ExactString(64), primary_key=True),
    Column("name", Text, nullable=False),
    **_OPTIONS,
)

features = Table(
    "features",
    service_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    **_OPTIONS,
)

#: the junction: one row per (test, feature) link, its own primary key
test_features = Table(
    "test_features",
    service_metadata,
    Column(
        "test_id", ExactString(64), ForeignKey("tests.id", ondelete="CASCADE"), primary_key=True
    ),
    Column(
        "feature_id",
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("features.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("weight", Integer, nullable=False),
    **_OPTIONS,
)


class TestCase(BaseModel):
    __test__ = False  # not a pytest class

    id: str
    name: str


class Feature(BaseModel):
    id: int | None = None
    name: str


class Link(BaseModel):
    test_id: str
    feature_id: int
    weight: int = 1


#: NOT NULL columns with defaults: a None in the record leaves the value to them
jobs = Table(
    "jobs",
    service_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("state", String(20), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, default=0),
    **_OPTIONS,
)


class Job(BaseModel):
    id: int | None = None
    name: str
    state: str | None = None
    attempts: int | None = None


async def create_tables(store: Store) -> None:
    """The service's tables in the Store's database, beside contextstore's."""
    async with store.db.engine.begin() as conn:
        await conn.run_sync(service_metadata.create_all)


BASE = datetime(2026, 1, 1, tzinfo=UTC)


def idea(number: int, **changes: Any) -> Idea:
    """Idea ``number``: source id ``src-<number>``, created ``number`` minutes after BASE."""
    values: dict[str, Any] = {
        "source_id": f"src-{number:04d}",
        "title": f"idea {number}",
        "category": ("tools", "ops", None)[number % 3],
        "keywords": [f"k{number % 5}"],
        "score": None if number % 7 == 0 else number % 4,
        "created_at": BASE + timedelta(minutes=number),
    }
    values.update(changes)
    return Idea(**values)


class InUnitTable:
    """A table repository whose every call runs in its own ``store.transaction()``."""

    def __init__(self, store: Store, table: Table, record: type[BaseModel]) -> None:
        self._store = store
        self._table = table
        self._record = record

    def __getattr__(self, method: str) -> Any:
        store, table, record = self._store, self._table, self._record

        @functools.wraps(getattr(store.table(table, record), method))
        async def call(*args: Any, **kwargs: Any) -> Any:
            async with store.transaction() as tx:
                return await getattr(tx.table(table, record), method)(*args, **kwargs)

        return call
