"""examples/fastapi_service.py runs as a script on every dialect and answers as it says."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from fastapi import FastAPI

from contextstore import Settings, Store, Viewer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi_service.py"


async def test_the_example_serves_its_requests(empty_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CONTEXTSTORE_DATABASE_URL": empty_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    statuses = [int(line.split(" -> ")[1].split()[0]) for line in lines]
    assert statuses == [201, 201, 201, 200, 422, 404, 200]
    listed = lines[3]
    assert "kick-off" in listed
    assert "note to self" not in listed  # private to its sender
    assert '"ok": true' in lines[-1]
    # it wrote to the configured database
    async with Store(Settings(database_url=empty_url)) as store:
        sessions = (await store.sessions.list()).items
        assert [s.purpose for s in sessions] == ["plan"]
        assert await store.messages.count(sessions[0].id, viewer=Viewer(agent_id="planner-1")) == 2


def test_the_example_is_an_importable_app() -> None:
    from examples.fastapi_service import app

    assert isinstance(app, FastAPI)
    paths = set(app.openapi()["paths"])
    assert {"/sessions", "/sessions/{session_id}/messages", "/healthz"} <= paths
