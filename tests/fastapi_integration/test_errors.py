"""The error tree as HTTP statuses: each contextstore error raised by a real database
call answers its status, with the error's class name and message and nothing
internal (no driver text, SQL or traceback).
"""

from __future__ import annotations

import asyncio
import logging
import socket

import httpx
import pytest
from fastapi import FastAPI

from contextstore import Settings, Store, Viewer
from contextstore.fastapi import TransactionDep

from ._app import assert_nothing_internal, make_app, serve

ADMIN = Viewer(agent_id="auditor", is_admin=True)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _body(response: httpx.Response, status: int, error: str) -> str:
    """Check the status and the body's shape; return its detail."""
    assert response.status_code == status, response.text
    assert_nothing_internal(response)
    body = response.json()
    assert body["error"] == error
    assert set(body) == {"error", "detail"}
    detail: str = body["detail"]
    assert detail
    return detail


async def test_validation_error_is_422_and_writes_nothing(
    client: httpx.AsyncClient, reader: Store
) -> None:
    assert (await client.post("/sessions/s1", json={})).status_code == 201
    response = await client.post("/sessions/s1/messages", params={"content": ""})
    assert "content" in _body(response, 422, "ValidationError")
    assert await reader.messages.count("s1", viewer=ADMIN) == 1  # the kick-off only


async def test_not_found_error_is_404_in_the_callers_terms(client: httpx.AsyncClient) -> None:
    response = await client.patch("/sessions/nowhere", params={"purpose": "x"})
    assert _body(response, 404, "NotFoundError") == "session 'nowhere' does not exist"


async def test_conflict_error_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/sessions/s1", json={})).status_code == 201
    response = await client.post("/sessions/s1", json={})
    assert "'s1'" in _body(response, 409, "ConflictError")


async def test_query_timeout_error_is_504(empty_url: str) -> None:
    app = make_app(Settings(database_url=empty_url, statement_timeout=0.5))
    async with serve(app) as client:
        response = await client.get("/slow")
        _body(response, 504, "QueryTimeoutError")
        assert "Retry-After" not in response.headers
        # the app goes on serving
        assert (await client.post("/sessions/s1", json={})).status_code == 201


async def test_pool_exhausted_error_is_503_with_retry_after(empty_url: str) -> None:
    app = make_app(Settings(database_url=empty_url, pool_size=1, max_overflow=0, pool_timeout=0.2))
    holding, release = asyncio.Event(), asyncio.Event()

    @app.post("/hold", status_code=201)
    async def hold(tx: TransactionDep) -> dict[str, str]:
        await tx.audit.record("held", agent_id="holder")
        holding.set()
        await release.wait()
        return {"held": "yes"}

    async with serve(app) as client:
        held = asyncio.create_task(client.post("/hold"))
        await holding.wait()
        response = await client.get("/sessions/s1")
        release.set()
        assert (await held).status_code == 201
    assert response.status_code == 503, response.text
    assert_nothing_internal(response)
    assert response.json() == {
        "error": "PoolExhaustedError",
        "detail": response.json()["detail"],
        "may_have_committed": False,
    }
    assert response.headers["Retry-After"] == "7"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_database_unavailable_error_is_503_without_the_password(scheme: str) -> None:
    # nothing listens there; without auto_migrate the Store opens without I/O
    url = f"{scheme}://app:s3cret-pw@127.0.0.1:{unused_port()}/service"
    app = make_app(Settings(database_url=url, auto_migrate=False, connect_timeout=2))
    async with serve(app) as client:
        response = await client.get("/sessions/s1")
    assert response.status_code == 503, response.text
    assert_nothing_internal(response)
    assert "s3cret-pw" not in response.text
    body = response.json()
    assert body["error"] == "DatabaseUnavailableError"
    assert body["may_have_committed"] is False
    assert response.headers["Retry-After"] == "7"


async def test_an_app_without_the_store_is_a_500_configuration_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(None, with_lifespan=False)
    with caplog.at_level(logging.ERROR, logger="contextstore.fastapi"):
        async with serve(app) as client:
            response = await client.get("/sessions/s1")
    assert "lifespan" in _body(response, 500, "ConfigurationError")
    # the operator gets the traceback in the log, the client does not
    assert [r.exc_info is not None for r in caplog.records] == [True]


async def test_any_other_contextstore_error_is_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/stale")
    assert "transaction is closed" in _body(response, 500, "ContextStoreError")


async def test_a_closed_store_answers_500_not_a_crash(app: FastAPI, empty_url: str) -> None:
    async with serve(app) as client:
        await app.state.contextstore.close()
        response = await client.get("/sessions/s1")
    assert "Store is closed" in _body(response, 500, "ContextStoreError")
