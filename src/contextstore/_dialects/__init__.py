"""Registry of dialect recipes: the only place dialect names appear.

``dialect_for(url)`` returns the recipe for a URL's backend; everything else
in contextstore asks that recipe instead of branching on names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _registry
from ._base import SNAPSHOT, WRITE_INTENT, Dialect, ErrorKind, Wire
from .mysql import MySQLDialect
from .postgresql import PostgreSQLDialect
from .sqlite import SQLiteDialect

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

__all__ = [
    "SNAPSHOT",
    "WRITE_INTENT",
    "Dialect",
    "ErrorKind",
    "Wire",
    "dialect_for",
    "known_schemes",
]

for _recipe in (SQLiteDialect(), PostgreSQLDialect(), MySQLDialect()):
    _registry.register(_recipe)


def known_schemes() -> list[str]:
    """The URL schemes contextstore accepts, for error messages."""
    return _registry.schemes()


def dialect_for(url: URL) -> Dialect:
    """Return the recipe for ``url``'s backend.

    Raises:
        ConfigurationError: the backend is not one contextstore supports.
    """
    from ..errors import ConfigurationError

    recipe = _registry.lookup(url.get_backend_name())
    if recipe is None:
        raise ConfigurationError(
            f"database_url: unsupported scheme {url.get_backend_name()!r}; "
            f"use one of {', '.join(known_schemes())}"
        )
    return recipe
