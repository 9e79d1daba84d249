"""``benchmarks/floor.py`` measures what it says on every dialect.

Numbers are never asserted against a target; what is checked is that each
operation was timed on every subject, that the database's own time was read
(from EXPLAIN ANALYZE, ANALYZE FORMAT=JSON or the sqlite3 call), and that the
printed bound is the ORM's (legacy's) median over that time.
"""

from __future__ import annotations

import io
import os

import pytest
from rich.console import Console

from benchmarks.floor import floor

DIALECTS = [
    pytest.param("sqlite", ["search"], ["raw", "core", "orm", "legacy"], marks=pytest.mark.sqlite),
    pytest.param("postgresql", ["search"], ["raw", "core", "orm"], marks=pytest.mark.postgresql),
    pytest.param(
        "mysql", ["search", "add_many 1k"], ["raw", "core", "orm"], marks=pytest.mark.mysql
    ),
]


@pytest.mark.parametrize(("dialect", "operations", "subjects"), DIALECTS)
async def test_floor_times_every_subject_and_the_database(
    dialect: str, operations: list[str], subjects: list[str]
) -> None:
    out = io.StringIO()
    found = await floor(dialect, 400, 1, Console(file=out, width=200))
    if not found:
        reason = out.getvalue().strip()
        if os.environ.get("CONTEXTSTORE_REQUIRE_SERVERS", "") in {"1", "true", "yes"}:
            pytest.fail(reason)
        pytest.skip(reason)
    assert [each.operation for each in found] == operations
    printed = out.getvalue()
    for each in found:
        assert list(each.times) == subjects
        assert all(value > 0 for value in each.times.values()), each.times
        assert each.database > 0
        # the bound printed is the ORM's median over the database's own time
        assert f"core/orm at best {each.times['orm'] / each.database:.2f}" in printed
    if dialect == "sqlite":
        search = found[0]
        assert f"core/legacy at best {search.times['legacy'] / search.database:.2f}" in printed
