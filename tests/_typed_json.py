"""Type-aware comparison of JSON values, for the "what you read is what was stored" tests.

``==`` on Python values says ``1e16 == 10000000000000000``, ``-0.0 == 0.0``,
``True == 1`` and ``(1, 2) != [1, 2]`` only by accident of value; the stored
form is a JSON document, so the comparison that matters is by JSON type and
exact value. :func:`typed` turns a value into a structure whose ``==`` is that
comparison (and whose repr shows the types in an assertion's diff).
"""

from __future__ import annotations

from typing import Any


def typed(value: Any) -> Any:
    """``value`` tagged with its exact type at every level: floats by their hex
    form (exact, and ``-0.0`` differs from ``0.0``), dicts by their items with
    key order ignored. Anything that is not a plain JSON value (a tuple, a
    subclass, a non-string key) is an AssertionError."""
    kind = type(value)
    if kind is float:
        return ("float", value.hex())
    if value is None or kind is bool or kind is int or kind is str:
        return (kind.__name__, value)
    if kind is list:
        return ("list", [typed(item) for item in value])
    if kind is dict:
        for key in value:
            assert type(key) is str, f"a {type(key).__name__} key {key!r} in {value!r}"
        return ("dict", {key: typed(item) for key, item in value.items()})
    raise AssertionError(f"not a plain JSON value: {kind.__name__} {value!r}")


def as_stored(value: Any) -> Any:
    """``value`` as its JSON document reads back: tuples become lists (keys are
    already strings: other keys are refused)."""
    if isinstance(value, list | tuple):
        return [as_stored(item) for item in value]
    if isinstance(value, dict):
        return {key: as_stored(item) for key, item in value.items()}
    return value
