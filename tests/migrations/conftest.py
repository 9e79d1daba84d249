"""Fixtures of the migration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from contextstore import ConnectionManager, Settings


@pytest.fixture
async def db(empty_url: str) -> AsyncIterator[ConnectionManager]:
    """A ConnectionManager on an empty database of the dialect under test."""
    manager = ConnectionManager(Settings(database_url=empty_url))
    try:
        yield manager
    finally:
        await manager.dispose()
