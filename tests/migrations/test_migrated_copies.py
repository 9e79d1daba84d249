"""The migrated copies the contract suite runs on (``Server.create_database(
migrated=True)``, ``sqlite_migrated_url``) hold exactly what migrating an
empty database gives: the same tables, columns, keys, indexes, checks,
triggers and version rows, on every dialect."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from contextstore import Settings, Store
from contextstore._migrations import VERSION_TABLE

from ._inspect import TRIGGERS_SQL

DIALECTS = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


def _described(conn: Connection) -> dict[str, Any]:
    """Everything reflection tells of the database, names sorted, types as text."""
    inspector = inspect(conn)
    dialect = conn.engine.dialect.name
    dialect = "mysql" if dialect == "mariadb" else dialect
    tables: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign keys": sorted(
                (str(fk["name"]), fk["constrained_columns"], fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (str(i["name"]), i["column_names"], bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (str(u["name"]), u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "checks": sorted(
                (str(ck["name"]), ck["sqltext"]) for ck in inspector.get_check_constraints(table)
            ),
        }
    triggers = sorted(str(row[0]) for row in conn.exec_driver_sql(TRIGGERS_SQL[dialect]))
    versions = sorted(str(row[0]) for row in conn.execute(text(f"SELECT * FROM {VERSION_TABLE}")))
    return {"tables": tables, "triggers": triggers, "versions": versions}


async def _describe(url: str) -> dict[str, Any]:
    async with Store(Settings(database_url=url)) as store, store.db.engine.connect() as conn:
        return await conn.run_sync(_described)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_migrated_copy_is_what_migrating_gives(
    dialect: str, request: pytest.FixtureRequest
) -> None:
    fresh: str = request.getfixturevalue(f"{dialect}_empty_url")
    copy: str = request.getfixturevalue(f"{dialect}_migrated_url")
    migrated = await _describe(fresh)  # the Store migrates the empty database
    copied = await _describe(copy)
    assert migrated["versions"], "nothing was migrated"
    assert copied == migrated
