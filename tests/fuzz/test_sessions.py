"""Fuzzed inputs of every SessionRepository method, on every backend."""

from __future__ import annotations

from hypothesis import strategies as st

from . import _values as v
from ._harness import Call, State, Strategies, call, fuzz_repository


def _deletable(state: State) -> st.SearchStrategy[v.Tagged]:
    # the seeded sessions stay (other calls aim at them); ids creates may take go
    valid = st.one_of(v.valid_text(40), st.sampled_from(state.disposable))
    return v.arg(valid, v.invalid_text(255, nullable=False))


def _existing(state: State) -> st.SearchStrategy[v.Tagged]:
    return v.known_or_name(state.sessions + state.disposable)


def _create(state: State) -> st.SearchStrategy[Call]:
    return call(
        "sessions.create",
        purpose=v.name(),
        created_by=v.name(),
        metadata=v.keyword(v.metadata()),
        # a new id, none, or one that exists (ConflictError)
        session_id=v.keyword(
            st.one_of(
                v.name(nullable=True), v.ok(st.sampled_from(state.disposable)), _existing(state)
            )
        ),
    )


STRATEGIES: Strategies = {
    "sessions.create": _create,
    "sessions.get": lambda state: call("sessions.get", _existing(state)),
    "sessions.list": lambda state: call(
        "sessions.list",
        created_by=v.keyword(v.name(nullable=True)),
        active=v.keyword(v.flag(nullable=True)),
        limit=v.keyword(v.limit()),
        cursor=v.keyword(v.cursor(state.cursors)),
    ),
    "sessions.update": lambda state: call(
        "sessions.update",
        _existing(state),
        purpose=v.keyword(v.name(nullable=True)),
        metadata=v.keyword(v.metadata()),
        is_active=v.keyword(v.flag(nullable=True)),
    ),
    "sessions.delete": lambda state: call("sessions.delete", _deletable(state)),
    "sessions.activity": lambda state: call(
        "sessions.activity", _existing(state), viewer=v.viewer()
    ),
}


def test_session_inputs(backend_url: tuple[str, str]) -> None:
    fuzz_repository(backend_url, STRATEGIES)
