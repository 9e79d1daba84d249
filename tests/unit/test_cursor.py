"""_cursor: round trips, and forged positions refused before any SQL.

The checksum key is public, so a cursor can be well-formed (right kind, scope
and checksum) and still carry a position no row can have. ``decode`` must turn
every such position into a ValidationError, the same on every backend, since
both call it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from contextstore import ValidationError, _cursor

SCOPE = _cursor.scope(None, None, None, None, None)
MOMENT = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "position"),
    [
        ("audit", (MOMENT, 1)),
        ("messages", (MOMENT, 2**63 - 1)),
        ("feed", (datetime(1, 1, 1, tzinfo=UTC), 7)),
        ("sessions", (datetime.max.replace(tzinfo=UTC), "fuzz-a")),
        ("sessions", (MOMENT.astimezone(timezone(timedelta(hours=14))), "x" * 255)),
    ],
)
def test_round_trip(kind: str, position: tuple[datetime, int | str]) -> None:
    cursor = _cursor.encode(kind, SCOPE, position)
    assert _cursor.decode(cursor, kind, SCOPE) == position


FORGED: list[tuple[str, datetime, Any]] = [
    # moments that overflow once converted to UTC
    ("audit", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), 1),
    ("messages", datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), 1),
    ("sessions", datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "fuzz-a"),
    # naive moment
    ("feed", datetime(2024, 1, 1), 1),
    # integer ids outside 1..2**63-1, or not integers at all
    ("audit", MOMENT, 2**63),
    ("audit", MOMENT, 2**70),
    ("messages", MOMENT, -(2**63) - 1),
    ("feed", MOMENT, 0),
    ("feed", MOMENT, -1),
    ("audit", MOMENT, True),
    ("messages", MOMENT, "12"),
    ("feed", MOMENT, 1.5),
    ("audit", MOMENT, None),
    # text ids that no session can have
    ("sessions", MOMENT, ""),
    ("sessions", MOMENT, "   "),
    ("sessions", MOMENT, "x" * 256),
    ("sessions", MOMENT, "a\x00b"),
    ("sessions", MOMENT, "\ud800"),
    ("sessions", MOMENT, 5),
    ("sessions", MOMENT, ["fuzz-a"]),
]


@pytest.mark.parametrize(("kind", "moment", "row_id"), FORGED)
def test_forged_position_is_a_validation_error(kind: str, moment: datetime, row_id: Any) -> None:
    cursor = _cursor.encode(kind, SCOPE, (moment, row_id))
    with pytest.raises(ValidationError, match=r"^cursor: position out of range") as caught:
        _cursor.decode(cursor, kind, SCOPE)
    assert caught.value.__cause__ is None
    # the message never echoes the forged value
    assert str(caught.value) == "cursor: position out of range (malformed or tampered cursor)"


@pytest.mark.parametrize(
    "cursor", [None, "", 5, "x" * 1025, "!!!not-base64", _cursor.encode("audit", "[]", (MOMENT, 1))]
)
def test_garbage_and_foreign_cursors(cursor: Any) -> None:
    with pytest.raises(ValidationError, match=r"^cursor: "):
        _cursor.decode(cursor, "audit", SCOPE)


def test_another_listings_cursor() -> None:
    cursor = _cursor.encode("messages", SCOPE, (MOMENT, 1))
    with pytest.raises(ValidationError, match="belongs to another listing"):
        _cursor.decode(cursor, "audit", SCOPE)
