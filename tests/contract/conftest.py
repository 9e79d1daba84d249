"""Every contract case runs twice per backend: with the Store's own repositories,
and with each call in a unit of work of its own (``store.transaction()``).

The second way exercises the repositories bound to one transaction's
connection (no retries, the unit's lifetime rules) with every case the suite
has, instead of copies of the cases.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from contextstore import Store

REPOSITORIES = ("sessions", "messages", "memory", "audit", "participants")


class _InUnit:
    """A repository whose every call runs in its own ``store.transaction()``."""

    def __init__(self, store: Store, name: str) -> None:
        self._store = store
        self._name = name

    def __getattr__(self, method: str) -> Any:
        store, name = self._store, self._name

        @functools.wraps(getattr(getattr(store, name), method))
        async def call(*args: Any, **kwargs: Any) -> Any:
            async with store.transaction() as tx:
                return await getattr(getattr(tx, name), method)(*args, **kwargs)

        return call


class UnitOfWorkStore:
    """The Store, with its five repositories replaced by :class:`_InUnit` ones."""

    def __init__(self, store: Store) -> None:
        self._store = store
        for name in REPOSITORIES:
            setattr(self, name, _InUnit(store, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture(params=["direct", "in-unit"])
def store(store: Store, request: pytest.FixtureRequest) -> Any:
    """The connected Store of ``tests/conftest.py``, used directly or call by call
    in units of work."""
    return store if request.param == "direct" else UnitOfWorkStore(store)
