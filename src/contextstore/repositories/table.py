"""TableRepository: a service's own table, with the guarantees of the built-in repositories.

``store.table(table, record)`` (or ``tx.table(...)`` in a unit of work) gives
one. Every method follows the steps of the built-in repositories:

* validate before any SQL: unknown columns, values a column cannot hold,
  bounds, cursors (``ValidationError``, nothing written; see
  ``_columns`` and ``_table_layout``);
* run on the execution core (``perform``, or the unit of work's one
  connection): the statements of fixed shapes are compiled once per shape;
  a caller's own where-expressions are SQLAlchemy statements run per call
  on a Connection of the same pool (``run``), the same rules either way;
* retry a whole attempt only where repeating cannot duplicate a write: reads,
  ``update`` and ``upsert`` (they write absolute values) are retried even
  after a lost COMMIT; ``add``, ``add_many``, ``delete`` and ``delete_where``
  only while nothing can have been committed, otherwise
  ``DatabaseUnavailableError(may_have_committed=True)``;
* errors are contextstore's, a unique-key clash a ``ConflictError`` in the
  record's terms, never the database's text, table or constraint names.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import pydantic
from sqlalchemy import literal_column, select
from sqlalchemy.sql.elements import ColumnElement

from .. import _cursor, _validate
from .._execute import Query
from ..errors import NotFoundError, ValidationError, _in_terms
from ..models import OffsetPage, Page
from ._table_layout import (
    Layout,
    Shape,
    by_key_query,
    count_query,
    counting,
    delete_query,
    deleting,
    insert_query,
    layout_for,
    list_query,
    listing,
    update_query,
    upsert_query,
)

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .._dialects import Dialect
    from .._execute import Executor
    from ..connection import ConnectionManager, UnitOfWork

__all__ = ["MAX_PAGE_NUMBER", "TableRepository"]

R = TypeVar("R", bound=pydantic.BaseModel)

#: the highest page number ``page`` serves (an offset past a billion rows
#: is a full scan on every dialect; use keyset pages there)
MAX_PAGE_NUMBER = 1_000_000
_KIND = "table"


class TableRepository(Generic[R]):
    """A service's own table: records of type ``R`` in a table of its own metadata.

    Made by ``store.table(table, record)`` (or ``tx.table(table, record)``
    inside a unit of work); cheap to make, so make one where it is needed.
    The record model's fields are the table's column names; its primary key
    field may be None before the row is added, and the database fills it in.

    Args:
        db: the ConnectionManager, or the unit of work the calls run in.
        table: a SQLAlchemy ``Table`` of the service's own ``MetaData``.
        record: the pydantic model of one row.

    Raises:
        ValidationError: ``table`` and ``record`` do not fit each other (a
            field without its column or a column without its field), the
            table has no primary key or is one of contextstore's own, or a
            column's default is a Python function.
    """

    def __init__(self, db: ConnectionManager | UnitOfWork, table: Table, record: type[R]) -> None:
        self._db = db
        self._dialect = db.recipe
        self._layout: Layout = layout_for(table, record)

    def __repr__(self) -> str:
        return f"<TableRepository {self._layout.table.name} of {self._layout.label}>"

    @property
    def table(self) -> Table:
        """The table this repository reads and writes."""
        return self._layout.table

    @property
    def record(self) -> type[R]:
        """The record model of one row."""
        return cast("type[R]", self._layout.record)

    # -- writes -----------------------------------------------------------

    async def add(self, item: R) -> R:
        """Insert one row; return it as stored, its generated primary key filled in.

        Args:
            item: the new row (its generated primary key None).

        Returns:
            The record as stored (server defaults and the new key included).

        Raises:
            ValidationError: ``item`` is not a record of this table, or a value
                does not fit its column; nothing was written.
            ConflictError: a row with the same primary or unique key exists.
            NotFoundError: a foreign key of the row points nowhere.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the row may have landed
                (it is not retried once COMMIT was sent: a retry could add
                it twice).
        """
        layout = self._layout
        values = layout.row_of(item)
        written = tuple(values)
        if self._dialect.insert_returns_row(self._db.engine.dialect):
            query = insert_query(layout, written, True)

            async def work(executor: Executor) -> Sequence[Any] | None:
                return await executor.row(query, values)

        else:
            query = insert_query(layout, written, False)

            async def work(executor: Executor) -> Sequence[Any] | None:
                return await _insert_then_read(executor, layout, query, values)

        with _in_terms(taken=layout.taken):
            row = await self._db.perform(work, write=True)
        return self._record(_stored(row))

    async def add_many(self, items: Sequence[R]) -> builtins.list[R]:
        """Insert rows in one transaction: all or nothing, in batched round trips.

        Rows are sent as multi-row ``INSERT ... RETURNING`` statements (as many
        rows per statement as the database takes, within MySQL/MariaDB's
        ``max_allowed_packet``). Where the server has no ``INSERT ...
        RETURNING`` (MySQL, not MariaDB), rows with a generated key go as
        multi-row INSERTs whose ids are known as consecutive ranges and are
        read back; rows that give their own key (or a Galera cluster, whose
        ids may interleave) go one INSERT per row, in the same transaction.

        Args:
            items: the new rows, in order.

        Returns:
            The records as stored, in the order of ``items``.

        Raises:
            ValidationError: ``items`` is not a sequence of records of this
                table, or a value does not fit its column (the message names
                the item); nothing was written.
            ConflictError: a row clashes with a stored row's primary or unique
                key, or with another of ``items``; nothing was written.
            NotFoundError: a foreign key of a row points nowhere.
            QueryTimeoutError: a statement ran past ``statement_timeout``.
            DatabaseUnavailableError: as for :meth:`add`.
        """
        layout = self._layout
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise ValidationError(f"items: expected a sequence of {layout.label}")
        rows = [layout.row_of(item, f"items[{number}]") for number, item in enumerate(items)]
        if not rows:
            return []
        groups: dict[tuple[str, ...], builtins.list[int]] = {}
        for number, row in enumerate(rows):
            groups.setdefault(tuple(row), []).append(number)
        dialect = self._dialect
        returning = dialect.insert_returns_row(self._db.engine.dialect)

        async def work(executor: Executor) -> builtins.list[Sequence[Any]]:
            stored: builtins.list[Sequence[Any] | None] = [None] * len(rows)
            for written, numbers in groups.items():
                if not returning:
                    await _insert_without_returning(
                        executor, dialect, layout, written, numbers, rows, stored
                    )
                    continue
                form = insert_query(layout, written, False).form(executor.dialect)
                bound = form.args_many([rows[number] for number in numbers], {})
                statements = await dialect.insert_returning(
                    executor, layout.table, form.names, bound, layout.names
                )
                processed = layout.get.form(executor.dialect)
                start = 0
                for returned in statements:
                    batch = numbers[start : start + len(returned)]
                    start += len(returned)
                    _match(layout, processed.rows(returned), batch, rows, stored)
            return [_stored(row) for row in stored]

        with _in_terms(taken=layout.taken):
            found = await self._db.perform(work, write=True)
        return [self._record(row) for row in found]

    async def update(self, pk: Any, /, **values: Any) -> R:
        """Change some columns of the row with primary key ``pk``; return it as stored.

        Args:
            pk: the primary key value (a tuple, in column order, for a
                composite key).
            **values: column = new value; the primary key cannot change.

        Returns:
            The record as stored after the change (with no ``values``, as it is).

        Raises:
            NotFoundError: there is no row with that key.
            ValidationError: an unknown column, the primary key or a computed
                column in ``values``, or a value that does not fit its
                column; nothing was written.
            ConflictError: the change would give a unique key a taken value.
            QueryTimeoutError: a statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (retried where safe: setting the same values again changes
                nothing).
        """
        layout = self._layout
        key = layout.key(pk)
        changes = layout.changes(values)
        changed = tuple(changes)

        async def work(executor: Executor) -> Sequence[Any] | None:
            if changed:
                params = {f"set_{name}": value for name, value in changes.items()}
                params.update(key)
                await executor.execute(update_query(layout, changed), params)
            return await executor.row(layout.get, key)

        with _in_terms(taken=layout.taken):
            row = await self._db.perform(work, write=bool(changed), idempotent=True)
        if row is None:
            raise NotFoundError(f"{layout.label} {pk!r} does not exist")
        return self._record(row)

    async def upsert(self, item: R, *, on: Sequence[str] = ("source_id",)) -> R:
        """Insert ``item``, or update the row that has the same values of the unique key ``on``.

        On a clash every written column except ``on`` and the primary key is
        set to ``item``'s value; the stored row keeps its primary key. One
        statement (``INSERT ... ON CONFLICT`` / ``ON DUPLICATE KEY UPDATE``).
        On MySQL/MariaDB a clash of any other unique key of the table updates
        that row too (the server's rule): give such tables one unique key
        besides the primary key.

        Args:
            item: the row.
            on: the columns of a primary key or unique constraint of the
                table (default ``("source_id",)``).

        Returns:
            The record as stored (inserted or updated).

        Raises:
            ValidationError: ``on`` is not a unique key of the table, a value of
                ``on`` is None, or a value does not fit its column; nothing
                was written.
            ConflictError: the row clashes with another unique key.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached
                (retried where safe: the upsert writes the same row again).
        """
        layout = self._layout
        keys = layout.unique_key(on)
        values = layout.row_of(item)
        for name in keys:
            if values.get(name) is None:
                raise ValidationError(f"{name}: the upsert key must have a value")
        written = tuple(values)
        params = {f"set_{name}": value for name, value in values.items()}
        by_key = by_key_query(layout, keys)
        key_params = {f"on_{name}": values[name] for name in keys}
        if self._dialect.upsert_returns_row(self._db.engine.dialect):
            upsert = upsert_query(layout, self._dialect, written, keys, True)

            async def once(executor: Executor) -> Sequence[Any] | None:
                row = await executor.row(upsert, params)
                # a clash with nothing to update returns no row (DO NOTHING)
                return row if row is not None else await executor.row(by_key, key_params)

            with _in_terms(taken=layout.taken):
                row = await self._db.perform(once, write=True, idempotent=True, autocommit=True)
            return self._record(_stored(row))
        upsert = upsert_query(layout, self._dialect, written, keys, False)

        async def upserted(executor: Executor) -> Sequence[Any] | None:
            await executor.execute(upsert, params)
            return await executor.row(by_key, key_params)

        with _in_terms(taken=layout.taken):
            row = await self._db.perform(upserted, write=True, idempotent=True)
        return self._record(_stored(row))

    async def delete(self, pk: Any) -> bool:
        """Delete the row with primary key ``pk``.

        Args:
            pk: the primary key value (a tuple for a composite key).

        Returns:
            True when a row was deleted, False when there was none.

        Raises:
            ValidationError: ``pk`` does not fit the primary key.
            ConflictError: another row still refers to it (a foreign key).
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        key = layout.key(pk)

        async def work(executor: Executor) -> bool:
            return await executor.execute(layout.delete, key) > 0

        return await self._db.perform(work, write=True)

    async def delete_where(self, *where: ColumnElement[bool], **equals: Any) -> int:
        """Delete every row that matches all the filters.

        At least one filter is required; ``delete_where(sqlalchemy.true())``
        deletes every row.

        Args:
            *where: SQLAlchemy boolean expressions over the table.
            **equals: column = value (None: the column IS NULL).

        Returns:
            The number of rows deleted.

        Raises:
            ValidationError: no filter, an unknown column, a value that does
                not fit its column, or a where item that is not an expression.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        conditions = _conditions(where)
        shape, params = layout.equals(equals)
        if not conditions and not shape:
            raise ValidationError(
                "delete_where: give at least one filter (sqlalchemy.true() deletes every row)"
            )
        if not conditions:
            query = delete_query(layout, shape)

            async def work(executor: Executor) -> int:
                return await executor.execute(query, params)

            return await self._db.perform(work, write=True)
        stmt = deleting(layout, conditions, shape)

        async def on_connection(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt, params)).rowcount)

        return await self._db.run(on_connection, write=True)

    # -- reads ------------------------------------------------------------

    async def get(self, pk: Any) -> R | None:
        """The row with primary key ``pk``, or None.

        Args:
            pk: the primary key value (a tuple, in column order, for a
                composite key).

        Raises:
            ValidationError: ``pk`` does not fit the primary key.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        row = await self._db.read_row(layout.get, layout.key(pk))
        return None if row is None else self._record(row)

    async def get_by(self, **equals: Any) -> R | None:
        """The row whose columns have these values (the lowest primary key of
        several), or None: ``get_by(source_id="yt-123")``.

        Args:
            **equals: column = value, at least one (None: the column IS NULL).

        Raises:
            ValidationError: no column given, an unknown column, a JSON column,
                or a value that does not fit its column.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        if not equals:
            raise ValidationError("get_by: give at least one column=value")
        shape, params = layout.equals(equals)
        row = await self._db.read_row(list_query(layout, shape, layout.pk, False, None, 1), params)
        return None if row is None else self._record(row)

    async def list(
        self,
        *where: ColumnElement[bool],
        order_by: str | Column[Any] | None = None,
        descending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        **equals: Any,
    ) -> Page[R]:
        """One keyset page of the rows that match all the filters.

        Rows come in the order of ``(order_by, primary key)`` (the primary key
        breaks ties); a nullable ``order_by`` column puts its NULLs last
        (first with ``descending``) on every dialect. Pass the page's
        ``next_cursor`` back, with the same filters and order, for the next
        page; a far page costs what the first does.

        Args:
            *where: SQLAlchemy boolean expressions over the table (for example
                ``ideas.c.score >= 3``).
            order_by: the column to sort by (its name, or the Column): a
                number, a date or time, a boolean, a UUID or a string with a
                length (``String(n)``); None sorts by the primary key.
            descending: newest (largest) first.
            limit: rows per page, 1-1,000.
            cursor: ``next_cursor`` of the previous page, or None for the first.
            **equals: column = value (None: the column IS NULL). Columns
                named like this method's own arguments are filtered with a
                where-expression instead.

        Returns:
            The page; ``next_cursor`` is None on the last one.

        Raises:
            ValidationError: an unknown column, a value that does not fit its
                column, a bad ``limit``, a column that cannot be ordered by
                (JSON, binary, or text without a length: MySQL/MariaDB sort
                those by a prefix), or a cursor of another listing or a
                tampered one.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        conditions = _conditions(where)
        shape, params = layout.equals(equals)
        keys = layout.order(order_by)
        _validate.flag("descending", descending)
        _validate.limit(limit)
        scope = _scope(layout, keys, descending, shape, params, conditions)
        resumed: str | None = None
        if cursor is not None:
            position = _cursor.decode_key(cursor, _KIND, scope, len(keys))
            params.update(layout.position(keys, position))
            resumed = "null" if position[0] is None else "value"
        rows = await self._read(
            conditions,
            lambda: list_query(layout, shape, keys, descending, resumed, limit + 1),
            lambda: listing(layout, conditions, shape, keys, descending, resumed, limit + 1),
            params,
        )
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _cursor.encode_key(_KIND, scope, layout.position_of(keys, rows[-1]))
        return Page(items=[self._record(row) for row in rows], next_cursor=next_cursor)

    async def count(self, *where: ColumnElement[bool], **equals: Any) -> int:
        """The number of rows that match all the filters.

        Args:
            *where: SQLAlchemy boolean expressions over the table.
            **equals: column = value (None: the column IS NULL).

        Raises:
            ValidationError: an unknown column or a value that does not fit its column.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        conditions = _conditions(where)
        shape, params = layout.equals(equals)
        if not conditions:
            return int(await self._db.read_value(count_query(layout, shape), params) or 0)
        stmt = counting(layout, conditions, shape)

        async def on_connection(conn: AsyncConnection) -> int:
            return int((await conn.execute(stmt, params)).scalar() or 0)

        return await self._db.run(on_connection, write=False)

    async def page(
        self,
        *where: ColumnElement[bool],
        number: int = 1,
        size: int = 50,
        order_by: str | Column[Any] | None = None,
        descending: bool = False,
        **equals: Any,
    ) -> OffsetPage[R]:
        """Page ``number`` of the rows that match all the filters, ``size`` rows a page.

        For screens with page numbers. The order is :meth:`list`'s. The total
        and the rows are read on one connection, one after the other (a
        write between them can make them disagree by that write).

        Args:
            *where: SQLAlchemy boolean expressions over the table.
            number: the page, from 1 (at most 1,000,000); past the last page
                the items are empty.
            size: rows per page, 1-1,000.
            order_by: as for :meth:`list`.
            descending: as for :meth:`list`.
            **equals: column = value (None: the column IS NULL).

        Returns:
            ``OffsetPage(items, total, number, size)``, with ``has_next`` and
            ``has_prev``.

        Raises:
            ValidationError: a bad ``number`` or ``size``, an unknown column, a
                value that does not fit its column.
            QueryTimeoutError: a statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        layout = self._layout
        conditions = _conditions(where)
        shape, params = layout.equals(equals)
        keys = layout.order(order_by)
        _validate.flag("descending", descending)
        _bounded("number", number, MAX_PAGE_NUMBER)
        _bounded("size", size, _validate.MAX_LIMIT)
        offset = (number - 1) * size
        if not conditions:
            counted = count_query(layout, shape)
            listed = list_query(layout, shape, keys, descending, None, size, offset)

            async def work(executor: Executor) -> tuple[int, Sequence[Sequence[Any]]]:
                total = await executor.value(counted, params)
                return int(total or 0), await executor.rows(listed, params)

            total, rows = await self._db.perform(work, write=False)
        else:
            count_stmt = counting(layout, conditions, shape)
            list_stmt = listing(layout, conditions, shape, keys, descending, None, size, offset)

            async def on_connection(
                conn: AsyncConnection,
            ) -> tuple[int, Sequence[Sequence[Any]]]:
                total = (await conn.execute(count_stmt, params)).scalar()
                return int(total or 0), (await conn.execute(list_stmt, params)).all()

            total, rows = await self._db.run(on_connection, write=False)
        return OffsetPage(
            items=[self._record(row) for row in rows], total=total, number=number, size=size
        )

    # -- helpers ----------------------------------------------------------

    def _record(self, row: Sequence[Any]) -> R:
        record: R = self._layout.record_from(row)
        return record

    async def _read(
        self,
        conditions: builtins.list[ColumnElement[bool]],
        cached: Callable[[], Query],
        build: Callable[[], Any],
        params: dict[str, Any],
    ) -> Sequence[Sequence[Any]]:
        """The rows of a read: the precompiled query without where-expressions,
        else the statement built with them, on a Connection."""
        if not conditions:
            rows: Sequence[Sequence[Any]] = await self._db.read_rows(cached(), params)
            return rows
        stmt = build()

        async def on_connection(conn: AsyncConnection) -> Sequence[Sequence[Any]]:
            return (await conn.execute(stmt, params)).all()

        return await self._db.run(on_connection, write=False)


def _conditions(where: Sequence[Any]) -> builtins.list[ColumnElement[bool]]:
    """The caller's where-expressions, each a SQLAlchemy expression."""
    for item in where:
        if not isinstance(item, ColumnElement):
            raise ValidationError(
                f"where: expected SQLAlchemy boolean expressions over the table, "
                f"got {type(item).__name__}"
            )
    return list(where)


def _bounded(field: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected an integer, got {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValidationError(f"{field}: must be between 1 and {maximum}, got {value}")
    return value


def _scope(
    layout: Layout,
    keys: tuple[str, ...],
    descending: bool,
    shape: Shape,
    params: dict[str, Any],
    conditions: Sequence[ColumnElement[bool]],
) -> str:
    """The listing a cursor belongs to: table, order, filters (values by their
    repr) and the SQL of the where-expressions (without their values)."""
    filters = [[name, None if null else repr(params[f"eq_{name}"])] for name, null in shape]
    return _cursor.scope(
        layout.table.name, list(keys), descending, filters, [_text_of(c) for c in conditions]
    )


def _text_of(condition: ColumnElement[bool]) -> str:
    try:
        return str(condition)
    except Exception:  # a construct only its dialect can render
        return type(condition).__name__


def _stored(row: Sequence[Any] | None) -> Sequence[Any]:
    if row is None:
        raise RuntimeError("the database returned no row for a write that must return one")
    return row


async def _insert_without_returning(
    executor: Executor,
    dialect: Dialect,
    layout: Layout,
    written: tuple[str, ...],
    numbers: Sequence[int],
    rows: Sequence[dict[str, Any]],
    stored: builtins.list[Sequence[Any] | None],
) -> None:
    """``add_many``'s rows ``numbers`` where the server has no ``INSERT ...
    RETURNING``: multi-row statements whose generated ids the dialect knows
    as ranges, then the rows read back by id; else one INSERT per row."""
    query = insert_query(layout, written, False)
    generated = layout.generated
    ids = None
    if generated is not None and generated not in written:
        form = query.form(executor.dialect)
        bound = form.args_many([rows[number] for number in numbers], {})
        ids = await dialect.insert_id_ranges(executor, layout.table, form.names, bound)
    if ids is None:
        for number in numbers:
            stored[number] = await _insert_then_read(executor, layout, query, rows[number])
        return
    column = layout.table.c[str(generated)]
    at = layout.index[str(generated)]
    found: dict[Any, Sequence[Any]] = {}
    for start in range(0, len(ids), 500):
        # validated ints from the server, written into the statement (a
        # precompiled query has no IN lists)
        chunk: builtins.list[Any] = [
            literal_column(str(int(each))) for each in ids[start : start + 500]
        ]
        read = Query(select(*layout.table.columns).where(column.in_(chunk)))
        found.update((row[at], row) for row in await executor.rows(read))
    for number, row_id in zip(numbers, ids, strict=True):
        stored[number] = found.get(row_id)


async def _insert_then_read(
    executor: Executor, layout: Layout, query: Query, values: dict[str, Any]
) -> Sequence[Any] | None:
    """One INSERT without RETURNING, then the row read back by its key (the id
    the server generated, where it generates one)."""
    new_id = await executor.insert(query, values)
    key = {
        f"pk_{name}": new_id if name == layout.generated and name not in values else values[name]
        for name in layout.pk
    }
    return await executor.row(layout.get, key)


def _match(
    layout: Layout,
    returned: Sequence[Sequence[Any]],
    numbers: Sequence[int],
    rows: Sequence[dict[str, Any]],
    stored: builtins.list[Sequence[Any] | None],
) -> None:
    """Put one statement's returned rows at their items' places: by primary key
    where the items gave it, else in the order of their generated ids (a
    statement draws them in the order of its VALUES)."""
    pk_at = [layout.index[name] for name in layout.pk]
    if numbers and all(name in rows[numbers[0]] for name in layout.pk):
        by_key = {tuple(row[at] for at in pk_at): row for row in returned}
        for number in numbers:
            stored[number] = by_key.get(tuple(rows[number][name] for name in layout.pk))
        return
    ordered = sorted(returned, key=lambda row: row[pk_at[0]])
    for number, row in zip(numbers, ordered, strict=True):
        stored[number] = row
