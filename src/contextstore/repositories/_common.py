"""Small pieces every Core repository uses: keyset predicates, prepared statements."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.sql.base import Executable

from .._dialects import Dialect, dialect_for

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from ..connection import ConnectionManager


def after(
    position: tuple[datetime, Any],
    time_column: ColumnElement[Any],
    id_column: ColumnElement[Any],
    *,
    descending: bool,
) -> ColumnElement[bool]:
    """Rows strictly after ``position`` in (time, id) order: the keyset predicate.

    Written ``t >= :t AND (t > :t OR id > :id)`` rather than the equivalent
    ``t > :t OR (t = :t AND id > :id)``: the leading conjunct is a bound on the
    time column, which planners turn into an index range on a ``(..., time,
    id)`` index, so a far page reads only its own rows instead of every row
    before the cursor.
    """
    moment, row_id = position
    if descending:
        return and_(time_column <= moment, or_(time_column < moment, id_column < row_id))
    return and_(time_column >= moment, or_(time_column > moment, id_column > row_id))


def after_param(
    time_column: ColumnElement[Any], id_column: ColumnElement[Any], *, descending: bool
) -> ColumnElement[bool]:
    """:func:`after` with bind parameters ``after_time`` and ``after_id``, for prepared
    statements (see :func:`prepared`)."""
    return after(
        (bindparam("after_time"), bindparam("after_id")),  # type: ignore[arg-type]
        time_column,
        id_column,
        descending=descending,
    )


E = TypeVar("E", bound=Executable)


def prepared(stmt: E) -> E:
    """Mark a statement built once, with bind parameters for every value, as final.

    SQLAlchemy finds a statement's compiled form by its cache key, which it
    computes again on every execution by walking the whole expression: about
    50 µs of a point read that costs the raw driver 100-150 µs. A statement
    built once per shape never changes, so its key is computed here once.
    The statement must not be used to derive others (``.where()`` and friends
    would copy the stored key); build variants as separate prepared statements.
    """
    element: Any = stmt
    key = element._generate_cache_key()
    element._generate_cache_key = lambda: key
    return stmt


def fixed_key(stmt: E, *name: str) -> E:
    """Give a statement built once, with bind parameters for every value, the
    constant cache key ``name``, so SQLAlchemy caches its compiled form.

    For constructs that have no cache key at all: the dialect ``insert()``
    constructs (ON CONFLICT / ON DUPLICATE KEY) set ``inherit_cache = False``,
    so SQLAlchemy compiles them again on every execution (``[no key]`` in the
    compiled-cache statistics). ``name`` must identify the statement's whole
    shape, dialect included; every value must be a bind parameter given at
    execution, since the key carries no values. Like :func:`prepared`, the
    statement must not be used to derive others.
    """
    from sqlalchemy.sql import visitors
    from sqlalchemy.sql.cache_key import CacheKey
    from sqlalchemy.sql.elements import BindParameter

    element: Any = stmt
    binds = [each for each in visitors.iterate(element) if isinstance(each, BindParameter)]
    key = CacheKey(("contextstore", *name), binds)
    element._generate_cache_key = lambda: key
    return stmt


class CoreRepository:
    """Base of the Core repositories: the manager they run on and its dialect recipe."""

    def __init__(self, db: ConnectionManager) -> None:
        self._db = db
        self._dialect: Dialect = dialect_for(db.settings.effective_database_url)
