"""Fixtures of the FastAPI tests: the test app on a fresh database of each dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from contextstore import Settings, Store

from ._app import make_app, serve


@pytest.fixture
def app(empty_url: str) -> FastAPI:
    return make_app(Settings(database_url=empty_url))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as served:
        yield served


@pytest.fixture
async def reader(empty_url: str, client: httpx.AsyncClient) -> AsyncIterator[Store]:
    """A second Store on the app's database: what is committed, seen from outside."""
    async with Store(Settings(database_url=empty_url)) as store:
        yield store
