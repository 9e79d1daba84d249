"""What a database holds, for the migration tests: tables, full-text objects, triggers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from contextstore._dialects import dialect_for
from contextstore.connection import ConnectionManager

#: user-defined triggers, by dialect (the only place these tests name dialects).
TRIGGERS_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
    "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    "mysql": "SELECT trigger_name FROM information_schema.triggers "
    "WHERE trigger_schema = DATABASE()",
}

CONTEXTSTORE_TABLES = {
    "sessions",
    "messages",
    "agent_memory",
    "audit_log",
    "session_participants",
}


@dataclass(frozen=True)
class Snapshot:
    tables: set[str]
    fulltext: set[str]
    triggers: set[str]


def _snapshot(conn: Connection) -> Snapshot:
    recipe = dialect_for(conn.engine.url)
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    names = set(tables)
    if "messages" in tables:
        names |= {column["name"] for column in inspector.get_columns("messages")}
        names |= {str(index["name"]) for index in inspector.get_indexes("messages")}
    triggers = {str(row[0]) for row in conn.exec_driver_sql(TRIGGERS_SQL[recipe.name])}
    return Snapshot(
        tables=tables,
        fulltext={name for name in names if recipe.is_fulltext_object(name)},
        triggers=triggers,
    )


async def snapshot(db: ConnectionManager) -> Snapshot:
    """Reflect the database behind ``db`` (on a connection of its own)."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_snapshot)


async def assert_at_head(db: ConnectionManager) -> None:
    seen = await snapshot(db)
    assert seen.tables >= CONTEXTSTORE_TABLES
    assert seen.fulltext, "the full-text objects were not created"


async def assert_empty(db: ConnectionManager, *, others: frozenset[str] = frozenset()) -> None:
    """Nothing of contextstore is left, not even its version table; ``others``
    (a service's tables) are all still there."""
    seen = await snapshot(db)
    assert seen.tables == set(others)
    assert seen.fulltext == set()
    assert seen.triggers == set()
