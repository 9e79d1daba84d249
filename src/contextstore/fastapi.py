"""FastAPI integration (the optional extra: ``pip install 'contextstore[fastapi]'``).

Four small pieces a service wires into its app::

    app = FastAPI(lifespan=lifespan(settings))   # one Store per app, opened and closed
    add_exception_handlers(app)                  # the error tree as HTTP statuses
    app.include_router(health_router())          # GET /healthz: 200 or 503

    @app.post("/sessions", status_code=201)
    async def create(body: NewSession, tx: TransactionDep) -> Session:   # a unit of work
        return await tx.sessions.create(purpose=body.purpose, created_by=body.agent)

Rules this module keeps:

* importing ``contextstore`` never imports this module or FastAPI; only
  ``import contextstore.fastapi`` does, and without FastAPI installed it fails
  with an ``ImportError`` naming the extra. The data path never imports it
  (an import-linter contract).
* The unit of work of a request (``TransactionDep``) commits *before*
  the response is sent: it is a dependency of scope ``"function"``, whose
  exit runs when the endpoint has returned and its response has been
  serialised, not after the response went out (as it does in FastAPI's
  default scope, ``"request"``, since 0.118). A client therefore never sees a 2xx for a
  write that did not commit, and a failed COMMIT becomes the response.
* An error body says what the typed error says, in the caller's terms:
  ``{"error": "<class name>", "detail": "<message>"}``. Nothing of its
  ``__cause__`` (driver text, SQL, parameters) or traceback reaches the
  client; a 500 is logged on the ``contextstore.fastapi`` logger for the
  operator.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Final

try:
    from fastapi import APIRouter, Depends, FastAPI, Request
    from fastapi.responses import JSONResponse
except ImportError as error:  # the extra is not installed
    raise ImportError(
        "contextstore.fastapi needs FastAPI: pip install 'contextstore[fastapi]'"
    ) from error

from ._facts import wait_bound
from .errors import (
    ConfigurationError,
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
    ValidationError,
)
from .models import HealthReport
from .settings import Settings
from .store import Store, Transaction

if "scope" not in inspect.signature(Depends).parameters:
    # without Depends(scope="function") (FastAPI 0.121) a unit of work would
    # commit after the response was sent (0.118 to 0.120): refuse, do not degrade
    raise ImportError(
        "contextstore.fastapi needs FastAPI 0.121 or later: pip install -U 'contextstore[fastapi]'"
    )

__all__ = [
    "STATE_ATTRIBUTE",
    "StoreDep",
    "TransactionDep",
    "add_exception_handlers",
    "get_store",
    "get_transaction",
    "health_router",
    "lifespan",
    "store_lifespan",
]

STATE_ATTRIBUTE: Final = "contextstore"
"""The attribute of ``app.state`` that holds the app's Store."""

_logger = logging.getLogger("contextstore.fastapi")

#: the status of each kind of error, most specific first (the first match wins)
_STATUSES: Final[tuple[tuple[type[ContextStoreError], int], ...]] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    # the database is the app's upstream and did not answer in time: 504 Gateway
    # Timeout, not 503, which says the service itself cannot take requests now
    (QueryTimeoutError, 504),
    (DatabaseUnavailableError, 503),  # PoolExhaustedError included
    (ConfigurationError, 500),
)


# -- lifespan -------------------------------------------------------------------


@asynccontextmanager
async def store_lifespan(app: FastAPI, settings: Settings | None = None) -> AsyncIterator[Store]:
    """``async with store_lifespan(app, settings) as store``: the Store inside your own lifespan.

    The Store is connected (and, with ``auto_migrate``, migrated) on entry,
    put on ``app.state`` (see ``STATE_ATTRIBUTE``) for ``get_store``, and
    closed on exit. It stays on ``app.state`` once closed, so a request
    that arrives after shutdown gets a clear "Store is closed" error and the
    health route a 503.

    ```python
    @asynccontextmanager
    async def my_lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store_lifespan(app, settings) as store:
            await warm_caches(store)
            yield
    ```

    Args:
        app: the application whose ``state`` receives the Store.
        settings: where and how to connect; ``None`` reads the environment.

    Yields:
        The connected Store.

    Raises:
        DatabaseUnavailableError: the database cannot be reached at startup.
        ConfigurationError: the settings cannot work.
        ContextStoreError: the schema cannot be migrated.
    """
    store = Store(settings)
    await store.connect()
    try:
        setattr(app.state, STATE_ATTRIBUTE, store)
        yield store
    finally:
        await store.close()


def lifespan(
    settings: Settings | None = None,
    *,
    inner: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The lifespan of an app that uses contextstore: ``FastAPI(lifespan=lifespan(settings))``.

    Each startup opens a new Store (see ``store_lifespan``); shutdown
    closes it. A service with a lifespan of its own passes it as ``inner``:
    it runs inside, after the Store is open and before it is closed, so it
    may use the Store (through ``app.state`` or ``get_store``). A lifespan
    that yields state is composed the other way round, with
    ``store_lifespan`` inside it.

    Args:
        settings: where and how to connect; ``None`` reads the environment
            (at startup, not now).
        inner: the service's own lifespan, run inside the Store's.

    Returns:
        A lifespan function for ``FastAPI(lifespan=...)``.
    """

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with store_lifespan(app, settings):
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield

    return run


# -- dependencies ---------------------------------------------------------------


async def get_store(request: Request) -> Store:
    """The app's Store (dependency); prefer the alias ``StoreDep``.

    Args:
        request: the current request (supplied by FastAPI).

    Returns:
        The Store that ``lifespan`` or ``store_lifespan`` put on
        ``app.state``.

    Raises:
        ConfigurationError: the app has no Store (its lifespan is not
            contextstore's).
    """
    store = getattr(request.app.state, STATE_ATTRIBUTE, None)
    if not isinstance(store, Store):
        raise ConfigurationError(
            "the app has no contextstore Store: create it with "
            "FastAPI(lifespan=contextstore.fastapi.lifespan(...)) or use store_lifespan"
        )
    return store


StoreDep = Annotated[Store, Depends(get_store)]
"""The app's Store: ``async def endpoint(store: StoreDep)``."""


async def get_transaction(store: StoreDep) -> AsyncIterator[Transaction]:
    """One unit of work per request (dependency); use it through ``TransactionDep``.

    The transaction commits when the endpoint returns normally and rolls
    back when it raises (``HTTPException`` included); a COMMIT that fails is
    raised in place of the endpoint's response. Used directly, it must be
    declared ``Depends(get_transaction, scope="function")``: with FastAPI's
    default scope the COMMIT would run after the response was sent.

    Args:
        store: the app's Store (supplied by FastAPI).

    Yields:
        The request's ``Transaction``, the same one for every dependency of
        the request that asks for it.

    Raises:
        ContextStoreError: a call inside failed in the database and the
            endpoint went on (rolled back, not committed).
        DatabaseUnavailableError: the database could not be reached, or the
            connection was lost (``may_have_committed`` during COMMIT).
    """
    async with store.transaction() as tx:
        yield tx


TransactionDep = Annotated[Transaction, Depends(get_transaction, scope="function")]
"""The request's unit of work, committed before the response is sent:
``async def endpoint(tx: TransactionDep)``."""


# -- errors ---------------------------------------------------------------------


def _status(error: ContextStoreError) -> int:
    return next((status for kind, status in _STATUSES if isinstance(error, kind)), 500)


def _error_handler(retry_after: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def respond(request: Request, exc: Exception) -> JSONResponse:
        """The response for a ContextStoreError: its class name and message, nothing else."""
        if not isinstance(exc, ContextStoreError):  # registered for ContextStoreError only
            raise exc
        status = _status(exc)
        body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
        headers: dict[str, str] = {}
        if isinstance(exc, DatabaseUnavailableError):
            body["may_have_committed"] = exc.may_have_committed
            # an invitation to retry is wrong when the write may have committed
            if not exc.may_have_committed:
                headers["Retry-After"] = str(retry_after)
        if status == 500:
            _logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse(body, status_code=status, headers=headers)

    return respond


def add_exception_handlers(app: FastAPI, *, retry_after: int = 5) -> None:
    """Answer every contextstore error with its HTTP status and a JSON body.

    | error | status |
    |---|---|
    | `ValidationError` | 422 |
    | `NotFoundError` | 404 |
    | `ConflictError` | 409 |
    | `QueryTimeoutError` | 504 |
    | `DatabaseUnavailableError`, `PoolExhaustedError` | 503 |
    | `ConfigurationError`, any other `ContextStoreError` | 500 |

    The body is ``{"error": "<class name>", "detail": "<message>"}``, plus
    ``"may_have_committed"`` on a 503, which carries ``Retry-After`` unless
    the write may have committed (a retry could then apply it twice). The
    message is already in the caller's terms and never carries a password,
    SQL or the driver's text. A 500 is logged with its traceback on the
    ``contextstore.fastapi`` logger. A handler the service registers for a
    more specific class wins.

    Args:
        app: the application.
        retry_after: seconds sent in ``Retry-After`` with a 503 for which
            nothing can have been written.

    Raises:
        ConfigurationError: ``retry_after`` is not a whole number of seconds, 0 or more.
    """
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
        raise ConfigurationError(
            f"retry_after must be a whole number of seconds, 0 or more, got {retry_after!r}"
        )
    app.add_exception_handler(ContextStoreError, _error_handler(retry_after))


# -- health ---------------------------------------------------------------------


def health_router(
    *, path: str = "/healthz", timeout: float = 5.0, include_in_schema: bool = True
) -> APIRouter:
    """A router with one route: ``GET path`` answers the Store's HealthReport.

    200 when the report is ok, 503 otherwise (the database does not answer
    within ``timeout``, fails, or the Store is closed). The body is the
    report as JSON; it names no URL but replicas' masked ones, and never a
    password.

    Args:
        path: where the route answers.
        timeout: seconds the probe waits for the database.
        include_in_schema: list the route in the OpenAPI schema.

    Returns:
        The router, for ``app.include_router(...)``.

    Raises:
        ConfigurationError: ``timeout`` is not a positive finite number.
    """
    bound = wait_bound(timeout)
    if isinstance(bound, str):  # refused now, not reported by every probe
        raise ConfigurationError(f"health_router: {bound}")
    router = APIRouter()

    @router.get(
        path,
        response_model=HealthReport,
        responses={503: {"model": HealthReport, "description": "the database is not healthy"}},
        include_in_schema=include_in_schema,
        summary="Health of the database",
    )
    async def health(store: StoreDep) -> JSONResponse:
        report = await store.health(timeout=bound)
        return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.ok else 503)

    return router
