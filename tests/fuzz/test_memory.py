"""Fuzzed inputs of every MemoryRepository method, on every backend."""

from __future__ import annotations

from hypothesis import strategies as st

from . import _values as v
from ._harness import State, Strategies, call, fuzz_repository


def _agent() -> st.SearchStrategy[v.Tagged]:
    return st.one_of(v.ok(st.sampled_from(["alice", "bob"])), v.name())


def _key() -> st.SearchStrategy[v.Tagged]:
    return st.one_of(v.ok(st.sampled_from(["global", "key-fuzz-a", "k"])), v.name())


def _scope(state: State) -> st.SearchStrategy[v.Tagged]:
    """None (global), a session that exists, or any other name (NotFoundError on set)."""
    return st.one_of(v.ok(st.sampled_from([None, *state.sessions])), v.name(nullable=True))


STRATEGIES: Strategies = {
    "memory.set": lambda state: call(
        "memory.set",
        _agent(),
        _key(),
        v.json_value(),
        session_id=v.keyword(_scope(state)),
        ttl=v.keyword(v.ttl()),
        metadata=v.keyword(v.metadata()),
        overwrite=v.keyword(v.flag()),
    ),
    "memory.get": lambda state: call(
        "memory.get", _agent(), _key(), session_id=v.keyword(_scope(state))
    ),
    "memory.list": lambda state: call(
        "memory.list",
        _agent(),
        session_id=v.keyword(_scope(state)),
        prefix=v.keyword(v.name(nullable=True)),
        limit=v.keyword(v.limit()),
    ),
    "memory.delete": lambda state: call(
        "memory.delete", _agent(), _key(), session_id=v.keyword(_scope(state))
    ),
    "memory.purge_expired": lambda state: call("memory.purge_expired"),
}


def test_memory_inputs(backend_url: tuple[str, str]) -> None:
    fuzz_repository(backend_url, STRATEGIES)
