"""Fuzzed inputs of every AuditRepository method, on every backend."""

from __future__ import annotations

from hypothesis import strategies as st

from . import _values as v
from ._harness import State, Strategies, call, fuzz_repository


def _session(state: State) -> st.SearchStrategy[v.Tagged]:
    return st.one_of(v.ok(st.sampled_from([None, *state.sessions])), v.name(nullable=True))


STRATEGIES: Strategies = {
    "audit.record": lambda state: call(
        "audit.record",
        v.name(),
        agent_id=v.name(),
        session_id=v.keyword(_session(state)),
        resource=v.keyword(v.name(nullable=True)),
        action=v.keyword(v.name(nullable=True)),
        result=v.keyword(v.name(nullable=True)),
        metadata=v.keyword(v.metadata()),
    ),
    "audit.list": lambda state: call(
        "audit.list",
        agent_id=v.keyword(v.name(nullable=True)),
        session_id=v.keyword(_session(state)),
        event_type=v.keyword(v.name(nullable=True)),
        since=v.keyword(v.moment()),
        until=v.keyword(v.moment()),
        limit=v.keyword(v.limit()),
        cursor=v.keyword(v.cursor(state.cursors)),
    ),
    "audit.activity": lambda state: call(
        "audit.activity",
        bucket=v.keyword(v.choice(["minute", "hour", "day"])),
        since=v.keyword(v.moment()),
        until=v.keyword(v.moment()),
        agent_id=v.keyword(v.name(nullable=True)),
    ),
}


def test_audit_inputs(backend_url: tuple[str, str]) -> None:
    fuzz_repository(backend_url, STRATEGIES)
