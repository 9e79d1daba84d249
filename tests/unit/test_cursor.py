"""_cursor: round trips, and forged positions refused before any SQL.

The checksum key is public, so a cursor can be well-formed (right kind, scope
and checksum) and still carry a position no row can have. ``decode`` must turn
every such position into a ValidationError, the same on every backend, since
both call it.
"""

from __future__ import annotations

import base64
import json
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


TRICKY_TEXT = ["", "é☃😀", "\x00\x1f\x7f", "\u2028\u2029", 'q"b\\', "\n\r\t\b\f"]


@pytest.mark.parametrize("text", TRICKY_TEXT, ids=repr)
def test_scope_is_the_standard_librarys_compact_json(text: str) -> None:
    # cursors issued before the scope was written by orjson stay valid, and
    # both backends agree: the text must be the standard library's, byte for byte
    moment = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    parts: tuple[Any, ...] = (text, None, True, False, 7, moment, ["t", [text, None]])
    expected = json.dumps(
        [moment.isoformat() if part is moment else part for part in parts],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert _cursor.scope(*parts) == expected


def test_scope_with_a_lone_surrogate_is_written_by_the_standard_library() -> None:
    assert _cursor.scope("\ud800", None) == '["\ud800",null]'


@pytest.mark.parametrize("size", [0, 1, 2, 3, 40, 61, 62, 63, 300])
def test_cursor_base64_is_urlsafe_base64_without_padding(size: int) -> None:
    token = bytes((n * 37 + 251) % 256 for n in range(size))  # every alphabet character
    written = base64.urlsafe_b64encode(token).decode().rstrip("=")
    assert _cursor._b64encode(token) == written
    assert _cursor._b64decode(written) == token


def test_a_cursor_written_by_base64_itself_decodes() -> None:
    scope = _cursor.scope("s", "asc", None)
    position = (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), 42)
    raw = json.dumps([1, "messages", scope, position[0].isoformat(), 42], separators=(",", ":"))
    token = raw.encode() + b"|" + _cursor._digest(raw.encode()).encode()
    cursor = base64.urlsafe_b64encode(token).decode().rstrip("=")
    assert _cursor.decode(cursor, "messages", scope) == position
