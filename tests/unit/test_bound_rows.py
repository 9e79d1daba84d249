"""BoundRows: a batch's bind values, a chunk at a time, the same as args_many."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert
from sqlalchemy.dialects import postgresql

from contextstore._dialects._base import BoundRows
from contextstore._execute import Query
from contextstore.schema import messages

_COLUMNS = ["session_id", "sender", "content", "metadata", "timestamp"]


def _batch(count: int) -> list[dict[str, object]]:
    return [
        {"session_id": "s", "sender": f"a{n % 3}", "content": f"c{n}", "metadata": {"n": n}}
        for n in range(count)
    ]


@pytest.fixture
def form():  # type: ignore[no-untyped-def]
    query = Query(insert(messages), column_keys=_COLUMNS)
    return query.form(postgresql.asyncpg.dialect())


@pytest.mark.parametrize("count", [0, 1, 9, 10, 11, 35])
def test_the_same_rows_as_args_many(form, count: int) -> None:  # type: ignore[no-untyped-def]
    params = _batch(count)
    shared = {"timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
    expected = form.args_many(params, shared)
    rows = BoundRows(form, params, shared, chunk=10)
    assert len(rows) == count
    assert list(rows) == expected
    assert [rows[i] for i in range(count)] == expected
    assert [rows[-1 - i] for i in range(count)] == expected[::-1]
    for start, stop, step in [(0, count, 1), (3, 27, 1), (9, 11, 1), (5, 33, 4), (-5, None, 1)]:
        assert rows[start:stop:step] == expected[start:stop:step]
    with pytest.raises(IndexError):
        rows[count]


def test_chunks_are_bound_when_first_read_and_once(form, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    real = type(form).args_many

    def counting(self, params, shared):  # type: ignore[no-untyped-def]
        calls.append(len(params))
        return real(self, params, shared)

    monkeypatch.setattr(type(form), "args_many", counting)
    rows = BoundRows(form, _batch(25), {"timestamp": datetime(2026, 1, 1, tzinfo=UTC)}, chunk=10)
    assert calls == []
    iterator = iter(rows)
    next(iterator)
    assert calls == [10]  # only the first chunk, before the rest is asked for
    rows[12]
    assert calls == [10, 10]
    list(rows)
    list(rows)
    assert calls == [10, 10, 5]
