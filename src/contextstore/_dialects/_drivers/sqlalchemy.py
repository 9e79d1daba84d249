"""SQLAlchemy (2.0) private names the execution path still uses.

* ``ClauseElement._generate_cache_key``: replaced on statements built once
  (:func:`prepared`, :func:`fixed_key`), so SQLAlchemy neither walks them
  again per execution nor compiles the dialect ``insert()`` constructs, which
  have no cache key, every time (``tests/dialects/test_statements.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.sql.base import Executable

__all__ = ["fixed_key", "prepared"]


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
