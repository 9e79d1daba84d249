"""A batch checks each distinct name once: the same rows and the same errors as
checking every row on its own."""

from __future__ import annotations

from typing import Any

import pytest

from contextstore import NewMessage, ValidationError, _validate


def _one_by_one(items: list[Any]) -> list[dict[str, Any]]:
    return [_validate.new_message("s", item) for item in items]


def _error(check: Any, items: list[Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        check(items)
    return str(caught.value)


def test_rows_are_the_same_as_row_by_row() -> None:
    items = [
        NewMessage(sender=f"agent-{n % 3}", content=f"c{n}", message_type="note", metadata={"n": n})
        for n in range(50)
    ]
    assert _validate.new_messages("s", items) == _one_by_one(items)


@pytest.mark.parametrize(
    "bad",
    [
        {"sender": "agent-0\x00"},
        {"sender_type": " "},
        {"message_type": "x" * 256},
        {"message_type": ["not", "a", "name"]},  # unhashable: never looked up
        {"sender": 7, "content": ""},  # the first rule broken is the one reported
        {"content": "   "},
        {"visibility": "everyone"},
    ],
)
def test_a_bad_row_after_good_ones_fails_as_it_would_alone(bad: dict[str, Any]) -> None:
    good = [NewMessage(sender="agent-0", content="ok", message_type="note") for _ in range(5)]
    fields = {"sender": "agent-0", "content": "ok", "message_type": "note", **bad}
    # model_construct skips pydantic, as a caller's hand-made item can
    items = [*good, NewMessage.model_construct(**fields)]
    alone = _error(_one_by_one, items)
    assert _error(lambda rows: _validate.new_messages("s", rows), items) == alone


def test_a_name_is_trusted_only_once_it_passed() -> None:
    # the same text as a known name, but not a str: checked, and refused
    class Name(str):
        pass

    items = [
        NewMessage(sender="agent-0", content="ok"),
        NewMessage.model_construct(
            sender=Name("agent-0\x00"),
            content="ok",
            sender_type="generic",
            visibility="public",
            message_type="agent_response",
            metadata=None,
            parent_message_id=None,
        ),
    ]
    assert "NUL" in _error(lambda rows: _validate.new_messages("s", rows), items)
