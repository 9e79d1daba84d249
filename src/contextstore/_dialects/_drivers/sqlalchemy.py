"""SQLAlchemy (2.0) private names the execution path still uses.

* ``Dialect.do_rollback`` replaced on one engine's dialect instance
  (:func:`skip_idle_rollback`): a public method, but patched, so it lives
  here (``tests/dialects/test_round_trips.py`` counts the ROLLBACKs);
* ``ClauseElement._generate_cache_key``: replaced on statements built once
  (:func:`prepared`, :func:`fixed_key`), so SQLAlchemy neither walks them
  again per execution nor compiles the dialect ``insert()`` constructs, which
  have no cache key, every time (``tests/dialects/test_statements.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.sql.base import Executable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["fixed_key", "prepared", "skip_idle_rollback"]


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
    # SQLAlchemy 2.1 added a third field (literal execution parameters)
    extra: tuple[Any, ...] = (None,) if len(CacheKey._fields) > 2 else ()
    key = CacheKey(("contextstore", *name), binds, *extra)
    element._generate_cache_key = lambda: key
    return stmt


def skip_idle_rollback(sync_engine: Engine, in_transaction: Callable[[Any], bool]) -> None:
    """Make this engine's ROLLBACK a no-op when the driver has no transaction open.

    SQLAlchemy rolls back every connection when a read ends and again when it
    goes back to the pool; after a read in autocommit that is an empty round
    trip (aiomysql) or a thread hop (aiosqlite). ``in_transaction`` gets the
    driver's connection and must not do I/O. Only this engine's dialect
    instance is changed; when the driver cannot tell, the rollback runs.
    """
    dialect = sync_engine.dialect
    rollback = dialect.do_rollback

    def do_rollback(dbapi_connection: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        try:
            idle = driver is not None and not in_transaction(driver)
        except Exception:  # a closed connection: let the real rollback report it
            idle = False
        if not idle:
            rollback(dbapi_connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign]
