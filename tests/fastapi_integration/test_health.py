"""The health route: the Store's HealthReport as JSON, 200 when ok and 503 otherwise,
never with a password."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from contextstore import Settings

from ._app import make_app, serve
from .test_errors import unused_port


async def test_a_healthy_database_answers_200_with_the_report(
    client: httpx.AsyncClient, dialect_name: str
) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"] is True
    assert report["backend"] == "core"
    assert report["dialect"] == dialect_name
    assert report["schema_current"] is True
    assert report["error"] is None
    assert report["latency_ms"] >= 0


async def test_a_closed_store_answers_503(app: FastAPI) -> None:
    async with serve(app) as client:
        await app.state.contextstore.close()
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["ok"] is False
    assert response.json()["error"] == "Store is closed"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
async def test_an_unreachable_database_answers_503_without_the_password(scheme: str) -> None:
    url = f"{scheme}://app:s3cret-pw@127.0.0.1:{unused_port()}/service"
    app = make_app(Settings(database_url=url, auto_migrate=False, connect_timeout=2))
    async with serve(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["ok"] is False
    assert report["error"]
    assert "s3cret-pw" not in response.text


@pytest.mark.postgresql
async def test_a_password_the_server_accepts_is_not_in_the_report(
    postgresql_empty_url: str,
) -> None:
    # the test server trusts local clients: a password is sent and accepted
    url = make_url(postgresql_empty_url).set(password="s3cret-pw")
    app = make_app(Settings(database_url=url.render_as_string(hide_password=False)))
    async with serve(app) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    assert "s3cret-pw" not in response.text


async def test_the_route_path_is_the_callers(empty_url: str) -> None:
    from contextstore.fastapi import health_router, lifespan

    app = FastAPI(lifespan=lifespan(Settings(database_url=empty_url)))
    app.include_router(health_router(path="/ops/ready", include_in_schema=False))
    async with serve(app) as client:
        assert (await client.get("/ops/ready")).status_code == 200
        assert (await client.get("/healthz")).status_code == 404
    assert "/ops/ready" not in app.openapi()["paths"]
