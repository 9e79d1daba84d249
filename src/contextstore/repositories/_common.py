"""Small pieces every Core repository uses: keyset predicates, prepared statements."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, or_

from .._dialects import Dialect

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from ..connection import ConnectionManager, UnitOfWork


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


class CoreRepository:
    """Base of the Core repositories: the manager they run on and its dialect recipe."""

    def __init__(self, db: ConnectionManager | UnitOfWork) -> None:
        self._db = db
        self._dialect: Dialect = db.recipe
