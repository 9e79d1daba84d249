"""The app every FastAPI test serves: contextstore's lifespan, handlers and health
route, and endpoints that write through a unit of work or fail in every way the
error tree knows.

``serve(app)`` runs the app's lifespan by hand (httpx's ``ASGITransport`` does
not send lifespan events) and yields a client talking to it in process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import text
from starlette.types import Receive, Scope, Send

from contextstore import ConflictError, Settings, Transaction
from contextstore.fastapi import (
    StoreDep,
    TransactionDep,
    add_exception_handlers,
    get_transaction,
    health_router,
    lifespan,
)

#: a statement that runs for seconds on each dialect, far past a test's
#: statement_timeout: the one thing the dialects cannot say alike
SLOW_STATEMENTS = {
    "sqlite": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c"
    ),
    "postgresql": "SELECT pg_sleep(10)",
    "mysql": (
        "SELECT COUNT(*) FROM information_schema.columns a, "
        "information_schema.columns b, information_schema.columns c"
    ),
}

#: what an error body must never carry: driver and SQL text, tracebacks
INTERNAL_MARKERS = (
    "traceback",
    "sqlalchemy",
    "asyncpg",
    "aiomysql",
    "pymysql",
    "sqlite3",
    "integrityerror",
    "unique constraint",
    "duplicate",
    "select ",
    "insert ",
    "pg_sleep",
    "information_schema",
    "__cause__",
)


class NewSession(BaseModel):
    agent: str = "planner"
    #: how the endpoint ends after its writes: "http" raises an HTTPException,
    #: "crash" an exception of its own, "swallow" hides a failed statement
    fail: str | None = None


class Boom(Exception):
    """The endpoint's own exception, not handled by the app."""


def make_app(settings: Settings | None, *, with_lifespan: bool = True) -> FastAPI:
    """The test app on ``settings``; without lifespan it has no Store at all."""
    app = FastAPI(lifespan=lifespan(settings) if with_lifespan else None)
    add_exception_handlers(app, retry_after=7)
    app.include_router(health_router(timeout=3.0))

    @app.post("/sessions/{session_id}", status_code=201)
    async def create_session(
        session_id: str, body: NewSession, tx: TransactionDep
    ) -> dict[str, str]:
        await tx.sessions.create(purpose="plan", created_by=body.agent, session_id=session_id)
        await tx.participants.join(session_id, body.agent)
        await tx.messages.add(session_id, sender=body.agent, content="kick-off")
        if body.fail == "http":
            raise HTTPException(status_code=400, detail="refused by the endpoint")
        if body.fail == "crash":
            raise Boom("the endpoint crashed")
        if body.fail == "swallow":
            # the failed statement is hidden from the endpoint, not from the
            # unit of work: it refuses to COMMIT all the same
            with contextlib.suppress(ConflictError):
                await tx.sessions.create(purpose="again", created_by="x", session_id=session_id)
        return {"id": session_id}

    @app.post("/late/{session_id}", status_code=201)
    async def create_late(
        session_id: str,
        tx: Transaction = Depends(get_transaction),  # noqa: B008
    ) -> dict[str, str]:
        # FastAPI's default scope: the unit ends after the response is sent
        await tx.sessions.create(purpose="plan", created_by="late", session_id=session_id)
        return {"id": session_id}

    @app.get("/sessions/{session_id}")
    async def read_session(session_id: str, store: StoreDep) -> dict[str, Any]:
        found = await store.sessions.get(session_id)
        if found is None:
            raise HTTPException(status_code=404, detail="no such session")
        return found.model_dump(mode="json")

    @app.patch("/sessions/{session_id}")
    async def rename(session_id: str, purpose: str, store: StoreDep) -> dict[str, str]:
        updated = await store.sessions.update(session_id, purpose=purpose)
        return {"purpose": updated.purpose}

    @app.post("/sessions/{session_id}/messages", status_code=201)
    async def post_message(session_id: str, content: str, tx: TransactionDep) -> dict[str, int]:
        message = await tx.messages.add(session_id, sender="planner", content=content)
        return {"id": message.id}

    @app.get("/slow")
    async def slow(store: StoreDep) -> dict[str, Any]:
        return {"value": await store.db.fetch_value(text(SLOW_STATEMENTS[store.dialect]))}

    @app.get("/stale")
    async def stale(store: StoreDep) -> dict[str, Any]:
        async with store.transaction() as tx:
            pass
        return {"session": await tx.sessions.get("anything")}  # refused: the unit is over

    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client served by it.

    As an ASGI server does, each request gets a copy of the state the lifespan
    yielded (``request.state``).
    """
    async with app.router.lifespan_context(app) as state:

        async def server(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


def assert_nothing_internal(response: httpx.Response) -> None:
    body = response.text.lower()
    leaked = [marker for marker in INTERNAL_MARKERS if marker in body]
    assert not leaked, f"{response.status_code} body carries {leaked}: {response.text}"
