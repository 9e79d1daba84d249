"""Hypothesis strategies for repository arguments, each value tagged with its validity.

A tagged value is ``(value, valid)``: ``True`` when DESIGN.md's input limits
accept it, ``False`` when they reject it (the call must raise
``ValidationError`` before any SQL), ``None`` when either outcome is right
(a cursor from another listing, a JSON object with non-string keys deep
inside, which JSON turns into strings).

Valid values are hostile too: every Unicode plane, padding, the longest
allowed lengths, SQL- and LIKE-looking text, the largest ids and numbers.
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from contextstore import NewMessage, Viewer

Tagged = tuple[Any, bool | None]

MAX_TTL = 366 * 24 * 3600
MAX_ID = 2**63 - 1
#: the deepest JSON every backend stores (MariaDB's JSON_VALID stops at 32).
MAX_DEPTH = 31
OMIT = object()  # a keyword argument left out (its default applies)


class Built:
    """A value too deep for Hypothesis to print, built only when the call runs."""

    def __init__(self, label: str, build: Any) -> None:
        self.label = label
        self.build = build

    def __repr__(self) -> str:
        return f"<{self.label}>"


def built(label: str, build: Any) -> st.SearchStrategy[Built]:
    return st.just(Built(label, build))


def materialise(value: Any) -> Any:
    return value.build() if isinstance(value, Built) else value


def ok(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Tagged]:
    return strategy.map(lambda value: (value, True))


def bad(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Tagged]:
    return strategy.map(lambda value: (value, False))


def either(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Tagged]:
    return strategy.map(lambda value: (value, None))


def arg(
    valid: st.SearchStrategy[Any],
    invalid: st.SearchStrategy[Any],
    *,
    unknown: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[Tagged]:
    """Mostly valid values (so whole calls are valid often enough), often invalid ones."""
    branches = [bad(invalid), ok(valid), ok(valid), ok(valid), ok(valid)]
    if unknown is not None:
        branches.append(either(unknown))
    # one_of() would treat repeated branches as one: weigh them through an index
    return st.integers(0, len(branches) - 1).flatmap(branches.__getitem__)


def keyword(strategy: st.SearchStrategy[Tagged]) -> st.SearchStrategy[Tagged]:
    """A keyword argument that may also be left out."""
    return st.one_of(st.just((OMIT, True)), strategy)


# -- text ------------------------------------------------------------------------

#: any code point a driver can encode: everything but NUL and lone surrogates.
_CHAR = st.characters(codec="utf-8", exclude_characters="\x00")
_SURROGATE = st.characters(categories=["Cs"])

HOSTILE_NAMES = [
    "x" * 255,
    "é" * 255,
    "😀" * 255,
    " padded ",
    "tab\tand\nnewline",
    "'; DROP TABLE sessions; --",
    "%",
    "_%\\",
    "\\",
    '"quoted"',
    "\u202eright-to-left",
    "\ufeffbom",
    "zero\u200bwidth",
    "ß",
    "İ",
    "ǅ",
    "\uffff",
    "\U0010ffff",
    "\x01\x1f\x7f",
    "NULL",
    "null",
    "0",
]


def _not_blank(text: str) -> bool:
    return bool(text.strip())


def valid_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_CHAR, min_size=1, max_size=max_size).filter(_not_blank)


def with_surrogate(base: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(base, _SURROGATE, base).map("".join)


def invalid_text(max_length: int, *, nullable: bool) -> st.SearchStrategy[Any]:
    """Everything a text argument of at most ``max_length`` characters must refuse."""
    wrong_types: list[Any] = [0, 1.5, b"bytes", ["a"], {"a": 1}, True, Decimal(1)]
    if not nullable:
        wrong_types.append(None)
    return st.one_of(
        st.sampled_from(["", " ", "\t\n", "\u3000", "\u2028", "\x00", "a\x00b"]),
        st.sampled_from(["\ud800", "a\udfffb", "\ud83d\ude00"]),  # the last: a split pair
        with_surrogate(st.text(_CHAR, max_size=5)),
        st.sampled_from([max_length + 1, max_length + 2, 10 * max_length]).map(lambda n: "x" * n),
        st.just("😀" * (max_length + 1)),
        st.sampled_from(wrong_types),
    )


def name(*, nullable: bool = False) -> st.SearchStrategy[Tagged]:
    valid = st.one_of(valid_text(40), st.sampled_from(HOSTILE_NAMES))
    if nullable:
        valid = st.one_of(st.none(), valid)
    return arg(valid, invalid_text(255, nullable=nullable))


def known_or_name(known: list[str]) -> st.SearchStrategy[Tagged]:
    """An existing id (mostly) or any other name."""
    if not known:
        return name()
    return st.one_of(ok(st.sampled_from(known)), ok(st.sampled_from(known)), name())


def content() -> st.SearchStrategy[Tagged]:
    valid = st.one_of(
        valid_text(200),
        st.sampled_from(HOSTILE_NAMES),
        st.just("x" * 100_000),
        st.just("ü" * 100_000),
    )
    return arg(valid, invalid_text(100_000, nullable=False))


def search_query() -> st.SearchStrategy[Tagged]:
    operators = st.sampled_from(
        ['"', "*", "NEAR(", "AND OR NOT", "+-~<>()", "col:term", "'", "\\", "a" * 1000]
    )
    return arg(st.one_of(valid_text(60), operators), invalid_text(1000, nullable=False))


# -- JSON --------------------------------------------------------------------------


def nested(depth: int, leaf: Any = "leaf") -> Any:
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


_JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_CHAR, max_size=20),
)
_JSON = st.recursive(
    _JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(_CHAR, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _self_containing() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["again"] = loop
    return loop


_NOT_JSON = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        {1, 2},
        b"bytes",
        object(),
        datetime(2024, 1, 1, tzinfo=UTC),
        Decimal("1.5"),
        10**5000,  # more digits than int-to-text conversion allows
        "\x00",
        "\ud800",
    ]
)


def _poisoned(bad_value: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [{"a": bad_value}, {"a": [1, {"b": bad_value}]}, {"nested": {"deeper": [bad_value]}}]
    )


def metadata() -> st.SearchStrategy[Tagged]:
    valid = st.one_of(
        st.none(),
        st.just({}),
        st.dictionaries(st.text(_CHAR, max_size=12), _JSON, max_size=5),
        built("metadata nested 31 deep", lambda: {"deep": nested(MAX_DEPTH - 1)}),
        st.just({"k": "x" * (64 * 1024 - 8)}),  # exactly 64 KiB serialised
        st.just({"big": 2**64, "neg": -(2**63), "tiny": 5e-324, "huge": 1.7e308}),
        st.just({h: h for h in HOSTILE_NAMES[:8]}),
    )
    invalid = st.one_of(
        st.sampled_from([[], [1], "text", 5, 1.5, True, b"{}", ("a", 1)]),
        st.sampled_from([{1: "a"}, {None: 1}, {("t",): 1}]),
        _NOT_JSON.flatmap(_poisoned),
        st.sampled_from(["\x00", "\ud800", "a\udfffb"]).map(lambda key: {key: 1}),
        built("metadata nested 32 deep", lambda: {"deep": nested(MAX_DEPTH)}),
        st.just({"k": "x" * (64 * 1024 - 7)}),  # one byte over
        st.just({"k": "é" * (32 * 1024)}),  # 64 KiB of characters, 128 KiB of UTF-8
        built("a dict containing itself", _self_containing),
    )
    unknown = st.sampled_from([{"a": {1: "int key"}}, {"t": (1, 2)}])
    return arg(valid, invalid, unknown=unknown)


def json_value() -> st.SearchStrategy[Tagged]:
    valid = st.one_of(
        _JSON,
        st.sampled_from([None, False, 0, "", [], {}, -0.0, 2**64, -(2**100), 1e308, 5e-324]),
        built("JSON nested 31 deep", lambda: nested(MAX_DEPTH)),
        st.sampled_from(HOSTILE_NAMES),
    )
    invalid = st.one_of(
        _NOT_JSON,
        _NOT_JSON.flatmap(_poisoned),
        built("JSON nested 32 deep", lambda: nested(MAX_DEPTH + 1)),
        built("JSON nested 5000 deep", lambda: nested(5000)),  # beyond Python's recursion limit
        built("1 MiB + 1 of JSON", lambda: "x" * (1024 * 1024 - 1)),  # the quotes make it 1 MiB + 1
        built("a dict containing itself", _self_containing),
        st.sampled_from(["\x00", "\ud800"]).map(lambda key: {key: 1}),
    )
    unknown = st.sampled_from([{1: 2}, (1, 2), {"a": {2: 3}}])
    return arg(valid, invalid, unknown=unknown)


# -- numbers, flags, choices -----------------------------------------------------


def limit() -> st.SearchStrategy[Tagged]:
    valid = st.one_of(st.integers(1, 1000), st.sampled_from([1, 1000]))
    invalid = st.sampled_from(
        [0, -1, 1001, 10**30, -(10**30), 1.0, 10.5, "10", True, False, None, float("nan")]
    )
    return arg(valid, invalid)


def row_id(known: list[int], *, nullable: bool = False) -> st.SearchStrategy[Tagged]:
    valid = st.one_of(st.integers(1, MAX_ID), st.sampled_from([1, MAX_ID]))
    if known:
        valid = st.one_of(st.sampled_from(known), valid)
    if nullable:
        valid = st.one_of(st.none(), valid)
    wrong = [0, -1, MAX_ID + 1, 10**40, -(10**40), "1", 1.0, True, b"1", [1]]
    if not nullable:
        wrong.append(None)
    return arg(valid, st.sampled_from(wrong))


def flag(*, nullable: bool = False) -> st.SearchStrategy[Tagged]:
    valid = st.one_of(st.none(), st.booleans()) if nullable else st.booleans()
    wrong: list[Any] = [1, 0, "true", "false", "", 1.0, []]
    if not nullable:
        wrong.append(None)
    return arg(valid, st.sampled_from(wrong))


def choice(allowed: list[str]) -> st.SearchStrategy[Tagged]:
    wrong = [a.upper() for a in allowed] + [f" {allowed[0]}", f"{allowed[0]}\x00", "", None, 1]
    wrong += ["bogus", "\ud800"]
    return arg(st.sampled_from(allowed), st.sampled_from(wrong))


def ttl() -> st.SearchStrategy[Tagged]:
    valid = st.one_of(
        st.none(),
        st.sampled_from([1, 1.0, 3600, MAX_TTL, timedelta(seconds=1), timedelta(days=366)]),
        st.floats(min_value=1, max_value=MAX_TTL),
        st.integers(min_value=1, max_value=MAX_TTL),
    )
    invalid = st.sampled_from(
        [
            0,
            0.999,
            -1,
            MAX_TTL + 1,
            float("nan"),
            float("inf"),
            -float("inf"),
            10**400,  # beyond any float
            "60",
            True,
            timedelta(0),
            timedelta(days=367),
            timedelta(seconds=-5),
            timedelta.max,
            [60],
        ]
    )
    return arg(valid, invalid)


_ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-12))]


def moment(*, nullable: bool = True) -> st.SearchStrategy[Tagged]:
    valid = st.one_of(
        st.datetimes(
            min_value=datetime(1, 1, 2),
            max_value=datetime(9999, 12, 30),
            timezones=st.sampled_from(_ZONES),
        ),
        st.sampled_from([datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC)]),
    )
    if nullable:
        valid = st.one_of(st.none(), valid)
    invalid = st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),  # naive
        st.sampled_from(
            [
                datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),  # before year 1 in UTC
                datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),  # after 9999
                date(2024, 1, 1),
                "2024-01-01T00:00:00Z",
                1_700_000_000,
                0.0,
            ]
        ),
    )
    return arg(valid, invalid)


# -- cursors and viewers ---------------------------------------------------------------


def _mutations(cursor: str) -> list[str]:
    """Cursors that are certainly not ours any more (every middle character carries 6 bits)."""
    middle = len(cursor) // 2
    swapped = "A" if cursor[middle] != "A" else "B"
    forged = base64.urlsafe_b64encode(b'[1,"messages","[]","2024-01-01T00:00:00+00:00",1]|00')
    return [
        cursor[:middle] + swapped + cursor[middle + 1 :],
        cursor[: len(cursor) // 3],
        cursor + cursor,
        forged.decode().rstrip("="),
    ]


def cursor(seen: list[str]) -> st.SearchStrategy[Tagged]:
    invalid: st.SearchStrategy[Any] = st.one_of(
        st.sampled_from(["", "abc", "x" * 2000, "%%%", "null", 123, b"cursor", ["c"], 1.5]),
        st.text(_CHAR, min_size=1, max_size=40).filter(lambda t: t not in seen),
        st.sampled_from(["\ud800", "a\x00b"]),
    )
    mutated = [m for c in seen for m in _mutations(c)]
    if mutated:
        invalid = st.one_of(invalid, st.sampled_from(mutated))
    valid = st.none()
    # a cursor this run saw: right for its own listing, a ValidationError for any other
    unknown = st.sampled_from(seen) if seen else None
    return arg(valid, invalid, unknown=unknown)


def viewer() -> st.SearchStrategy[Tagged]:
    valid = st.builds(
        Viewer,
        agent_id=st.one_of(st.sampled_from(["alice", "bob", "observer"]), valid_text(20)),
        agent_type=st.sampled_from(["generic", "writer", "reviewer"]),
        is_admin=st.booleans(),
    )
    invalid = st.one_of(
        st.sampled_from([None, "alice", {"agent_id": "alice"}, 5, ("alice",)]),
        st.sampled_from(
            [
                {"agent_id": ""},
                {"agent_id": "\ud800"},
                {"agent_id": "a\x00"},
                {"agent_id": 5},
                {"agent_id": "x" * 256},
                {"agent_id": "alice", "agent_type": " "},
                {"agent_id": "alice", "is_admin": "yes"},
                {"agent_id": "alice", "is_admin": 1},
            ]
        ).map(_constructed_viewer),
    )
    return arg(valid, invalid)


def _constructed_viewer(fields: Any) -> Viewer:
    """A Viewer built without pydantic's checks (what a careless caller can make)."""
    return Viewer.model_construct(**{"agent_type": "generic", "is_admin": False, **fields})


# -- new messages ------------------------------------------------------------------


def _message_fields(parents: list[int]) -> st.SearchStrategy[tuple[dict[str, Any], bool | None]]:
    fields = {
        "sender": name(),
        "content": content(),
        "sender_type": keyword(name()),
        "visibility": keyword(choice(["public", "private", "agent_only", "admin_only"])),
        "message_type": keyword(name()),
        "metadata": keyword(metadata()),
        "parent_message_id": keyword(row_id(parents, nullable=True)),
    }
    return st.fixed_dictionaries(fields).map(_combine)


def _combine(tagged: dict[str, Tagged]) -> tuple[dict[str, Any], bool | None]:
    values = {k: v for k, (v, _) in tagged.items() if v is not OMIT}
    return values, verdict(valid for _, valid in tagged.values())


def verdict(validities: Any) -> bool | None:
    """False if any is invalid, else None if any is unknown, else True."""
    seen = list(validities)
    if False in seen:
        return False
    return None if None in seen else True


def _as_item(fields: dict[str, Any], valid: bool | None, form: str) -> Tagged:
    fields = {key: materialise(value) for key, value in fields.items()}
    if form == "dict":
        return dict(fields), valid
    if valid is False:
        # NewMessage() itself refuses bad fields: smuggle them in without its checks
        return NewMessage.model_construct(**fields), valid
    return NewMessage(**fields), valid


def new_messages(parents: list[int]) -> st.SearchStrategy[Tagged]:
    item = st.tuples(_message_fields(parents), st.sampled_from(["dict", "model"])).map(
        lambda pair: _as_item(pair[0][0], pair[0][1], pair[1])
    )
    batch = st.lists(item, max_size=6).map(
        lambda items: ([value for value, _ in items], verdict(v for _, v in items))
    )
    wrong = st.one_of(
        st.sampled_from(["messages", b"bytes", None, 5, {"sender": "a", "content": "b"}]),
        st.just([{"sender": "a", "content": "b", "bogus": 1}]),
        st.just([{1: "a"}]),
        st.just([object()]),
        st.just(iter([{"sender": "a", "content": "b"}])),  # not a Sequence
    )
    return st.one_of(batch, bad(wrong))
