"""The one SQLAlchemy behaviour contextstore patches.

``Dialect.do_rollback`` is replaced on one engine's dialect instance
(:func:`skip_idle_rollback`): a public method, but patched, so it lives here
(``tests/dialects/test_round_trips.py`` counts the ROLLBACKs). It serves work
on SQLAlchemy Connections (units of work, a service's own statements, watched
engines) and the pool's reset when a connection goes back to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["skip_idle_rollback"]


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
