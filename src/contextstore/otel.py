"""OpenTelemetry tracing: a span per SQL statement of a Store, on every dialect.

Install the extra (`pip install 'contextstore[otel]'`), then:

```python
from contextstore.otel import instrument

async with Store(settings) as store:
    instrument(store, tracer_provider=provider)
```

The spans are those of OpenTelemetry's SQLAlchemy instrumentation
(`opentelemetry-instrumentation-sqlalchemy`): its `EngineTracer` is attached
to this Store's engine alone, with no process-wide patching. Its
`SQLAlchemyInstrumentor` is not used: it wraps `create_engine` and
`Engine.connect` for the whole process, instruments one engine per process,
and refuses SQLAlchemy 2.1 by its declared version range.

How every statement is seen: the instrumentation listens to SQLAlchemy's
cursor events. While such a listener is on the engine, the execution core
sends the repositories' statements through SQLAlchemy Connections instead of
the driver connections it otherwise holds (`contextstore._execute.observed`),
units of work included, and the bulk inserts send parameterised multi-row
INSERTs instead of PostgreSQL's COPY or MySQL's INSERTs with the values
written into the text. Calls are slower while instrumented; `uninstrument`
gives the driver path back.

Spans carry the statement text with its placeholders (`db.statement`, or
`db.query.text` under `OTEL_SEMCONV_STABILITY_OPT_IN=database`), never a
parameter value, and no password. Transaction control a driver does without a
cursor (asyncpg's BEGIN; COMMIT and ROLLBACK on every dialect) has no span, as
everywhere with that instrumentation.

Importing `contextstore` never imports OpenTelemetry; this module does, and
fails with an `ImportError` naming the extra when it is missing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import metrics, trace
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "contextstore.otel needs OpenTelemetry's SQLAlchemy instrumentation: "
        "pip install 'contextstore[otel]'"
    ) from exc
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from .connection import ConnectionManager
from .store import Store

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["instrument", "instrumented", "uninstrument"]

#: the instrumentation scope of the spans: the SQLAlchemy instrumentation's own
_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
#: the connection-usage counter that instrumentation keeps (semconv's name)
_USAGE = "db.client.connections.usage"

Listener = tuple[str, Callable[..., Any]]
#: the listeners attached to each instrumented engine, to take off again
_ATTACHED: weakref.WeakKeyDictionary[Engine, list[Listener]] = weakref.WeakKeyDictionary()


def instrument(
    target: Store | ConnectionManager | AsyncEngine,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> None:
    """Emit a span for every SQL statement ``target`` runs.

    Repository calls, units of work (``store.transaction()``), bulk inserts
    (``messages.add_many``) and ``store.db``'s statement methods all get a
    span per statement, on every dialect. A Store or a ConnectionManager is
    instrumented on every engine it runs statements on: the primary's and
    each replica's (``replica_urls``). Calling it again for an instrumented
    engine changes nothing (`uninstrument` first to change the providers).

    Args:
        target: a connected core Store, its ``store.db``, or an engine.
        tracer_provider: where the spans go; None: the global provider.
        meter_provider: where the connection-usage counter goes; None: the
            global provider.

    Raises:
        ConfigurationError: ``target`` is a Store on the legacy backend.
        ContextStoreError: ``target`` is not connected or closed.
        TypeError: ``target`` is none of the above.
    """
    for engine in _engines(target):
        if engine not in _ATTACHED:
            _attach(engine, tracer_provider, meter_provider)


def _attach(
    engine: Engine, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None
) -> None:
    """Attach the instrumentation's tracer to one engine, remembering its listeners."""
    tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider)
    meter = metrics.get_meter(_SCOPE, __version__, meter_provider)
    usage = meter.create_up_down_counter(
        name=_USAGE,
        unit="connections",
        description="The number of connections that are currently in state described "
        "by the state attribute.",
    )
    before = _listeners(engine)
    # the instrumentation ships no type hints
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
    # what the tracer attached: the listeners that were not there before
    _ATTACHED[engine] = [
        (name, fn)
        for name, fns in _listeners(engine).items()
        for fn in fns
        if fn not in before[name]
    ]


def uninstrument(target: Store | ConnectionManager | AsyncEngine) -> None:
    """Stop the spans `instrument` started for ``target``; its repository
    statements go back to the execution core's driver path. Does nothing for
    an engine that is not instrumented.

    Args:
        target: what was given to `instrument` (or its engine).

    Raises:
        ConfigurationError: ``target`` is a Store on the legacy backend.
        ContextStoreError: ``target`` is not connected or closed.
        TypeError: ``target`` is none of the above.
    """
    for engine in _engines(target):
        attached = _ATTACHED.pop(engine, None)
        for name, fn in attached or ():
            if event.contains(engine, name, fn):
                event.remove(engine, name, fn)


def instrumented(target: Store | ConnectionManager | AsyncEngine) -> bool:
    """Whether `instrument` is in effect for ``target``'s engine.

    Raises:
        ConfigurationError: ``target`` is a Store on the legacy backend.
        ContextStoreError: ``target`` is not connected or closed.
        TypeError: ``target`` is none of the above.
    """
    return all(engine in _ATTACHED for engine in _engines(target))


def _engines(target: Store | ConnectionManager | AsyncEngine) -> list[Engine]:
    """The synchronous engines whose events ``target``'s statements fire: a
    Store's or a manager's primary and replicas, or the one engine given."""
    if isinstance(target, Store):
        target = target.db
    if isinstance(target, ConnectionManager):
        return [engine.sync_engine for engine in target.engines]
    if isinstance(target, AsyncEngine):
        return [target.sync_engine]
    raise TypeError(
        f"expected a Store, a ConnectionManager or an AsyncEngine, not {type(target).__name__}"
    )


def _listeners(engine: Engine) -> dict[str, list[Callable[..., Any]]]:
    """The listeners of the events an ``EngineTracer`` listens to, by event name:
    cursor events on the engine, errors on its dialect, checkouts on its pool."""
    where = (
        (engine.dispatch, ("before_cursor_execute", "after_cursor_execute")),
        (engine.dialect.dispatch, ("handle_error",)),
        (engine.pool.dispatch, ("connect", "close", "checkin", "checkout")),
    )
    return {name: list(getattr(dispatch, name)) for dispatch, names in where for name in names}
