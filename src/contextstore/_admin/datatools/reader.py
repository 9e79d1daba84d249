"""Reading a table in primary-key order by keyset batches, and digesting what is read.

Each batch is one short statement (``WHERE pk > last ORDER BY pk LIMIT n``):
no cursor or connection is held between batches and nothing loads a whole
table. Batches hold at most ``batch_size`` rows and roughly
:data:`MAX_BATCH_CHARS` characters of row data, whichever is less.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, or_, select

from contextstore.errors import ValidationError

from .tables import SPECS, TableDigest, _Digester, _Spec

if TYPE_CHECKING:
    from sqlalchemy import Column, Select
    from sqlalchemy.ext.asyncio import AsyncConnection

    from contextstore.connection import ConnectionManager

#: rows per batch read from a source and per INSERT round trip.
DEFAULT_BATCH_SIZE = 1000
#: rough cap on the characters of row data held in one batch (memory bound
#: for tables of big messages: 100,000-character bodies make 40-row batches).
MAX_BATCH_CHARS = 4 * 1024 * 1024
#: rows in a table's first batch, before the row sizes are known.
_FIRST_BATCH_ROWS = 100


class ProgressSink(Protocol):
    """Receives progress: ``begin`` once per step, then ``advance`` per batch."""

    def begin(self, label: str, total: int | None) -> None: ...

    def advance(self, label: str, rows: int) -> None: ...


class _NoProgress:
    def begin(self, label: str, total: int | None) -> None:
        pass

    def advance(self, label: str, rows: int) -> None:
        pass


def _check_batch_size(batch_size: int) -> None:
    if not 1 <= batch_size <= 100_000:
        raise ValidationError(f"batch_size must be 1-100,000, got {batch_size}")


# -- reading in primary-key batches --------------------------------------

#: runs a SELECT and returns its rows as tuples (``Result.all()``).
Fetch = Callable[["Select[Any]"], Awaitable[Sequence[Sequence[Any]]]]


class _KeysetReader:
    """Reads a table in primary-key order, one short statement per batch.

    The next batch is requested while the caller works on the current one;
    batch sizes shrink when rows are big (:meth:`observe`).
    """

    def __init__(self, fetch: Fetch, spec: _Spec, batch_size: int) -> None:
        self._fetch = fetch
        self._spec = spec
        self._batch_size = batch_size
        self._limit = min(batch_size, _FIRST_BATCH_ROWS)
        self._widest = 1
        self._names = [col.name for col in spec.columns]
        self._key_positions = [self._names.index(name) for name in spec.key]

    def observe(self, line: str) -> None:
        """Note a row's size; later batches stay under MAX_BATCH_CHARS."""
        if len(line) > self._widest:
            self._widest = len(line)
            self._limit = max(1, min(self._batch_size, MAX_BATCH_CHARS // self._widest))

    def _statement(self, after: tuple[Any, ...] | None, limit: int) -> Select[Any]:
        table = self._spec.table
        keys = [table.c[name] for name in self._spec.key]
        stmt = select(*self._spec.select_columns()).order_by(*keys).limit(limit)
        if after is not None:
            stmt = stmt.where(_after(keys, after))
        return stmt

    async def batches(self) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Every row as a dict of column values, one list per batch."""
        names = self._names
        limit = self._limit
        pending: asyncio.Future[Sequence[Sequence[Any]]] | None = asyncio.ensure_future(
            self._fetch(self._statement(None, limit))
        )
        try:
            while pending is not None:
                rows = await pending
                pending = None
                if len(rows) == limit:
                    last = tuple(rows[-1][i] for i in self._key_positions)
                    limit = self._limit
                    pending = asyncio.ensure_future(self._fetch(self._statement(last, limit)))
                if rows:
                    yield [dict(zip(names, row, strict=True)) for row in rows]
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending


def _after(keys: Sequence[Column[Any]], last: tuple[Any, ...]) -> Any:
    """Rows whose key sorts after ``last`` (expanded: row values are not portable)."""
    first, *rest = keys
    if not rest:
        return first > last[0]
    return or_(first > last[0], and_(first == last[0], _after(rest, last[1:])))


def _fetch_on(conn: AsyncConnection) -> Fetch:
    """Reads on ``conn`` (inside the target's transaction)."""

    async def fetch(stmt: Select[Any]) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = (await conn.execute(stmt)).all()
        return rows

    return fetch


def _fetch_from(db: ConnectionManager) -> Fetch:
    """Reads through ``db``'s pool, one read-only unit per batch (retried if safe)."""

    async def fetch(stmt: Select[Any]) -> Sequence[Sequence[Any]]:
        async def work(conn: AsyncConnection) -> Sequence[Sequence[Any]]:
            rows: Sequence[Sequence[Any]] = (await conn.execute(stmt)).all()
            return rows

        return await db.run(work, write=False)

    return fetch


async def _digest_table(
    fetch: Fetch, spec: _Spec, batch_size: int, progress: ProgressSink, label: str
) -> TableDigest:
    digester = _Digester()
    reader = _KeysetReader(fetch, spec, batch_size)
    async with contextlib.aclosing(reader.batches()) as batches:
        async for rows in batches:
            for row in rows:
                line = spec.line(row)
                reader.observe(line)
                digester.add(line)
            progress.advance(label, len(rows))
    return digester.result()


async def _digests(
    fetch: Fetch,
    counts: Mapping[str, int] | None,
    batch_size: int,
    progress: ProgressSink,
    prefix: str,
) -> dict[str, TableDigest]:
    found: dict[str, TableDigest] = {}
    for spec in SPECS:
        label = f"{prefix} {spec.name}"
        progress.begin(label, None if counts is None else counts[spec.name])
        found[spec.name] = await _digest_table(fetch, spec, batch_size, progress, label)
    return found
