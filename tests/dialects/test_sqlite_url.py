"""SQLite URL options: honoured by both backends alike, or refused.

Only SQLite's own URI parameters (``mode``, ``cache``, ``immutable``...) are
accepted, and only with ``uri=true``; both backends then open the same
``file:`` URI, so ``mode=ro`` is read-only on core and on legacy alike.
Anything else is a ``ConfigurationError``; never a file named with a ``?``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contextstore import ConfigurationError, ContextStoreError, Settings, Store, Viewer

BACKENDS = ["core", "legacy"]


async def _seed(path: Path) -> None:
    async with Store(Settings(database_url=f"sqlite:///{path}")) as store:
        await store.sessions.create(purpose="p", created_by="a", session_id="s1")
        await store.messages.add("s1", sender="a", content="kept as it was")


def _odd_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if "?" in p.name or "#" in p.name]


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spelling", ["{path}", "file:{path}"])
async def test_read_only_is_read_only_on_both_backends(
    tmp_path: Path, backend: str, spelling: str
) -> None:
    path = tmp_path / "shared.db"
    await _seed(path)
    url = f"sqlite:///{spelling.format(path=path)}?mode=ro&uri=true"
    settings = Settings(database_url=url, backend=backend, auto_migrate=False)
    async with Store(settings) as store:
        page = await store.messages.list("s1", viewer=Viewer(agent_id="a"))
        assert [m.content for m in page.items] == ["kept as it was"]
        with pytest.raises(ContextStoreError):
            await store.messages.add("s1", sender="a", content="refused")
    async with Store(Settings(database_url=f"sqlite:///{path}")) as store:
        assert await store.messages.count("s1", viewer=Viewer(agent_id="a")) == 1
    assert _odd_files(tmp_path) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("backend", BACKENDS)
async def test_uri_options_open_the_file_the_path_names(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "made.db"
    url = f"sqlite:///{path}?mode=rwc&cache=private&uri=true"
    async with Store(Settings(database_url=url, backend=backend)) as store:
        await store.sessions.create(purpose="p", created_by="a", session_id="s1")
    assert path.exists()
    assert _odd_files(tmp_path) == []
    # the other backend reads what this one wrote, through the plain path
    other = "legacy" if backend == "core" else "core"
    async with Store(Settings(database_url=f"sqlite:///{path}", backend=other)) as store:
        assert (await store.sessions.get("s1")) is not None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("mode=ro", "add uri=true"),
        ("cache=shared&uri=false", "add uri=true"),
        ("timeout=5", "timeout are not supported"),
        ("check_same_thread=false", "check_same_thread are not supported"),
        ("foo=bar&mode=ro&uri=true", "foo are not supported"),
        ("uri=maybe&mode=ro", "uri must be true or false"),
        ("mode=ro&mode=rw&uri=true", "more than once"),
    ],
)
def test_options_neither_backend_can_honour_are_refused(
    tmp_path: Path, backend: str, query: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}?{query}", backend=backend)
    assert list(tmp_path.iterdir()) == []
