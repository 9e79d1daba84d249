"""Slow-statement log (``Settings.slow_statement_ms``): a warning on the
``contextstore.slow`` logger for every statement that runs longer than the
threshold, with its text and duration and never its parameters.

Statements reach a database by two roads, and each is timed where it is sent:

* the execution core's held driver connections: their :class:`Wire` is wrapped
  in a :class:`SlowWire` when the connection is leased, so with the setting
  off the hot path has no check at all (the plain wire is used);
* SQLAlchemy Connections (``store.db``'s statement methods, a unit's own
  ``tx.execute``, migrations, health probes, and every repository statement
  while the engine is observed): cursor-execution listeners installed by
  :func:`watch` on the engine. They are the engine's own, not observers:
  :func:`others_watch` tells the execution core that only these listen, so it
  keeps the driver path (see ``contextstore._execute.observed``).

Invariants: the logged text is the SQL as sent, with its placeholders; a
statement whose values are written into its text (MySQL's bulk INSERT, see
:meth:`SlowWire.insert`) is logged without them; parameters are never read.
A statement that fails is timed and logged too (a statement cut off by
``statement_timeout`` is the slowest kind). Long texts are cut to
:data:`MAX_TEXT` characters.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from ._dialects import Wire

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, ExceptionContext

__all__ = ["LOGGER_NAME", "MAX_TEXT", "SlowWire", "others_watch", "report", "watch"]

#: the logger the warnings go to
LOGGER_NAME = "contextstore.slow"
#: characters of a statement's text kept in the log (a bulk INSERT's
#: placeholders alone may run to megabytes)
MAX_TEXT = 2000

_LOGGER = logging.getLogger(LOGGER_NAME)
#: where a Connection keeps the start of its statement in flight (``Connection.info``)
_STARTED = "contextstore.slow.started"
#: the engines :func:`watch` installed its listeners on, by ``id`` (a dict
#: lookup, cheaper than a WeakSet's on every call's path); an engine's entry
#: goes with the engine
_WATCHED: dict[int, None] = {}


def report(sql: str, seconds: float, threshold: float) -> None:
    """Log ``sql`` if it ran ``seconds``, longer than ``threshold`` seconds."""
    if seconds <= threshold:
        return
    text = sql if len(sql) <= MAX_TEXT else f"{sql[:MAX_TEXT]}... ({len(sql)} characters)"
    millis = seconds * 1000
    _LOGGER.warning(
        "slow statement (%.1f ms, over %g ms): %s",
        millis,
        threshold * 1000,
        text,
        extra={"duration_ms": millis, "statement": text},
    )


def _without_values(sql: str) -> str:
    """An INSERT whose values are written into its text, up to its VALUES."""
    head, found, _ = sql.partition(" VALUES ")
    return f"{head} VALUES (values not shown)" if found else "(statement with inline values)"


class SlowWire(Wire):
    """A :class:`Wire` whose statements are timed and reported by :func:`report`.

    Args:
        wire: the driver's wire, which sends everything.
        threshold_ms: ``Settings.slow_statement_ms``.
    """

    def __init__(self, wire: Wire, threshold_ms: float) -> None:
        super().__init__(wire.driver_connection)
        self._wire = wire
        self._threshold = threshold_ms / 1000

    async def fetch(self, sql: str, args: Sequence[Any] | None) -> Sequence[Sequence[Any]]:
        started = perf_counter()
        try:
            return await self._wire.fetch(sql, args)
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report(sql, elapsed, self._threshold)

    async def execute(self, sql: str, args: Sequence[Any] | None) -> int:
        started = perf_counter()
        try:
            return await self._wire.execute(sql, args)
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report(sql, elapsed, self._threshold)

    async def execute_many(self, sql: str, args: Sequence[Sequence[Any]]) -> int:
        started = perf_counter()
        try:
            return await self._wire.execute_many(sql, args)
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report(sql, elapsed, self._threshold)

    async def insert(self, sql: str, args: Sequence[Any] | None) -> int:
        started = perf_counter()
        try:
            return await self._wire.insert(sql, args)
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                # args None: the values are in the text, and stay out of the log
                shown = _without_values(sql) if args is None else sql
                report(shown, elapsed, self._threshold)

    async def copy(
        self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        started = perf_counter()
        try:
            await self._wire.copy(table, records, columns)
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                shown = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                report(shown, elapsed, self._threshold)

    async def begin(self) -> None:
        started = perf_counter()
        try:
            await self._wire.begin()
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report("BEGIN", elapsed, self._threshold)

    async def commit(self) -> None:
        started = perf_counter()
        try:
            await self._wire.commit()
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report("COMMIT", elapsed, self._threshold)

    async def rollback(self) -> None:
        started = perf_counter()
        try:
            await self._wire.rollback()
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report("ROLLBACK", elapsed, self._threshold)

    async def settle(self) -> None:
        started = perf_counter()
        try:
            await self._wire.settle()
        finally:
            elapsed = perf_counter() - started
            if elapsed > self._threshold:
                report("BEGIN", elapsed, self._threshold)

    async def ping(self) -> None:
        await self._wire.ping()

    def abort(self) -> None:
        self._wire.abort()


def watch(sync_engine: Engine, threshold_ms: float) -> None:
    """Time every cursor execution on ``sync_engine``'s Connections (once per engine)."""
    if id(sync_engine) in _WATCHED:
        return
    threshold = threshold_ms / 1000

    def before(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        conn.info[_STARTED] = perf_counter()

    def after(
        conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            report(statement, perf_counter() - started, threshold)

    def failed(context: ExceptionContext) -> None:
        conn, statement = context.connection, context.statement
        if conn is None or statement is None or conn.closed or conn.invalidated:
            return
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            report(statement, perf_counter() - started, threshold)

    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", failed)
    _WATCHED[id(sync_engine)] = None
    weakref.finalize(sync_engine, _WATCHED.pop, id(sync_engine), None)


def others_watch(sync_engine: Engine) -> bool:
    """A cursor-execution listener other than :func:`watch`'s is on ``sync_engine``."""
    dispatch = sync_engine.dispatch
    ours = 1 if id(sync_engine) in _WATCHED else 0
    return len(dispatch.before_cursor_execute) > ours or len(dispatch.after_cursor_execute) > ours
