"""Legacy stores every value in exactly the representation core (SQLAlchemy) uses.

The same logical rows are written once by each backend, then the raw SQLite
values are compared column by column: storage class (``typeof``) and text.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]

#: SQLAlchemy's SQLite DATETIME layout: naive UTC, always six fraction digits.
DATETIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
TIME_COLUMNS = {"created_at", "updated_at", "expires_at", "timestamp", "joined_at"}
#: differ by design: generated ids, and the idempotency tokens only core's
#: retrying writes use (legacy never retries, so it leaves them NULL).
OWN_COLUMNS = {"id", "session_id", "scope", "client_token"}

METADATA = {"ü": "snow ☃", "nested": {"list": [1, 2.5, None, True, False, ""]}, "n": 10}
VALUES: list[Any] = [None, False, True, 0, 7, 2.5, "", "12", [], {}, {"a": [1, {"b": None}]}]


#: which backend wrote a row: every row carries "legacy" or "core" here.
WRITER = {
    "sessions": "id",
    "messages": "session_id",
    "agent_memory": "coalesce(session_id, agent_id)",
    "audit_log": "session_id",
    "session_participants": "session_id",
}


def _rows(path: Path, table: str) -> dict[str, list[dict[str, tuple[str, Any]]]]:
    """``{writer: [{column: (typeof, raw value)}, ...]}`` in insertion order."""
    conn = sqlite3.connect(path)
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({table})")]
        probes = ", ".join(f'typeof("{c}"), "{c}"' for c in columns)
        query = f"SELECT {WRITER[table]}, {probes} FROM {table} ORDER BY rowid"
        found: dict[str, list[dict[str, tuple[str, Any]]]] = {"legacy": [], "core": []}
        for who, *values in conn.execute(query):
            row = {c: (values[2 * i], values[2 * i + 1]) for i, c in enumerate(columns)}
            found["legacy" if "legacy" in who else "core"].append(row)
        return found
    finally:
        conn.close()


async def test_both_backends_store_the_same_bytes(open_store: OpenStore, db_path: Path) -> None:
    async with open_store("legacy") as legacy, open_store("core") as core:
        for store, sid in ((legacy, "legacy"), (core, "core")):
            await store.sessions.create(
                purpose="p", created_by="a", metadata=METADATA, session_id=sid
            )
            await store.sessions.update(sid, is_active=False)
            await store.messages.add(sid, sender="a", content="body ☃", metadata=METADATA)
            for i, value in enumerate(VALUES):
                await store.memory.set(
                    "a", f"k{i}", value, session_id=sid, ttl=60, metadata=METADATA
                )
            await store.memory.set(f"global-{sid}", "k", METADATA)
            await store.audit.record(
                "e", agent_id="a", session_id=sid, resource="r", metadata=METADATA
            )
            await store.participants.join(sid, "a")

    for table in WRITER:
        by_writer = _rows(db_path, table)
        assert len(by_writer["legacy"]) == len(by_writer["core"]) > 0, table
        for from_legacy, from_core in zip(by_writer["legacy"], by_writer["core"], strict=True):
            for column, (kind, value) in from_legacy.items():
                core_kind, core_value = from_core[column]
                if column in OWN_COLUMNS or (table, column) == ("agent_memory", "agent_id"):
                    continue  # global memory rows are told apart by agent_id
                assert kind == core_kind, (table, column, value, core_value)
                if column in TIME_COLUMNS and value is not None:
                    assert DATETIME.match(value), (table, column, value)
                    assert DATETIME.match(core_value), (table, column, core_value)
                else:
                    assert value == core_value, (table, column)
