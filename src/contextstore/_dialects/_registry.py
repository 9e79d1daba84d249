"""The recipes by SQLAlchemy backend name.

Kept apart from the package's ``__init__`` so that the portable column types
(``types.py``), which the recipes themselves use, can find a recipe without
importing the recipe modules: ``__init__`` registers the recipes here, the
types look them up at bind and DDL time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._base import Dialect

__all__ = ["lookup", "register", "schemes"]

_BY_SCHEME: dict[str, Dialect] = {}


def register(recipe: Dialect) -> None:
    """Serve ``recipe`` for each of its schemes."""
    for scheme in recipe.schemes:
        _BY_SCHEME[scheme] = recipe


def lookup(backend_name: str) -> Dialect | None:
    """The recipe for a SQLAlchemy backend name (``url.get_backend_name()``,
    ``dialect.name``), or None."""
    return _BY_SCHEME.get(backend_name)


def schemes() -> list[str]:
    """Every registered scheme, sorted."""
    return sorted(_BY_SCHEME)
