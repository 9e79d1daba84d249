"""A service's own table as a :class:`TableRepository` sees it: its checks and statements.

A :class:`Layout` is made once per ``(table, record)`` pair (see
:func:`layout_for`) and checks, before any SQL, that the pair can work: a
``Table`` with a primary key, a pydantic model whose fields are exactly the
table's columns, no column default that only SQLAlchemy's own execution
could compute. It then holds one value check per column and the statements
of the fixed shapes, each built and compiled once per shape (get and delete
by primary key; insert per set of written columns; update per set of changed
columns; upsert per key; listings, counts and deletes per set of filters,
order and limit). Statements with a caller's own where-expressions are built
per call instead (:func:`listing`, :func:`counting`, :func:`deleting`).

Listings are keyset pages on ``(order column, primary key...)``. A nullable
order column sorts its NULLs last ascending and first descending on every
dialect (a ``CASE`` in the ORDER BY), and the keyset predicate follows that
order, so a page never skips or repeats a row whatever the dialect's own
NULL order is.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic
from sqlalchemy import (
    Column,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from .._execute import Query
from ..errors import ValidationError
from ..schema import metadata as own_metadata
from ._columns import Check, check_for, comparable, orderable

if TYPE_CHECKING:
    from .._dialects import Dialect

__all__ = [
    "Layout",
    "counting",
    "deleting",
    "layout_for",
    "listing",
]

#: ``(column, is None)`` for each ``**equals`` filter, sorted by column
Shape = tuple[tuple[str, bool], ...]

_LAYOUTS: dict[tuple[Table, type], Layout] = {}
_LOCK = threading.Lock()


def layout_for(table: Any, record: Any) -> Layout:
    """The layout of ``table`` with records of ``record``, made on first use.

    Raises:
        ValidationError: the pair cannot work (see :class:`Layout`).
    """
    try:
        return _LAYOUTS[(table, record)]
    except (KeyError, TypeError):
        pass
    layout = Layout(table, record)
    with _LOCK:
        return _LAYOUTS.setdefault((table, record), layout)


class Layout:
    """What a table repository knows of one ``(table, record)`` pair.

    Raises:
        ValidationError: ``table`` is not a ``Table`` with a primary key, or is
            one of contextstore's own; ``record`` is not a pydantic model whose
            fields are the table's columns; a column's default or ``onupdate``
            is a Python function (only SQLAlchemy's ORM-style execution runs
            those: give the value in the record, or use ``server_default``).
    """

    def __init__(self, table: Any, record: Any) -> None:
        if not isinstance(table, Table):
            raise ValidationError(f"table: expected a sqlalchemy Table, got {type(table).__name__}")
        if not (isinstance(record, type) and issubclass(record, pydantic.BaseModel)):
            raise ValidationError(
                f"record: expected a pydantic model class, got {type(record).__name__}"
            )
        label = record.__name__
        if table.metadata is own_metadata:
            raise ValidationError(
                f"table: {table.name!r} is one of contextstore's own tables; "
                "use its repository (store.sessions, store.messages, ...)"
            )
        if not table.primary_key.columns:
            raise ValidationError(f"table: {table.name!r} has no primary key")
        names = [str(column.name) for column in table.columns]
        fields = set(record.model_fields)
        missing = [name for name in names if name not in fields]
        extra = sorted(fields.difference(names))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"no field for the column(s) {', '.join(missing)}")
            if extra:
                parts.append(f"field(s) {', '.join(extra)} are not columns")
            raise ValidationError(
                f"record: {label} does not match table {table.name!r}: {'; '.join(parts)}"
            )
        for column in table.columns:
            if column.key != column.name:
                raise ValidationError(
                    f"table: column {column.name!r} has the key {column.key!r}; "
                    "give columns their name as key"
                )
            default = column.default
            if (default is not None and getattr(default, "is_callable", False)) or (
                column.onupdate is not None
            ):
                raise ValidationError(
                    f"table: column {column.name!r} has a Python default or onupdate; "
                    "give its value in the record, or use server_default"
                )
        self.table = table
        self.record = record
        self.label = label
        self.names = tuple(names)
        self.index = {name: position for position, name in enumerate(names)}
        self.columns: dict[str, Column[Any]] = {str(c.name): c for c in table.columns}
        self.checks: dict[str, Check] = {name: check_for(self.columns[name]) for name in names}
        self.pk = tuple(str(column.name) for column in table.primary_key.columns)
        auto = table.autoincrement_column
        #: the primary key column the database generates, if any
        self.generated = None if auto is None else str(auto.name)
        self.computed = frozenset(str(c.name) for c in table.columns if c.computed is not None)
        #: NOT NULL columns a None leaves to the server's default (left out of the INSERT)
        self.defaulted = frozenset(
            str(c.name) for c in table.columns if not c.nullable and c.server_default is not None
        )
        #: NOT NULL columns a None gives their constant default (written as a value:
        #: the statements run without SQLAlchemy's execution, which would add it)
        self.constants: dict[str, Any] = {
            str(c.name): getattr(c.default, "arg", None)
            for c in table.columns
            if not c.nullable and getattr(c.default, "is_scalar", False)
        }
        self.unique_keys = _unique_keys(table, self.pk)
        keys = " or ".join(
            "(" + ", ".join(key) + ")" if len(key) > 1 else key[0] for key in self.unique_keys
        )
        self.taken = f"{label}: a row with the same {keys} already exists"
        by_pk = [table.c[name] == bindparam(f"pk_{name}") for name in self.pk]
        #: one row by primary key; its columns' result processors also serve
        #: the rows an INSERT ... RETURNING gives (the same columns, in order)
        self.get = Query(select(*table.columns).where(*by_pk))
        self.delete = Query(delete(table).where(*by_pk))

    def __repr__(self) -> str:
        return f"<Layout {self.table.name} as {self.label}>"

    # -- the caller's input, checked ------------------------------------

    def row_of(self, item: Any, field: str = "item") -> dict[str, Any]:
        """The values ``item`` writes, checked, in column order: without the
        generated primary key when it is None, computed columns, and NOT NULL
        columns with a server default whose value is None; a None of a NOT
        NULL column with a constant default is that constant."""
        if not isinstance(item, self.record):
            raise ValidationError(f"{field}: expected {self.label}, got {type(item).__name__}")
        values: dict[str, Any] = {}
        for name in self.names:
            if name in self.computed:
                continue
            value = getattr(item, name)
            if value is None:
                if name == self.generated or name in self.defaulted:
                    continue
                value = self.constants.get(name)
            try:
                values[name] = self.checks[name](value)
            except ValidationError as error:
                if field == "item":
                    raise
                raise ValidationError(f"{field}.{error}") from None  # items[3].title: ...
        return values

    def key(self, pk: Any) -> dict[str, Any]:
        """The bind parameters of a primary key value (a tuple for a composite key)."""
        if len(self.pk) == 1:
            name = self.pk[0]
            if pk is None:
                raise ValidationError(f"{name}: the primary key must not be None")
            return {f"pk_{name}": self.checks[name](pk)}
        if not isinstance(pk, tuple | list) or len(pk) != len(self.pk):
            raise ValidationError(
                f"pk: expected a tuple ({', '.join(self.pk)}) for the composite primary key "
                f"of {self.label}"
            )
        params: dict[str, Any] = {}
        for name, value in zip(self.pk, pk, strict=True):
            if value is None:
                raise ValidationError(f"{name}: the primary key must not be None")
            params[f"pk_{name}"] = self.checks[name](value)
        return params

    def column(self, name: Any, what: str) -> Column[Any]:
        """The column called ``name``; ValidationError naming ``what`` asked for it."""
        column = self.columns.get(name) if isinstance(name, str) else None
        if column is None:
            raise ValidationError(
                f"{what}: {self.label} has no column {name!r} "
                f"(its columns: {', '.join(self.names)})"
            )
        return column

    def equals(self, equals: Mapping[str, Any]) -> tuple[Shape, dict[str, Any]]:
        """``**equals`` as a shape (its columns, which are None) and bind parameters."""
        shape: list[tuple[str, bool]] = []
        params: dict[str, Any] = {}
        for name in sorted(equals):
            column = self.column(name, name)
            if not comparable(column.type):
                raise ValidationError(
                    f"{name}: a JSON column cannot be compared with '='; use a where-expression"
                )
            value = equals[name]
            shape.append((name, value is None))
            if value is not None:
                params[f"eq_{name}"] = self.checks[name](value)
        return tuple(shape), params

    def changes(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``update``'s ``**values``, checked, in column order."""
        for name in values:
            self.column(name, name)
            if name in self.pk:
                raise ValidationError(f"{name}: the primary key cannot be updated")
            if name in self.computed:
                raise ValidationError(f"{name}: a computed column cannot be written")
        return {name: self.checks[name](values[name]) for name in self.names if name in values}

    def order(self, order_by: Any) -> tuple[str, ...]:
        """The sort key of a listing: the order column, then the primary key."""
        if order_by is None:
            return self.pk
        if isinstance(order_by, Column) and order_by.table is self.table:
            order_by = str(order_by.name)
        column = self.column(order_by, "order_by")
        if not orderable(column.type):
            raise ValidationError(f"order_by: rows cannot be ordered by {order_by!r} (its type)")
        return (order_by, *(name for name in self.pk if name != order_by))

    def nullable_first(self, keys: tuple[str, ...]) -> bool:
        """The sort key starts with a nullable column (its NULLs get a place)."""
        return bool(self.columns[keys[0]].nullable)

    def position(self, keys: tuple[str, ...], values: list[Any]) -> dict[str, Any]:
        """A decoded cursor's position, checked against its columns, as bind parameters."""
        params: dict[str, Any] = {}
        try:
            for number, (name, value) in enumerate(zip(keys, values, strict=True)):
                if value is None and number == 0 and self.nullable_first(keys):
                    continue
                if value is None:
                    raise ValidationError("NULL")
                params[f"after_{number}"] = self.checks[name](value)
        except ValidationError:
            raise ValidationError(
                "cursor: position out of range (malformed or tampered cursor)"
            ) from None
        return params

    def unique_key(self, on: Any) -> tuple[str, ...]:
        """``upsert``'s ``on``: column names that are exactly a unique key of the table."""
        if isinstance(on, str) or not isinstance(on, Sequence) or not on:
            raise ValidationError("on: expected a non-empty tuple of column names")
        names = tuple(on)
        for name in names:
            self.column(name, "on")
        if set(names) not in [set(key) for key in self.unique_keys]:
            keys = "; ".join(", ".join(key) for key in self.unique_keys)
            raise ValidationError(
                f"on: ({', '.join(names)}) is not a unique key of {self.label} "
                f"(its unique keys: {keys})"
            )
        return names

    # -- rows read back ---------------------------------------------------

    def record_from(self, row: Sequence[Any]) -> Any:
        """The record of a stored row (the record model validates it)."""
        try:
            return self.record.model_validate(dict(zip(self.names, row, strict=True)))
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValidationError(
                f"{self.label}: a stored row does not fit the record ({where}: {first['msg']})"
            ) from None

    def position_of(self, keys: tuple[str, ...], row: Sequence[Any]) -> list[Any]:
        """The sort key values of a stored row (a cursor's position)."""
        return [row[self.index[name]] for name in keys]


def _unique_keys(table: Table, pk: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The primary key, then every unique constraint, unique index and unique column."""
    from sqlalchemy import UniqueConstraint

    keys: list[tuple[str, ...]] = [pk]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            keys.append(tuple(str(c.name) for c in constraint.columns))
    for index in table.indexes:
        if index.unique:
            keys.append(tuple(str(c.name) for c in index.columns))
    for column in table.columns:
        if column.unique:
            keys.append((str(column.name),))
    unique: list[tuple[str, ...]] = []
    for key in keys:
        if key and set(key) not in [set(known) for known in unique]:
            unique.append(key)
    return unique


# -- statements -----------------------------------------------------------


def _filters(layout: Layout, shape: Shape) -> list[ColumnElement[bool]]:
    table = layout.table
    return [
        table.c[name].is_(None) if is_null else table.c[name] == bindparam(f"eq_{name}")
        for name, is_null in shape
    ]


def _beyond(
    columns: Sequence[ColumnElement[Any]], values: Sequence[Any], descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the lexicographic order of ``columns``.

    Written ``c >= v AND (c > v OR rest)`` (as ``_common.after``): the leading
    bound on the first column is an index range.
    """
    column, value = columns[0], values[0]
    strict: ColumnElement[bool] = column < value if descending else column > value
    if len(columns) == 1:
        return strict
    loose = column <= value if descending else column >= value
    return and_(loose, or_(strict, _beyond(columns[1:], values[1:], descending)))


def _after(
    layout: Layout, keys: tuple[str, ...], descending: bool, resumed: str
) -> ColumnElement[bool]:
    """The keyset predicate: rows after the position in bind parameters ``after_<n>``;
    ``resumed`` is ``"null"`` when the position's order value is NULL."""
    columns = [layout.table.c[name] for name in keys]
    values = [
        bindparam(f"after_{number}", type_=column.type) for number, column in enumerate(columns)
    ]
    if not layout.nullable_first(keys):
        return _beyond(columns, values, descending)
    first = columns[0]
    if resumed == "value":
        beyond = _beyond(columns, values, descending)
        # ascending, the NULLs come after every value; descending, before
        return beyond if descending else or_(beyond, first.is_(None))
    in_nulls = and_(first.is_(None), _beyond(columns[1:], values[1:], descending))
    return or_(first.is_not(None), in_nulls) if descending else in_nulls


def _ordered(
    stmt: Select[Any], layout: Layout, keys: tuple[str, ...], descending: bool
) -> Select[Any]:
    columns = [layout.table.c[name] for name in keys]
    clauses: list[Any] = []
    if layout.nullable_first(keys):
        nulls = case((columns[0].is_(None), 1), else_=0)
        clauses.append(nulls.desc() if descending else nulls)
    clauses.extend(column.desc() if descending else column for column in columns)
    return stmt.order_by(*clauses)


def listing(
    layout: Layout,
    where: Sequence[ColumnElement[bool]],
    shape: Shape,
    keys: tuple[str, ...],
    descending: bool,
    resumed: str | None,
    limit: int,
    offset: int = 0,
) -> Select[Any]:
    """A listing's SELECT (bind parameters ``eq_<column>`` and ``after_<n>``).

    The limit and offset are written into the SQL, as in the built-in
    listings (PostgreSQL plans a bound LIMIT as a tenth of the rows).
    """
    stmt: Select[Any] = select(*layout.table.columns).where(*where, *_filters(layout, shape))
    if resumed is not None:
        stmt = stmt.where(_after(layout, keys, descending, resumed))
    stmt = _ordered(stmt, layout, keys, descending)
    stmt = stmt.limit(literal_column(str(int(limit)), Integer))
    if offset:
        stmt = stmt.offset(literal_column(str(int(offset)), Integer))
    return stmt


def counting(layout: Layout, where: Sequence[ColumnElement[bool]], shape: Shape) -> Select[Any]:
    """``count``'s SELECT (bind parameters ``eq_<column>``)."""
    return select(func.count()).select_from(layout.table).where(*where, *_filters(layout, shape))


def deleting(layout: Layout, where: Sequence[ColumnElement[bool]], shape: Shape) -> Any:
    """``delete_where``'s DELETE (bind parameters ``eq_<column>``)."""
    return delete(layout.table).where(*where, *_filters(layout, shape))


@functools.lru_cache(maxsize=1024)
def list_query(
    layout: Layout,
    shape: Shape,
    keys: tuple[str, ...],
    descending: bool,
    resumed: str | None,
    limit: int,
    offset: int = 0,
) -> Query:
    """:func:`listing` without where-expressions, compiled once per shape."""
    return Query(listing(layout, (), shape, keys, descending, resumed, limit, offset))


@functools.lru_cache(maxsize=512)
def count_query(layout: Layout, shape: Shape) -> Query:
    """:func:`counting` without where-expressions, compiled once per shape."""
    return Query(counting(layout, (), shape))


@functools.lru_cache(maxsize=512)
def delete_query(layout: Layout, shape: Shape) -> Query:
    """:func:`deleting` without where-expressions, compiled once per shape."""
    return Query(deleting(layout, (), shape))


@functools.lru_cache(maxsize=512)
def insert_query(layout: Layout, written: tuple[str, ...], returning: bool) -> Query:
    """One row's INSERT, once per set of written columns (bind parameters: the
    column names); with ``returning``, it returns the row as stored."""
    stmt: Any = insert(layout.table)
    if returning:
        stmt = stmt.returning(*layout.table.columns)
    return Query(stmt, column_keys=written)


@functools.lru_cache(maxsize=512)
def update_query(layout: Layout, changed: tuple[str, ...]) -> Query:
    """``update``'s UPDATE, once per set of changed columns (bind parameters
    ``set_<column>`` and the primary key's ``pk_<column>``)."""
    table = layout.table
    values = {name: bindparam(f"set_{name}", type_=table.c[name].type) for name in changed}
    by_pk = [table.c[name] == bindparam(f"pk_{name}") for name in layout.pk]
    return Query(update(table).where(*by_pk).values(values))


@functools.lru_cache(maxsize=512)
def upsert_query(
    layout: Layout,
    dialect: Dialect,
    written: tuple[str, ...],
    on: tuple[str, ...],
    returning: bool,
) -> Query:
    """``upsert``'s statement, once per dialect, written columns and key (bind
    parameters ``set_<column>``): every written column but the key's and the
    primary key's is updated on a clash; with ``returning``, it returns the
    row as stored."""
    table = layout.table
    values = {name: bindparam(f"set_{name}", type_=table.c[name].type) for name in written}
    changed = [name for name in written if name not in on and name not in layout.pk]
    stmt = dialect.upsert(
        table,
        values,
        conflict=on,
        update=changed,
        returning=list(table.columns) if returning else (),
    )
    return Query(stmt)


@functools.lru_cache(maxsize=256)
def by_key_query(layout: Layout, on: tuple[str, ...]) -> Query:
    """The row with these values of a unique key (bind parameters ``on_<column>``)."""
    table = layout.table
    return Query(
        select(*table.columns).where(*(table.c[name] == bindparam(f"on_{name}") for name in on))
    )
