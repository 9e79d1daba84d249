"""One unit of work per request (``TransactionDep``): committed before the response
is sent when the endpoint returns, rolled back when it raises, and a COMMIT that
fails is the response, never a 2xx.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import MutableMapping
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import insert, text

import contextstore.errors
from contextstore import Settings, Store, Transaction, Viewer
from contextstore.fastapi import StoreDep, TransactionDep
from contextstore.schema import session_participants

from ._app import assert_nothing_internal, make_app, serve

ADMIN = Viewer(agent_id="auditor", is_admin=True)


async def _written(store: Store, session_id: str) -> dict[str, Any]:
    return {
        "session": await store.sessions.get(session_id) is not None,
        "participants": len(await store.participants.list(session_id)),
        "messages": await store.messages.count(session_id, viewer=ADMIN),
    }


COMMITTED = {"session": True, "participants": 1, "messages": 1}
NOTHING = {"session": False, "participants": 0, "messages": 0}


async def test_a_request_that_returns_commits_its_writes(
    client: httpx.AsyncClient, reader: Store
) -> None:
    response = await client.post("/sessions/s1", json={"agent": "planner"})
    assert response.status_code == 201
    assert response.json() == {"id": "s1"}
    assert await _written(reader, "s1") == COMMITTED
    again = await client.get("/sessions/s1")
    assert again.status_code == 200
    assert again.json()["created_by"] == "planner"


@pytest.mark.parametrize(
    ("fail", "status"), [("http", 400), ("crash", 500)], ids=["http-exception", "own-exception"]
)
async def test_a_request_that_raises_rolls_back_its_writes(
    client: httpx.AsyncClient, reader: Store, fail: str, status: int
) -> None:
    response = await client.post("/sessions/s1", json={"fail": fail})
    assert response.status_code == status
    assert await _written(reader, "s1") == NOTHING
    assert (await client.get("/sessions/s1")).status_code == 404


async def test_a_refused_commit_is_an_error_response_and_writes_nothing(
    client: httpx.AsyncClient, reader: Store
) -> None:
    # the endpoint swallows a failed statement and returns: the unit of work
    # refuses to COMMIT, and that refusal, not the endpoint's 201, is the answer
    response = await client.post("/sessions/s1", json={"fail": "swallow"})
    assert response.status_code == 500
    assert response.json()["error"] == "ContextStoreError"
    assert "rolled back" in response.json()["detail"]
    assert await _written(reader, "s1") == NOTHING


async def audited(tx: TransactionDep) -> Transaction:
    """A dependency of the request that writes through its unit of work."""
    await tx.audit.record("request", agent_id="gateway")
    return tx


# module level: FastAPI resolves the (string) annotations in the module's globals
AuditedDep = Annotated[Transaction, Depends(audited)]


async def test_every_dependency_of_a_request_shares_its_unit_of_work(empty_url: str) -> None:
    app = make_app(Settings(database_url=empty_url))

    @app.post("/audited/{session_id}", status_code=201)
    async def create(
        session_id: str,
        fail: bool,
        tx: TransactionDep,
        seen: AuditedDep,
    ) -> dict[str, bool]:
        await tx.sessions.create(purpose="plan", created_by="planner", session_id=session_id)
        if fail:
            raise HTTPException(status_code=400, detail="refused")
        return {"same": seen is tx}

    async with serve(app) as client, Store(Settings(database_url=empty_url)) as reader:
        refused = await client.post("/audited/s1", params={"fail": True})
        assert refused.status_code == 400
        assert (await reader.audit.list()).items == []  # the dependency's write went too
        created = await client.post("/audited/s2", params={"fail": False})
        assert created.status_code == 201
        assert created.json() == {"same": True}
        assert [e.event_type for e in (await reader.audit.list()).items] == ["request"]
        assert await reader.sessions.get("s2") is not None


@pytest.mark.sqlite
@pytest.mark.legacy
async def test_the_legacy_backend_serves_units_of_work_alike(sqlite_empty_url: str) -> None:
    app = make_app(Settings(database_url=sqlite_empty_url, backend="legacy"))
    async with serve(app) as client:
        assert (await client.post("/sessions/s1", json={})).status_code == 201
        assert (await client.post("/sessions/s2", json={"fail": "http"})).status_code == 400
        assert (await client.post("/sessions/s1", json={})).status_code == 409
        assert (await client.post("/sessions/s3", json={"fail": "swallow"})).status_code == 500
        health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json()["backend"] == "legacy"
    async with Store(Settings(database_url=sqlite_empty_url, backend="legacy")) as reader:
        assert await _written(reader, "s1") == COMMITTED
        assert await _written(reader, "s2") == NOTHING
        assert await _written(reader, "s3") == NOTHING


async def _refuse_commit_sqlite(tx: Transaction, store: Store) -> None:
    # foreign keys checked at COMMIT, and a participant of a session that does
    # not exist: the database refuses the COMMIT itself
    await tx.execute(text("PRAGMA defer_foreign_keys = ON"))
    await tx.execute(insert(session_participants).values(session_id="nowhere", agent_id="a"))


async def _kill_postgresql(tx: Transaction, store: Store) -> None:
    pid = await tx.fetch_value(text("SELECT pg_backend_pid()"))
    # the second argument waits (ms) until the backend is gone
    assert await store.db.fetch_value(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})


async def _kill_mysql(tx: Transaction, store: Store) -> None:
    pid = await tx.fetch_value(text("SELECT CONNECTION_ID()"))
    await store.db.execute(text(f"KILL CONNECTION {int(pid)}"))
    alive = text("SELECT COUNT(*) FROM information_schema.processlist WHERE id = :pid")
    for _ in range(100):
        if await store.db.fetch_value(alive, {"pid": pid}) == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"connection {pid} outlived KILL")


#: how each dialect fails the COMMIT of a unit whose statements all succeeded:
#: SQLite refuses it, a server loses the connection before it (killed from a
#: second connection); the one place the dialects cannot be driven alike
COMMIT_BREAKERS = {
    "sqlite": _refuse_commit_sqlite,
    "postgresql": _kill_postgresql,
    "mysql": _kill_mysql,
}


async def test_a_commit_that_fails_is_never_a_2xx(empty_url: str, dialect_name: str) -> None:
    app = make_app(Settings(database_url=empty_url))

    @app.post("/doomed/{session_id}", status_code=201)
    async def doomed(session_id: str, tx: TransactionDep, store: StoreDep) -> dict[str, str]:
        await tx.sessions.create(purpose="doomed", created_by="planner", session_id=session_id)
        await COMMIT_BREAKERS[dialect_name](tx, store)
        return {"id": session_id}

    async with serve(app) as client:
        response = await client.post("/doomed/s1")
        assert response.status_code >= 400, response.text
        assert_nothing_internal(response)
        # the typed error of the failed COMMIT, whichever it is, is the answer
        assert response.json()["error"] in contextstore.errors.__all__
        if response.json().get("may_have_committed"):
            # a lost COMMIT: the outcome is unknown, so no invitation to retry
            assert response.status_code == 503
            assert "Retry-After" not in response.headers
        # nothing was committed, and the app goes on serving on a fresh connection
        assert (await client.get("/sessions/s1")).status_code == 404
        assert (await client.post("/sessions/s2", json={})).status_code == 201


async def _status_when_the_response_starts(
    app: FastAPI, path: str, reader: Store, session_id: str
) -> tuple[int, bool]:
    """Call ``app`` over raw ASGI; return the status and whether the write was
    committed (seen by another connection) when the response began."""
    seen: dict[str, Any] = {}
    body = json.dumps({"agent": "planner"}).encode()
    received = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal received
        if received:
            await asyncio.Event().wait()  # the client never disconnects
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen["status"] = message["status"]
            seen["committed"] = await reader.sessions.get(session_id) is not None

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"service")],
        "client": ("127.0.0.1", 50000),
        "server": ("service", 80),
    }
    await app(scope, receive, send)
    return seen["status"], seen["committed"]


async def test_the_commit_happens_before_the_response_is_sent(
    app: FastAPI, client: httpx.AsyncClient, reader: Store
) -> None:
    assert await _status_when_the_response_starts(app, "/sessions/s1", reader, "s1") == (
        201,
        True,
    )
    # the tester tested: with FastAPI's default dependency scope the same write
    # is not yet committed when the client is told 201
    assert await _status_when_the_response_starts(app, "/late/s2", reader, "s2") == (201, False)
    assert await reader.sessions.get("s2") is not None


async def test_300_concurrent_requests_get_the_same_answers_on_every_dialect(
    client: httpx.AsyncClient, reader: Store
) -> None:
    # two requests per session id: one creates it, the other finds it taken
    ids = [f"s{i}" for i in range(150)] * 2
    responses = await asyncio.gather(
        *(
            client.post(f"/sessions/{sid}", json={"agent": f"agent-{n}"})
            for n, sid in enumerate(ids)
        )
    )
    assert Counter(r.status_code for r in responses) == {201: 150, 409: 150}
    assert {r.json()["error"] for r in responses if r.status_code == 409} == {"ConflictError"}
    assert sorted(r.json()["id"] for r in responses if r.status_code == 201) == sorted(ids[:150])
    page = await reader.sessions.list(limit=1000)
    assert len(page.items) == 150
    for sid in ("s0", "s77", "s149"):
        assert await _written(reader, sid) == COMMITTED
