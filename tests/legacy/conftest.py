"""Fixtures for the legacy tests: one SQLite file, opened by either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from contextstore import Settings, Store

OpenStore = Callable[..., AbstractAsyncContextManager[Store]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shared.db"


@pytest.fixture
def db_url(db_path: Path) -> str:
    return f"sqlite+aiosqlite:///{db_path}"


@pytest.fixture
def open_store(db_url: str) -> OpenStore:
    """``open_store("legacy" | "core", **settings)``: a connected Store on the shared file."""

    def opener(backend: str, **settings: object) -> AbstractAsyncContextManager[Store]:
        return Store(Settings(database_url=db_url, backend=backend, **settings))

    return opener


@pytest.fixture
async def legacy(open_store: OpenStore) -> AsyncIterator[Store]:
    async with open_store("legacy") as store:
        yield store


@pytest.fixture
async def core(open_store: OpenStore) -> AsyncIterator[Store]:
    async with open_store("core") as store:
        yield store
