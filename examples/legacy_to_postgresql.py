"""Move a legacy SQLite file to PostgreSQL with ``contextstore db copy``.

The steps a service takes to leave the legacy backend:

1. its data is in a SQLite file written by ``backend="legacy"`` (here the
   example writes a small one: a session, two participants, three messages,
   a memory entry and an audit event);
2. ``contextstore db copy SOURCE TARGET`` copies every table into the target
   database, migrated to the newest schema, and verifies row counts and
   checksums (on a mismatch nothing is written);
3. the service opens the target with the core backend (``backend="core"``,
   the default) and finds the same data.

Run it::

    uv run python examples/legacy_to_postgresql.py postgresql://user@host/dbname
    CONTEXTSTORE_TARGET_URL=postgresql://... uv run python examples/legacy_to_postgresql.py

The target comes from the argument, else ``CONTEXTSTORE_TARGET_URL``, else a
SQLite file in a temporary directory (so it runs on a laptop with no server).
The target must be empty: ``db copy`` refuses to replace rows unless given
``--force``. Passwords in the URL are never printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from contextstore import Settings, Store, Viewer

PLANNER = Viewer(agent_id="planner")


async def write_legacy_file(url: str) -> str:
    """A small legacy-backend SQLite file; returns its session id."""
    async with Store(Settings(database_url=url, backend="legacy")) as store:
        session = await store.sessions.create(purpose="release checklist", created_by="planner")
        await store.participants.join(session.id, "planner", role="owner")
        await store.participants.join(session.id, "coder")
        await store.messages.add(session.id, sender="planner", content="Freeze the schema today.")
        await store.messages.add(
            session.id, sender="coder", content="Migrations are ready for review."
        )
        await store.messages.add(
            session.id,
            sender="planner",
            content="Note to self: ask about the rollback plan.",
            visibility="private",
        )
        await store.memory.set("planner", "release", {"version": "2.0", "ready": True})
        await store.audit.record(
            "release.planned", agent_id="planner", session_id=session.id, result="ok"
        )
        return session.id


def copy(source: str, target: str) -> dict[str, Any]:
    """Run ``contextstore db copy SOURCE TARGET --json``; exit with its code if it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "contextstore", "db", "copy", source, target, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    if done.returncode != 0:
        print(f"db copy failed: {report['error']}", file=sys.stderr)
        raise SystemExit(done.returncode)
    return report


async def show(target: str, session_id: str) -> None:
    """Open the target with the core backend and print what it holds."""
    async with Store(Settings(database_url=target)) as store:
        session = await store.sessions.get(session_id)
        assert session is not None
        print(f"session {session.id}: {session.purpose!r} by {session.created_by}")
        members = await store.participants.list(session_id)
        print("participants:", ", ".join(f"{p.agent_id} ({p.role})" for p in members))
        page = await store.messages.list(session_id, viewer=PLANNER)
        for message in page.items:
            print(f"  [{message.visibility}] {message.sender}: {message.content}")
        memory = await store.memory.get("planner", "release")
        print("memory planner/release:", None if memory is None else memory.value)
        hits = await store.messages.search("migrations", viewer=PLANNER, session_id=session_id)
        print("search 'migrations':", [hit.message.content for hit in hits])
        health = await store.health()
        print(f"health: ok={health.ok}, backend {health.backend}, schema {health.schema_revision}")


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        source = f"sqlite:///{Path(scratch) / 'legacy.db'}"
        # taken out of the environment: Settings reads every CONTEXTSTORE_
        # variable as a setting and refuses one it does not know
        from_env = os.environ.pop("CONTEXTSTORE_TARGET_URL", None)
        target = argv[0] if argv else from_env or f"sqlite:///{Path(scratch) / 'core.db'}"
        session_id = asyncio.run(write_legacy_file(source))
        print(f"legacy file: {Settings(database_url=source).safe_url}")

        report = copy(source, target)
        print(f"copied to {report['target']} (schema {report['revision']}), verified:")
        for table in report["tables"]:
            print(f"  {table['table']:<21} {table['actual']['rows']:>3} rows")

        print("on the core backend:")
        asyncio.run(show(target, session_id))


if __name__ == "__main__":
    main(sys.argv[1:])
