"""Portable column types for a service's own tables: the ones contextstore's schema uses.

``from contextstore.types import UTCDateTime, JSONDocument, ExactString``.
Each gives the same Python values on SQLite, PostgreSQL and MySQL/MariaDB:

* :class:`UTCDateTime`: a point in time. Aware datetimes in (any zone,
  converted to UTC), aware UTC out, microseconds kept; a naive datetime is
  refused with ``ValidationError``.
* :data:`JSONDocument`: any JSON value, read back with the same Python types
  it was written with (a float stays a float, integers of any size stay
  exact). It is stored as the text it was written as: ``TEXT`` on SQLite,
  ``JSON`` on MySQL/MariaDB and ``json`` on PostgreSQL. Not ``jsonb``: since
  schema revision 0003 contextstore uses ``json`` on PostgreSQL because
  ``jsonb`` keeps numbers as ``numeric`` (``1e16`` would read back as an
  int, ``-0.0`` as ``0.0``). Python ``None`` is stored as the JSON literal
  ``null``.
* :class:`ExactString`: a ``VARCHAR(length)`` whose equality is exact on every
  dialect: case- and trailing-space-sensitive, in UNIQUE keys too, ordered
  by code point.

They are the very types of :mod:`contextstore.schema` (defined in
``contextstore._dialects.types``, re-exported here as the public names).
"""

from __future__ import annotations

from ._dialects.types import ExactString as ExactString
from ._dialects.types import JSONDocument as JSONDocument
from ._dialects.types import UTCDateTime as UTCDateTime

__all__ = ["ExactString", "JSONDocument", "UTCDateTime"]
