"""``examples/legacy_to_postgresql.py`` moves a legacy file into a fresh PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contextstore import Settings, Store, Viewer

EXAMPLE = Path(__file__).parents[2] / "examples" / "legacy_to_postgresql.py"

pytestmark = pytest.mark.postgresql


def run_example(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


async def held(url: str) -> dict[str, object]:
    async with Store(Settings(database_url=url)) as store:
        (session,) = (await store.sessions.list()).items
        page = await store.messages.list(session.id, viewer=Viewer(agent_id="planner"))
        memory = await store.memory.get("planner", "release")
        return {
            "purpose": session.purpose,
            "participants": sorted(p.agent_id for p in await store.participants.list(session.id)),
            "messages": [(m.sender, m.visibility, m.content) for m in page.items],
            "memory": None if memory is None else memory.value,
            "audit": [e.event_type for e in (await store.audit.list()).items],
        }


def test_the_example_copies_a_legacy_file_into_postgresql(postgresql_empty_url: str) -> None:
    done = run_example(postgresql_empty_url)
    assert done.returncode == 0, done.stderr
    safe = Settings(database_url=postgresql_empty_url).safe_url
    assert f"copied to {safe} (schema " in done.stdout
    for table, rows in [("sessions", 1), ("messages", 3), ("agent_memory", 1)]:
        assert f"  {table:<21} {rows:>3} rows" in done.stdout
    assert "  [private] planner: Note to self: ask about the rollback plan." in done.stdout
    assert "health: ok=True, backend core" in done.stdout

    assert asyncio.run(held(postgresql_empty_url)) == {
        "purpose": "release checklist",
        "participants": ["coder", "planner"],
        "messages": [
            ("planner", "public", "Freeze the schema today."),
            ("coder", "public", "Migrations are ready for review."),
            ("planner", "private", "Note to self: ask about the rollback plan."),
        ],
        "memory": {"version": "2.0", "ready": True},
        "audit": ["release.planned"],
    }

    # a second run finds the target filled: db copy refuses, naming --force
    again = run_example(env={"CONTEXTSTORE_TARGET_URL": postgresql_empty_url})
    assert again.returncode == 1
    assert "is not empty" in again.stderr
    assert "--force" in again.stderr


@pytest.mark.sqlite
def test_without_a_target_it_runs_on_a_local_sqlite_file() -> None:
    done = run_example()
    assert done.returncode == 0, done.stderr
    assert "copied to sqlite+aiosqlite:///" in done.stdout
    assert "search 'migrations': ['Migrations are ready for review.']" in done.stdout
