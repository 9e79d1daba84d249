"""Fuzzed inputs of every ParticipantRepository method, on every backend."""

from __future__ import annotations

from hypothesis import strategies as st

from . import _values as v
from ._harness import State, Strategies, call, fuzz_repository


def _session(state: State) -> st.SearchStrategy[v.Tagged]:
    return v.known_or_name(state.sessions)


def _agent() -> st.SearchStrategy[v.Tagged]:
    return st.one_of(v.ok(st.sampled_from(["alice", "bob", "carol"])), v.name())


STRATEGIES: Strategies = {
    "participants.join": lambda state: call(
        "participants.join",
        _session(state),
        _agent(),
        agent_type=v.keyword(v.name()),
        role=v.keyword(v.name()),
    ),
    "participants.leave": lambda state: call("participants.leave", _session(state), _agent()),
    "participants.list": lambda state: call("participants.list", _session(state)),
    "participants.sessions_for": lambda state: call(
        "participants.sessions_for", _agent(), active=v.keyword(v.flag(nullable=True))
    ),
}


def test_participant_inputs(backend_url: tuple[str, str]) -> None:
    fuzz_repository(backend_url, STRATEGIES)
