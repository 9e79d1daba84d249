"""The implementations under test: one raw driver subject per dialect, and the Store.

* ``raw``: the bare driver with hand-written SQL (``raw_sqlite``, ``raw_postgresql``,
  ``raw_mysql``), sharing their statements through ``raw``;
* ``core`` and ``legacy``: the public Store API on its two backends (``store``);
* ``orm``: the same operations through the SQLAlchemy ORM, as a typical ORM
  async service writes them (``orm``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import PagePosition, Subject
from .orm import OrmSubject
from .raw import RawSubject
from .raw_mysql import RawMySQL
from .raw_postgresql import RawPostgreSQL
from .raw_sqlite import RawSQLite
from .store import StoreSubject

if TYPE_CHECKING:
    from ..scratch import Scratch

__all__ = [
    "OrmSubject",
    "PagePosition",
    "RawMySQL",
    "RawPostgreSQL",
    "RawSQLite",
    "RawSubject",
    "StoreSubject",
    "Subject",
    "orm_subject",
    "raw_subject",
]


def raw_subject(dialect: str, scratch: Scratch) -> RawSubject:
    """The raw driver subject of ``dialect``, on the scratch database."""
    if scratch.url is None:
        raise RuntimeError("scratch database not created")
    if dialect == "sqlite":
        return RawSQLite(str(scratch.url.database))
    if dialect == "postgresql":
        return RawPostgreSQL(scratch.url)
    return RawMySQL(scratch.url)


def orm_subject(scratch: Scratch) -> OrmSubject:
    """The SQLAlchemy ORM subject, on the scratch database (the URL core and raw use)."""
    if scratch.url is None:
        raise RuntimeError("scratch database not created")
    return OrmSubject(scratch.url)
