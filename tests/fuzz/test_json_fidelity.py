"""JSON reads back equal, with the same Python types, on every backend (a Hypothesis property).

Each example writes one drawn JSON value as a memory value and one drawn JSON
object as the metadata of every write that takes metadata, then reads each
back. Returned record and read are both compared with the stored form of
what was written (tuples become lists) by JSON type and exact value
(``tests._typed_json.typed``): a float stays a float (``1e16``, ``1e308``,
``5e-324``), ``-0.0`` stays ``-0.0``, an int stays an exact int up to and
beyond the 64-bit bounds, and text and keys keep every character.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contextstore import NewMessage, Settings, Store, ValidationError, Viewer
from tests._typed_json import as_stored, typed

from ._harness import FUZZ

#: examples per backend; each writes and reads seven records
EXAMPLES = int(os.environ.get("CONTEXTSTORE_TEST_JSON_EXAMPLES", "25"))
ADMIN = Viewer(agent_id="root", is_admin=True)

#: any character a driver can carry: no lone surrogates, no NUL (both refused)
_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.0, 1e16, -1e16, 1e20, 1e308, -1.7976931348623157e308, 5e-324]),
    st.sampled_from([2.0**53, 2.0**63, 2.0**64, 0.1, 1e-7, 123456789.0, 1.5e300]),
)
_INTS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    # the 64-bit bounds, and just beyond them (exact through the standard library)
    st.sampled_from([2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 0, -1]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_TEXT, inner, max_size=4),
    ),
    max_leaves=16,
)
JSON_OBJECTS = st.dictionaries(_TEXT, JSON_VALUES, max_size=5)


def assert_stored(where: str, returned: Any, read: Any, written: Any) -> None:
    expected = typed(as_stored(written))
    assert typed(returned) == expected, f"{where}: the write returned another value"
    assert typed(read) == expected, f"{where}: the read returned another value"


async def round_trips(store: Store, n: int, value: Any, metadata: dict[str, Any]) -> None:
    """Write ``value`` and ``metadata`` through every JSON write, read each back."""
    session_id = f"s{n}"
    created = await store.sessions.create(
        purpose="json", created_by="alice", metadata=metadata, session_id=session_id
    )
    got = await store.sessions.get(session_id)
    assert got is not None
    assert_stored("sessions.create", created.metadata, got.metadata, metadata)

    updated = await store.sessions.update(session_id, metadata=metadata)
    got = await store.sessions.get(session_id)
    assert got is not None
    assert_stored("sessions.update", updated.metadata, got.metadata, metadata)

    added = await store.messages.add(session_id, sender="a", content="c", metadata=metadata)
    read = await store.messages.get(added.id, viewer=ADMIN)
    assert read is not None
    assert_stored("messages.add", added.metadata, read.metadata, metadata)

    (many,) = await store.messages.add_many(
        session_id, [NewMessage(sender="b", content="d", metadata=metadata)]
    )
    read = await store.messages.get(many.id, viewer=ADMIN)
    assert read is not None
    assert_stored("messages.add_many", many.metadata, read.metadata, metadata)

    entry = await store.memory.set("agent", f"k{n}", value, metadata=metadata)
    stored = await store.memory.get("agent", f"k{n}")
    assert stored is not None
    assert_stored("memory.set value", entry.value, stored.value, value)
    assert_stored("memory.set metadata", entry.metadata, stored.metadata, metadata)

    event = await store.audit.record("json", agent_id=f"agent-{n}", metadata=metadata)
    (logged,) = (await store.audit.list(agent_id=f"agent-{n}")).items
    assert_stored("audit.record", event.metadata, logged.metadata, metadata)


def test_json_reads_back_with_its_types(backend_url: tuple[str, str]) -> None:
    backend, url = backend_url
    counter = itertools.count()
    with asyncio.Runner() as runner:
        store = runner.run(Store(Settings(database_url=url, backend=backend)).connect())
        try:

            @settings(FUZZ, max_examples=EXAMPLES)
            @given(value=JSON_VALUES, metadata=JSON_OBJECTS)
            def example(value: Any, metadata: dict[str, Any]) -> None:
                runner.run(round_trips(store, next(counter), value, metadata))

            example()
        finally:
            runner.run(store.close())
    assert next(counter) >= EXAMPLES


async def test_nan_and_infinity_are_refused(backend_url: tuple[str, str]) -> None:
    backend, url = backend_url
    async with Store(Settings(database_url=url, backend=backend)) as store:
        for number in (float("nan"), float("inf"), -float("inf")):
            with pytest.raises(ValidationError, match="value"):
                await store.memory.set("agent", "k", [number])
            with pytest.raises(ValidationError, match="metadata"):
                await store.sessions.create(
                    purpose="p", created_by="c", metadata={"n": {"x": number}}
                )
        assert await store.memory.get("agent", "k") is None
        assert (await store.sessions.list()).items == []
