"""Forged cursors: a checksum that matches, a position that does not fit the listing.

The checksum key is no secret (``_cursor`` says so), so anyone can mint a
cursor whose kind and scope match a listing but whose position is absurd: an
id of the wrong type, an id beyond 64 bits, a moment that overflows in UTC.
DESIGN.md: a bad cursor is a ``ValidationError``, not a crash, on every
backend; a forged position that does fit may page normally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from contextstore import _cursor

from ._harness import ALICE, FUZZ, Call, Fuzz

MAX_ID = 2**63 - 1
_ZONES = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))]

#: listing -> (method, positional args, keyword args, scope parts, id type)
LISTINGS: dict[str, tuple[str, list[Any], dict[str, Any], tuple[Any, ...], type]] = {
    "sessions": ("sessions.list", [], {}, (None, None), str),
    "messages": (
        "messages.list",
        ["fuzz-a"],
        {"viewer": ALICE},
        ("fuzz-a", "asc", None),
        int,
    ),
    "feed": ("messages.feed", [], {"viewer": ALICE}, ("alice",), int),
    "audit": ("audit.list", [], {}, (None, None, None, None, None), int),
}

_IDS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, MAX_ID, MAX_ID + 1, 2**64, -(2**63) - 1]),
    st.text(max_size=10),
    st.sampled_from(["fuzz-a", "", "x" * 300]),
)
_MOMENTS = st.one_of(
    st.datetimes(timezones=st.sampled_from(_ZONES)),
    st.sampled_from(
        [
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        ]
    ),
)


def _fits(moment: datetime, row_id: Any, id_type: type) -> bool:
    """Whether the position could be a real row's: otherwise the cursor is invalid."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    if id_type is int:
        return isinstance(row_id, int) and 1 <= row_id <= MAX_ID
    return (
        isinstance(row_id, str)
        and bool(row_id.strip())
        and len(row_id) <= 255
        and "\x00" not in row_id
    )


def forged() -> st.SearchStrategy[Call]:
    def build(drawn: tuple[str, datetime, Any]) -> Call:
        kind, moment, row_id = drawn
        method, args, kwargs, scope, id_type = LISTINGS[kind]
        cursor = _cursor.encode(kind, _cursor.scope(*scope), (moment, row_id))
        fits = _fits(moment, row_id, id_type)
        return Call(
            method,
            [(a, True) for a in args],
            {
                **{k: (v, True) for k, v in kwargs.items()},
                "cursor": (cursor, None if fits else False),
            },
        )

    return st.tuples(st.sampled_from(sorted(LISTINGS)), _MOMENTS, _IDS).map(build)


def test_forged_cursors(backend_url: tuple[str, str]) -> None:
    backend, url = backend_url
    with Fuzz(backend, url) as fuzz:

        @FUZZ
        @given(forged())
        def example(drawn: Call) -> None:
            fuzz.check(drawn)

        example()
    print(f"\n{fuzz.summary()}")
