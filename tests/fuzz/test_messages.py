"""Fuzzed inputs of every MessageRepository method, on every backend."""

from __future__ import annotations

from hypothesis import strategies as st

from . import _values as v
from ._harness import State, Strategies, call, fuzz_repository


def _session(state: State) -> st.SearchStrategy[v.Tagged]:
    return v.known_or_name(state.sessions)


STRATEGIES: Strategies = {
    "messages.add": lambda state: call(
        "messages.add",
        _session(state),
        sender=v.name(),
        content=v.content(),
        sender_type=v.keyword(v.name()),
        visibility=v.keyword(v.choice(["public", "private", "agent_only", "admin_only"])),
        message_type=v.keyword(v.name()),
        metadata=v.keyword(v.metadata()),
        parent_message_id=v.keyword(v.row_id(state.messages, nullable=True)),
    ),
    "messages.add_many": lambda state: call(
        "messages.add_many", _session(state), v.new_messages(state.messages)
    ),
    "messages.get": lambda state: call("messages.get", v.row_id(state.messages), viewer=v.viewer()),
    "messages.list": lambda state: call(
        "messages.list",
        _session(state),
        viewer=v.viewer(),
        limit=v.keyword(v.limit()),
        cursor=v.keyword(v.cursor(state.cursors)),
        order=v.keyword(v.choice(["asc", "desc"])),
        sender=v.keyword(v.name(nullable=True)),
    ),
    "messages.count": lambda state: call("messages.count", _session(state), viewer=v.viewer()),
    "messages.search": lambda state: call(
        "messages.search",
        v.search_query(),
        viewer=v.viewer(),
        session_id=v.keyword(st.one_of(v.name(nullable=True), _session(state))),
        limit=v.keyword(v.limit()),
    ),
    "messages.feed": lambda state: call(
        "messages.feed",
        viewer=v.viewer(),
        limit=v.keyword(v.limit()),
        cursor=v.keyword(v.cursor(state.cursors)),
    ),
}


def test_message_inputs(backend_url: tuple[str, str]) -> None:
    fuzz_repository(backend_url, STRATEGIES)
