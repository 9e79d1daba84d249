"""Records built from trusted rows are the objects validation builds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from contextstore.models import MemoryEntry, Message, Session, trusted

NOW = datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=UTC)

CASES: list[tuple[type[pydantic.BaseModel], dict[str, Any]]] = [
    (
        Session,
        {
            "id": "s1",
            "purpose": "p",
            "created_by": "a",
            "metadata": {"k": [1, 2.5, None]},
            "is_active": False,
            "created_at": NOW,
            "updated_at": NOW,
        },
    ),
    (
        Message,
        {
            "id": 7,
            "session_id": "s1",
            "sender": "a",
            "sender_type": "generic",
            "content": "hello",
            "visibility": "agent_only",
            "message_type": "agent_response",
            "metadata": {},
            "parent_message_id": 3,
            "timestamp": NOW,
        },
    ),
    (
        MemoryEntry,
        {
            "agent_id": "a",
            "session_id": None,
            "key": "k",
            "value": {"nested": ["x", 1]},
            "metadata": {"m": 1},
            "created_at": NOW,
            "updated_at": NOW,
            "expires_at": None,
        },
    ),
]


@pytest.mark.parametrize(("model", "values"), CASES, ids=lambda case: getattr(case, "__name__", ""))
def test_a_trusted_record_is_the_validated_one(
    model: type[pydantic.BaseModel], values: dict[str, Any]
) -> None:
    built = trusted(model, dict(values))
    validated = model(**values)
    assert type(built) is model
    assert built == validated
    assert repr(built) == repr(validated)
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_fields_set == validated.model_fields_set
    assert model.model_validate(built.model_dump()) == built


@pytest.mark.parametrize(("model", "values"), CASES, ids=lambda case: getattr(case, "__name__", ""))
def test_a_trusted_record_is_frozen(
    model: type[pydantic.BaseModel], values: dict[str, Any]
) -> None:
    built = trusted(model, dict(values))
    field = next(iter(values))
    with pytest.raises(pydantic.ValidationError):
        setattr(built, field, values[field])
    assert built.model_copy(update={field: values[field]}) == built
