"""``contextstore.types`` exports the very column types contextstore's own schema uses."""

from __future__ import annotations

import contextstore
from contextstore import schema, types


def test_the_public_types_are_the_schemas_own() -> None:
    assert sorted(types.__all__) == ["ExactString", "JSONDocument", "UTCDateTime"]
    assert isinstance(schema.sessions.c.created_at.type, types.UTCDateTime)
    assert isinstance(schema.sessions.c.id.type, types.ExactString)
    assert schema.sessions.c.metadata.type is types.JSONDocument
    assert schema.agent_memory.c.value.type is types.JSONDocument


def test_the_table_api_is_exported() -> None:
    assert "TableRepository" in contextstore.__all__
    assert "OffsetPage" in contextstore.__all__
    assert contextstore.__all__ == sorted(contextstore.__all__)
    page = contextstore.OffsetPage(items=[1, 2], total=5, number=2, size=2)
    assert (page.has_prev, page.has_next) == (True, True)
    last = contextstore.OffsetPage(items=[5], total=5, number=3, size=2)
    assert (last.has_prev, last.has_next) == (True, False)
    empty = contextstore.OffsetPage(items=[], total=0, number=1, size=50)
    assert (empty.has_prev, empty.has_next) == (False, False)
