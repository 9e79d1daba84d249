"""A precompiled statement's positional values: the call's parameters by name,
constants as bound, each through its column type's bind processor."""

from __future__ import annotations

import collections
import json
from typing import Any

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, bindparam, select
from sqlalchemy.dialects import sqlite

from contextstore._execute import Form

_DIALECT = sqlite.aiosqlite.dialect()  # type: ignore[attr-defined]
_TABLE = Table(
    "things",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("doc", JSON),
    Column("kind", String(20)),
)


def _form(*criteria: Any) -> Form:
    return Form(select(_TABLE.c.id).where(*criteria), _DIALECT)


def test_every_value_comes_from_the_call_in_the_statements_order() -> None:
    form = _form(
        _TABLE.c.doc == bindparam("doc", type_=JSON),
        _TABLE.c.name == bindparam("name"),
        _TABLE.c.id > bindparam("low", type_=Integer),
    )
    assert form.names == ("doc", "name", "low")
    # the JSON value through its processor, the others as they are
    args = form.args({"low": 3, "name": "a", "doc": {"k": [1, 2]}, "unused": 1})
    assert args is not None
    assert json.loads(args[0]) == {"k": [1, 2]}
    assert args[1:] == ["a", 3]


def test_one_parameter() -> None:
    form = _form(_TABLE.c.name == bindparam("name"))
    assert form.args({"name": "a"}) == ["a"]


def test_a_parameter_used_twice_is_sent_twice() -> None:
    form = _form(_TABLE.c.name == bindparam("v"), _TABLE.c.kind == bindparam("v"))
    assert form.args({"v": "x"}) == ["x", "x"]


@pytest.mark.parametrize(
    ("params", "missing"),
    [({"name": "a"}, "kind"), ({"kind": "b"}, "name"), ({}, "name"), (None, "name")],
)
def test_a_missing_value_names_its_parameter(params: dict[str, Any] | None, missing: str) -> None:
    """The first parameter without a value, in the statement's order."""
    form = _form(_TABLE.c.name == bindparam("name"), _TABLE.c.kind == bindparam("kind"))
    with pytest.raises(KeyError, match=f"bind parameter '{missing}' needs a value"):
        form.args(params)


def test_a_constant_is_sent_as_bound_and_the_call_may_give_the_rest() -> None:
    form = _form(_TABLE.c.kind == "public", _TABLE.c.name == bindparam("name"))
    assert form.args({"name": "a"}) == ["public", "a"]


def test_a_mapping_other_than_a_dict_is_read_with_get() -> None:
    """A defaultdict answers every key through ``[]``; the values are read as
    ``get`` reads them, so a missing one is still missing."""
    form = _form(_TABLE.c.name == bindparam("name"), _TABLE.c.kind == bindparam("kind"))
    params: collections.defaultdict[str, Any] = collections.defaultdict(lambda: "made up")
    params["name"] = "a"
    with pytest.raises(KeyError, match="'kind' needs a value"):
        form.args(params)
    params["kind"] = "b"
    assert form.args(params) == ["a", "b"]


def test_a_statement_without_parameters_has_no_values() -> None:
    assert Form(select(_TABLE.c.id), _DIALECT).args({"name": "a"}) is None
