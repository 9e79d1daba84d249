"""Fixtures for the data-tool tests: more fresh databases, and the 200k-message source."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests._servers import Server
from tests.datatools._data import build_large

LARGE_MESSAGES = 200_000

FreshUrl = Callable[[str], str]


@pytest.fixture
def fresh_url(servers: dict[str, Server], tmp_path: Path) -> Iterator[FreshUrl]:
    """``fresh_url(dialect)``: one more empty database (dropped after the test)."""
    made: list[tuple[Server, str]] = []
    count = 0

    def make(dialect: str) -> str:
        nonlocal count
        if dialect == "sqlite":
            count += 1
            return f"sqlite+aiosqlite:///{tmp_path / f'fresh-{count}.db'}"
        server = servers[dialect]
        url = server.create_database()
        made.append((server, url))
        return url

    yield make
    for server, url in made:
        server.drop_database(url)


@pytest.fixture(scope="session")
def large_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A core SQLite file with 200k messages, memory, audit and participants (built once)."""
    path = tmp_path_factory.mktemp("large") / "large.db"
    started = time.perf_counter()
    asyncio.run(build_large(f"sqlite+aiosqlite:///{path}", total=LARGE_MESSAGES))
    print(
        f"\n[datatools] built the {LARGE_MESSAGES}-message source in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return path
