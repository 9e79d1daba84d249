"""The JSON codec of JSON columns (both backends): orjson's speed, the standard
library's values."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from contextstore._facts import json_bytes_loads, json_loads, json_text, jsonb_loads
from tests._typed_json import typed

PLAIN: list[Any] = [
    None,
    True,
    0,
    -7,
    2.5,
    1e16,
    "",
    "snow ☃ \u2028 \x7f",
    'quote " backslash \\ newline \n',
    [],
    {},
    {"a": [1, {"b": None}], "ü": "é"},
    2**63 - 1,
    -(2**63),
    -0.0,
    1e308,
    5e-324,
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_every_plain_value_reads_back_equal(value: Any) -> None:
    text = json_text(value)
    assert typed(json_loads(text)) == typed(value)
    assert typed(json.loads(text)) == typed(value)  # the standard library reads what we write
    # PostgreSQL's json and jsonb in binary format (the text; a version byte and the text)
    assert typed(json_bytes_loads(text.encode())) == typed(value)
    assert typed(jsonb_loads(b"\x01" + text.encode())) == typed(value)


@pytest.mark.parametrize("value", [2**64, -(2**70), {"n": [10**30]}], ids=repr)
def test_integers_beyond_64_bits_keep_every_digit(value: Any) -> None:
    text = json_text(value)
    assert json_loads(text) == value
    assert json_loads(text.encode()) == value
    assert json_bytes_loads(text.encode()) == value


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551617",  # the whole document
        '{"é":"ü☃","n":18446744073709551617}',  # after non-ASCII text
        "[1,2,-9223372036854775809]",  # at the very end, negative
        '{"n":100000000000000000000,"s":"\u2028"}',
    ],
)
def test_a_long_integer_anywhere_is_read_exactly(text: str) -> None:
    expected = json.loads(text)
    for found in (json_loads(text), json_loads(text.encode()), json_bytes_loads(text.encode())):
        assert typed(found) == typed(expected)


def test_digits_that_only_look_long_stay_with_orjson() -> None:
    # 18 digits, then runs of digits split by other characters: no 64-bit overflow
    for text in ('{"n":123456789012345678}', '"2026-12-06T19:57:31.123456 12345678901234567"'):
        assert typed(json_loads(text)) == typed(json.loads(text))
        assert typed(json_bytes_loads(text.encode())) == typed(json.loads(text))


def test_text_that_orjson_refuses_is_read_by_the_standard_library() -> None:
    # NaN is never written (validation refuses it) but a foreign writer may have
    assert math.isnan(json_loads('{"x": NaN}')["x"])


def test_compact_utf8_text() -> None:
    assert json_text({"ü": [1, 2.5]}) == '{"ü":[1,2.5]}'


def test_tuples_are_arrays_and_str_subclasses_are_strings() -> None:
    class Name(str):
        pass

    assert json_loads(json_text({"t": (1, 2), "n": Name("x")})) == {"t": [1, 2], "n": "x"}
