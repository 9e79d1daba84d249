"""Two OS processes write one SQLite file at the same time (core backend).

Each process opens its own Store on the file and adds 500 messages, one call
each, starting together. WAL, ``BEGIN IMMEDIATE`` and the busy timeout must
serialise them without a single error: 1,000 rows, every one exactly once.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contextstore import Settings, Store
from contextstore.schema import messages

from ._workload import report

pytestmark = [pytest.mark.faults, pytest.mark.sqlite]

WRITES = 500
PROCESSES = 2
TIME_LIMIT = 240.0

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    from contextstore import Settings, Store

    async def main(url, session_id, tag, count, go):
        errors = []
        async with Store(Settings(database_url=url)) as store:
            Path(go).with_name(f"ready-{tag}").touch()
            while not Path(go).exists():  # start together
                await asyncio.sleep(0.005)
            first = time.time()
            for i in range(count):
                try:
                    await store.messages.add(session_id, sender=tag, content=f"{tag}:{i}")
                except BaseException as exc:
                    errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
            last = time.time()
        print(json.dumps({"errors": errors, "first": first, "last": last}))

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    """
)


def test_two_processes_write_one_file(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    session_id = asyncio.run(_create_session(url))  # the schema first, then the writers
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, session_id, f"p{n}", str(WRITES), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        for n in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + TIME_LIMIT
        while not all((tmp_path / f"ready-p{n}").exists() for n in range(PROCESSES)):
            assert time.monotonic() < deadline, "the writers did not connect"
            assert all(child.poll() is None for child in children), "a writer died"
            time.sleep(0.01)
        go.touch()  # both connected: start together
        outputs = [child.communicate(timeout=TIME_LIMIT) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    results = []
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode(errors="replace")[-2000:]
        results.append(json.loads(out.decode().strip().splitlines()[-1]))

    rows, distinct = asyncio.run(_read_back(url, session_id))
    errors = [error for result in results for error in result["errors"]]
    overlap = min(r["last"] for r in results) - max(r["first"] for r in results)
    report(
        request.node.name,
        {
            "rows": len(rows),
            "errors": len(errors),
            "seconds": [round(r["last"] - r["first"], 2) for r in results],
            "overlap_s": round(overlap, 2),
        },
    )
    assert errors == []
    assert len(rows) == PROCESSES * WRITES
    assert distinct == PROCESSES * WRITES
    for n in range(PROCESSES):
        mine = {row["content"] for row in rows if row["sender"] == f"p{n}"}
        assert mine == {f"p{n}:{i}" for i in range(WRITES)}
    # the writers really ran at the same time
    assert overlap > 0, results


async def _create_session(url: str) -> str:
    async with Store(Settings(database_url=url)) as store:
        session = await store.sessions.create(purpose="two writers", created_by="faults")
    return session.id


async def _read_back(url: str, session_id: str) -> tuple[list[Any], int]:
    async with Store(Settings(database_url=url)) as fresh:
        where = messages.c.session_id == session_id
        rows = await fresh.db.fetch_all(select(messages.c.sender, messages.c.content).where(where))
        distinct = await fresh.db.fetch_value(
            select(func.count(func.distinct(messages.c.content))).where(where)
        )
    return rows, int(distinct)
