"""Portable column types: the same Python values on SQLite, PostgreSQL and MySQL/MariaDB.

Where a type needs more than a declarative ``with_variant`` (a MariaDB/MySQL
difference, or binding that depends on the storage), it asks the dialect
recipe rather than branching on names here. The recipes are found through
``_registry``, never through the package, because the recipe modules import
these types themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.dialects.mysql import MEDIUMTEXT
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import JSON as SQLiteJSON
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator

from ..errors import ValidationError
from . import _registry

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine.interfaces import Dialect as SADialect
    from sqlalchemy.types import TypeEngine

    from ._base import Dialect

__all__ = [
    "ExactString",
    "JSONDocument",
    "LongText",
    "UTCDateTime",
    "recipe_for",
    "result_processor",
]


def recipe_for(dialect: SADialect) -> Dialect | None:
    """The contextstore recipe behind a SQLAlchemy dialect (``conn.dialect``), if any.

    None for SQLAlchemy's ``default`` dialect (``str(statement)`` without a database).
    """
    return _registry.lookup(dialect.name)


class _BindValidationError(ValidationError, DontWrapMixin):
    """Raised while binding; ``DontWrapMixin`` keeps SQLAlchemy from wrapping it in
    ``StatementError``, so callers see a plain ``ValidationError``."""


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time: aware in, aware UTC out, microseconds kept, on every dialect.

    Storage: PostgreSQL ``timestamptz``; MySQL/MariaDB ``DATETIME(6)`` holding
    UTC wall time (sessions run with ``time_zone = '+00:00'``); SQLite TEXT in
    SQLAlchemy's DATETIME layout of naive UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``
    (always six fraction digits, so text order is time order). Anything else
    writing to SQLite (the legacy module, raw SQL) must use exactly that layout.

    Raises:
        ValidationError: on binding a naive datetime or a non-datetime.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: SADialect) -> TypeEngine[Any]:
        recipe = recipe_for(dialect)
        if recipe is None:
            return self.impl_instance
        return dialect.type_descriptor(recipe.datetime_type())

    def process_bind_param(self, value: datetime | None, dialect: SADialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise _BindValidationError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise _BindValidationError(
                f"naive datetime {value.isoformat()} rejected: give a timezone-aware datetime"
            )
        utc = value.astimezone(UTC)
        recipe = recipe_for(dialect)
        keep = recipe is not None and recipe.datetime_keeps_timezone
        return utc if keep else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: SADialect) -> datetime | None:
        if value is None:
            return None
        zone = value.tzinfo
        if zone is UTC:
            return value  # type: ignore[no-any-return]  # asyncpg's timestamptz
        if zone is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    @property
    def python_type(self) -> type[datetime]:
        return datetime


def result_processor(type_: TypeEngine[Any], dialect: SADialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's result processor of ``type_`` on ``dialect``, or None where the
    driver's value already is the result: a :class:`UTCDateTime` read through
    a driver that returns aware UTC datetimes (asyncpg's ``timestamptz``)."""
    if isinstance(type_, UTCDateTime):
        recipe = recipe_for(dialect)
        if recipe is not None and recipe.datetime_results_utc:
            return None
    return type_.dialect_impl(dialect).result_processor(dialect, None)


class ExactString(TypeDecorator[str]):
    """A VARCHAR for ids, keys and names: equality is exact on every dialect.

    ``'Key' != 'key'`` and ``'k' != 'k '`` everywhere, including inside UNIQUE
    keys; ordering is by code point. The per-dialect type (a binary NO PAD
    collation on MySQL/MariaDB, ``COLLATE "C"`` on PostgreSQL, SQLite's
    default BINARY) comes from the dialect recipe.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: SADialect) -> TypeEngine[Any]:
        recipe = recipe_for(dialect)
        if recipe is None:
            return self.impl_instance
        return dialect.type_descriptor(recipe.exact_string_type(self.length, dialect))

    @property
    def python_type(self) -> type[str]:
        return str


class _SQLiteJSONText(SQLiteJSON):
    """JSON in a column declared TEXT.

    A column declared ``JSON`` has NUMERIC affinity in SQLite
    (https://www.sqlite.org/datatype3.html#determination_of_column_affinity):
    the document ``18446744073709551617`` would be stored as the REAL
    ``1.8446744073709552e+19``. TEXT affinity keeps every document as written.
    """


@compiles(_SQLiteJSONText, "sqlite")
def _json_as_text(_type: _SQLiteJSONText, _compiler: Any, **_kw: Any) -> str:
    return "TEXT"


#: any JSON value; Python ``None`` is stored as the JSON literal ``null``
#: (``none_as_null=False``), SQL NULL needs ``sqlalchemy.null()``.
JSONDocument = (
    JSON(none_as_null=False)
    .with_variant(JSONB(none_as_null=False), "postgresql")
    .with_variant(_SQLiteJSONText(none_as_null=False), "sqlite")
)

#: message bodies: up to 16 MiB on MySQL/MariaDB (TEXT holds only 64 KiB,
#: less than 100,000 four-byte characters).
LongText = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")
