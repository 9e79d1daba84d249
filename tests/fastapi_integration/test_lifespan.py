"""The lifespan: one Store per app run, opened at startup and closed at shutdown,
composable with the service's own lifespan either way round."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI, Request

from contextstore import ContextStoreError, Settings, Store
from contextstore.fastapi import STATE_ATTRIBUTE, StoreDep, lifespan, store_lifespan

from ._app import make_app, serve


async def test_the_store_is_open_while_the_app_runs_and_closed_after(empty_url: str) -> None:
    app = make_app(Settings(database_url=empty_url))
    async with serve(app) as client:
        store = getattr(app.state, STATE_ATTRIBUTE)
        assert isinstance(store, Store)
        assert "(open)" in repr(store)
        assert (await client.post("/sessions/s1", json={})).status_code == 201
    assert "(closed)" in repr(store)
    with pytest.raises(ContextStoreError, match="Store is closed"):
        store.sessions  # noqa: B018 - the property is what refuses
    # what was written survives the app
    async with Store(Settings(database_url=empty_url)) as reader:
        assert await reader.sessions.get("s1") is not None


async def test_each_run_of_the_app_opens_a_new_store(empty_url: str) -> None:
    app = make_app(Settings(database_url=empty_url))
    async with serve(app) as client:
        first = getattr(app.state, STATE_ATTRIBUTE)
        assert (await client.post("/sessions/s1", json={})).status_code == 201
    async with serve(app) as client:
        assert getattr(app.state, STATE_ATTRIBUTE) is not first
        assert (await client.get("/sessions/s1")).status_code == 200


async def test_the_services_own_lifespan_runs_inside_with_the_store_open(empty_url: str) -> None:
    steps: list[str] = []

    @asynccontextmanager
    async def service(app: FastAPI) -> AsyncIterator[None]:
        store: Store = getattr(app.state, STATE_ATTRIBUTE)
        await store.sessions.create(purpose="boot", created_by="service", session_id="boot")
        steps.append("started")
        yield
        await store.sessions.update("boot", purpose="shut down")
        steps.append("stopped")

    app = FastAPI(lifespan=lifespan(Settings(database_url=empty_url), inner=service))

    @app.get("/boot")
    async def boot(store: StoreDep) -> dict[str, Any]:
        found = await store.sessions.get("boot")
        return {"purpose": None if found is None else found.purpose}

    async with serve(app) as client:
        assert (await client.get("/boot")).json() == {"purpose": "boot"}
    assert steps == ["started", "stopped"]
    async with Store(Settings(database_url=empty_url)) as reader:
        found = await reader.sessions.get("boot")
        assert found is not None
        assert found.purpose == "shut down"


async def test_store_lifespan_inside_a_lifespan_that_yields_state(empty_url: str) -> None:
    @asynccontextmanager
    async def service(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        async with store_lifespan(app, Settings(database_url=empty_url)) as store:
            yield {"greeting": f"hello from {store.dialect}"}

    app = FastAPI(lifespan=service)

    @app.get("/hello")
    async def hello(request: Request, store: StoreDep) -> dict[str, Any]:
        return {"greeting": request.state.greeting, "ok": (await store.health()).ok}

    async with serve(app) as client:
        body = (await client.get("/hello")).json()
        store = getattr(app.state, STATE_ATTRIBUTE)
    assert body["ok"] is True
    assert body["greeting"].startswith("hello from ")
    assert "(closed)" in repr(store)


async def test_a_database_that_cannot_be_opened_fails_the_startup(tmp_path: Any) -> None:
    from contextstore import DatabaseUnavailableError

    from .test_errors import unused_port

    url = f"postgresql://app:s3cret-pw@127.0.0.1:{unused_port()}/service"
    app = make_app(Settings(database_url=url, connect_timeout=2))
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with serve(app):
            pass
    assert "s3cret-pw" not in str(caught.value)
    assert not hasattr(app.state, STATE_ATTRIBUTE)
