"""`contextstore demo` on the four backends: its summary is what the database holds afterwards."""

from __future__ import annotations

import asyncio
import json
import math
import re

import pytest
from sqlalchemy import Table, func, select
from typer.testing import CliRunner

from contextstore import ConnectionManager, Settings
from contextstore._admin.cli import app
from contextstore.schema import agent_memory, audit_log, messages, session_participants, sessions

AGENTS, SESSIONS, MESSAGES = 4, 3, 7
SMALL = ["--agents", str(AGENTS), "--sessions", str(SESSIONS), "--messages", str(MESSAGES)]
#: the demo's summary field for each table that holds it
COUNTED: dict[str, Table] = {
    "sessions": sessions,
    "participants": session_participants,
    "messages": messages,
    "memory_writes": agent_memory,
    "audit_events": audit_log,
}


def stored(url: str) -> dict[str, int]:
    """Rows per COUNTED table, read with a fresh ConnectionManager."""

    async def count() -> dict[str, int]:
        db = ConnectionManager(Settings(database_url=url, auto_migrate=False))
        try:
            return {
                field: int(await db.fetch_value(select(func.count()).select_from(table)) or 0)
                for field, table in COUNTED.items()
            }
        finally:
            await db.dispose()

    return asyncio.run(count())


def expected_counts() -> dict[str, int]:
    """What the demo's workload does with SMALL, worked out independently of it."""
    members = min(AGENTS, max(2, AGENTS // 2))
    return {
        "sessions": SESSIONS,
        "participants": SESSIONS * members,
        "messages": SESSIONS * (MESSAGES + 5),  # 5 more per session in one add_many
        "memory_writes": SESSIONS * math.ceil(MESSAGES / 5),  # every fifth message
        "audit_events": SESSIONS,
    }


def test_demo_json_matches_the_database(backend_url: tuple[str, str]) -> None:
    backend, url = backend_url
    result = CliRunner().invoke(
        app, ["demo", "--database-url", url, "--backend", backend, "--json", *SMALL]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["backend"] == backend
    assert summary["url"] == Settings(database_url=url).safe_url
    assert summary["health"]["ok"] is True
    assert summary["health"]["schema_current"] is True

    reported = {field: summary[field] for field in COUNTED}
    assert reported == stored(url)
    assert reported == expected_counts()
    assert summary["searches"] == SESSIONS
    assert isinstance(summary["search_hits"], int)
    operations = {row["operation"]: row["count"] for row in summary["latency_ms"]}
    assert operations["messages.add"] == SESSIONS * MESSAGES
    assert operations["sessions.create"] == SESSIONS


@pytest.mark.sqlite
def test_demo_text_summary_matches_the_database(sqlite_empty_url: str) -> None:
    result = CliRunner().invoke(app, ["demo", "--database-url", sqlite_empty_url, *SMALL])
    assert result.exit_code == 0, result.output
    assert "health: ok" in result.stdout
    rows = {
        label.replace(" ", "_"): int(value)
        for label, value in re.findall(
            r"^\W*(sessions|participants|messages|memory writes|audit events)\W+(\d+)\W*$",
            result.stdout,
            flags=re.MULTILINE,
        )
    }
    assert rows == stored(sqlite_empty_url)
    assert rows == expected_counts()


def test_demo_json_failure_is_one_document() -> None:
    # nothing listens on port 1: the demo fails connecting, before any work
    url = "postgresql://agent:S3cret-demo@127.0.0.1:1/contextstore"
    result = CliRunner().invoke(
        app,
        ["demo", "--database-url", url, "--json", *SMALL],
        env={"CONTEXTSTORE_CONNECT_TIMEOUT": "5"},
    )
    assert result.exit_code == 1, result.output
    failed = json.loads(result.stdout)
    assert failed["ok"] is False
    assert failed["error"]
    assert failed["url"] == "postgresql+asyncpg://agent:***@127.0.0.1:1/contextstore"
    assert "error" in result.stderr
    assert "S3cret-demo" not in result.stdout + result.stderr
