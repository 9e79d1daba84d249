"""A small FastAPI service on contextstore: agents open sessions and post messages.

Serve it with any ASGI server (``uvicorn examples.fastapi_service:app``), or run
it as a script to watch it answer a few requests in process, through httpx::

    uv run python examples/fastapi_service.py

The database comes from the environment (``CONTEXTSTORE_DATABASE_URL``; by
default the SQLite file ``./contextstore.db``) when the app starts.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from contextstore import Message, Session, Viewer
from contextstore.fastapi import (
    StoreDep,
    TransactionDep,
    add_exception_handlers,
    health_router,
    lifespan,
)

app = FastAPI(title="shared context", lifespan=lifespan())
add_exception_handlers(app)
app.include_router(health_router())


class OpenSession(BaseModel):
    purpose: str
    agent: str
    agent_type: str = "generic"


class Post(BaseModel):
    sender: str
    content: str
    visibility: str = "public"


@app.post("/sessions", status_code=201)
async def open_session(body: OpenSession, tx: TransactionDep) -> Session:
    # one unit of work: the session, its first participant and the audit entry
    # commit together, before the client hears 201
    session = await tx.sessions.create(purpose=body.purpose, created_by=body.agent)
    await tx.participants.join(session.id, body.agent, agent_type=body.agent_type, role="owner")
    await tx.audit.record("session_opened", agent_id=body.agent, session_id=session.id)
    return session


@app.post("/sessions/{session_id}/messages", status_code=201)
async def post_message(session_id: str, body: Post, store: StoreDep) -> Message:
    # a missing session is a NotFoundError, answered 404 by the handlers
    return await store.messages.add(
        session_id, sender=body.sender, content=body.content, visibility=body.visibility
    )


@app.get("/sessions/{session_id}/messages")
async def read_messages(session_id: str, agent: str, store: StoreDep) -> list[Message]:
    if await store.sessions.get(session_id) is None:
        raise HTTPException(status_code=404, detail=f"session {session_id!r} does not exist")
    page = await store.messages.list(session_id, viewer=Viewer(agent_id=agent))
    return page.items


async def demo() -> None:
    """Start the app, send it a few requests and print the answers, then stop it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:

            async def show(method: str, path: str, body: object = None) -> httpx.Response:
                response = await client.request(method, path, json=body)
                print(f"{method} {path} -> {response.status_code} {json.dumps(response.json())}")
                return response

            opened = await show("POST", "/sessions", {"purpose": "plan", "agent": "planner-1"})
            session_id = opened.json()["id"]
            messages = f"/sessions/{session_id}/messages"
            await show("POST", messages, {"sender": "planner-1", "content": "kick-off"})
            await show(
                "POST",
                messages,
                {"sender": "planner-1", "content": "note to self", "visibility": "private"},
            )
            await show("GET", f"{messages}?agent=coder-7")  # the private note is not shown
            await show("POST", messages, {"sender": "planner-1", "content": ""})  # 422
            await show("POST", "/sessions/nowhere/messages", {"sender": "x", "content": "hi"})
            await show("GET", "/healthz")


if __name__ == "__main__":
    asyncio.run(demo())
