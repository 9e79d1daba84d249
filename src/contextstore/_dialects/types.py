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
from sqlalchemy.dialects.sqlite import JSON as SQLiteJSON
from sqlalchemy.exc import DontWrapMixin
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator

from .._facts import json_loads
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
    "bind_processor",
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
        recipe = recipe_for(dialect)
        return _utc(value, recipe is not None and recipe.datetime_keeps_timezone)

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


def _utc(value: Any, keep: bool) -> datetime:
    """``value`` as UTC, aware with ``keep``, else naive UTC wall time."""
    if not isinstance(value, datetime):
        raise _BindValidationError(f"expected a datetime, got {type(value).__name__}")
    zone = value.tzinfo
    if zone is UTC:
        utc = value  # contextstore's own timestamps: no conversion to make
    elif zone is None or value.utcoffset() is None:
        raise _BindValidationError(
            f"naive datetime {value.isoformat()} rejected: give a timezone-aware datetime"
        )
    else:
        utc = value.astimezone(UTC)
    if keep:
        return utc
    if type(utc) is not datetime:
        return utc.replace(tzinfo=None)  # a subclass stays one
    # the constructor: a third of the cost of replace's keyword parsing
    return datetime(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)


#: the ``datetime.UTC`` value SQLite's bind processor converted last, and its
#: text: a write binds its call's one timestamp to several columns
#: (``created_at`` and ``updated_at``, each with a processor of its own), and
#: an aware ``isoformat`` costs most of a microsecond. Held strongly, so no
#: other object can be it; only UTC values, whose text nothing else decides.
_last_iso_text: tuple[Any, str] = (None, "")


def bind_processor(type_: TypeEngine[Any], dialect: SADialect) -> Callable[[Any], Any] | None:
    """SQLAlchemy's bind processor of ``type_`` on ``dialect``; for a
    :class:`UTCDateTime`, one function doing what its ``process_bind_param``
    and the storage type's processor do, with the recipe looked up once
    rather than per value, and SQLite's text made by ``isoformat`` (the same
    values: a test compares them)."""
    if isinstance(type_, UTCDateTime):
        recipe = recipe_for(dialect)
        text_of = (
            dialect.type_descriptor(recipe.datetime_type()).bind_processor(dialect)
            if recipe is not None and recipe.datetime_binds_iso_text
            else None
        )
        if text_of is not None:
            formatted = text_of  # SQLAlchemy's, for what isoformat may not write alike

            def iso_text(value: Any) -> Any:
                global _last_iso_text
                if value is None:
                    return None
                known = _last_iso_text
                if value is known[0]:
                    return known[1]
                utc = _utc(value, True)
                if type(utc) is not datetime:
                    # a subclass's own isoformat may write another layout
                    return formatted(utc.replace(tzinfo=None))
                # aware UTC: the same text, and "+00:00" after it to cut off
                text = utc.isoformat(" ", "microseconds")[:-6]
                if utc is value:
                    _last_iso_text = (value, text)
                return text

            return iso_text
        if recipe is not None:
            keep = recipe.datetime_keeps_timezone
            then = dialect.type_descriptor(recipe.datetime_type()).bind_processor(dialect)
            if then is None:

                def process(value: Any) -> Any:
                    return None if value is None else _utc(value, keep)

            else:

                def process(value: Any) -> Any:
                    return None if value is None else then(_utc(value, keep))

            return process
    return type_.dialect_impl(dialect).bind_processor(dialect)


def result_processor(type_: TypeEngine[Any], dialect: SADialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy's result processor of ``type_`` on ``dialect`` returns,
    in fewer calls per value where contextstore owns the types: None where the
    driver's value already is the result (a :class:`UTCDateTime` read through
    a driver that returns aware UTC datetimes: asyncpg's ``timestamptz``), one
    function for a naive-UTC :class:`UTCDateTime` and for JSON text (the same
    values: a test compares them)."""
    impl = type_.dialect_impl(dialect)
    if isinstance(type_, UTCDateTime):
        recipe = recipe_for(dialect)
        if recipe is not None:
            if recipe.datetime_results_utc:
                return None
            if not recipe.datetime_keeps_timezone:
                # naive UTC wall time in storage: the storage type's processor
                # and the decorator's in one call
                then = dialect.type_descriptor(recipe.datetime_type()).result_processor(
                    dialect, None
                )
                if then is None:
                    return _utc_from_naive
                if recipe.datetime_results_iso_text:
                    return _utc_from_iso_text_or(then)
                return _utc_from_naive_after(then)
    process = impl.result_processor(dialect, None)
    if process is not None and isinstance(impl, JSON) and recipe_for(dialect) is not None:
        # the JSON text decoded by the function the engines contextstore
        # builds are given as ``json_deserializer`` (engine.py), without
        # SQLAlchemy's wrappers around it (a test compares the values)
        return _json_result
    return process


def _utc_from_naive(value: Any) -> datetime | None:
    return None if value is None else _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    """What :meth:`UTCDateTime.process_result_value` makes of a value the storage
    type read: a naive one is UTC wall time, built by the constructor (a third
    of the cost of ``replace``'s keyword parsing, on every timestamp read); an
    aware one (SQLite text with an offset, which SQLAlchemy 2.1 reads as such)
    is converted."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    return datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        UTC,
    )


def _utc_from_naive_after(then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> datetime | None:
        return None if value is None else _as_utc(then(value))

    return process


def _utc_from_iso_text_or(then: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Naive UTC text as SQLite's DATETIME stores it, ``YYYY-MM-DD
    HH:MM:SS.ffffff``, parsed by ``datetime.fromisoformat``: for text of exactly
    that layout it gives what SQLAlchemy's regular expression gives. Other text
    (written by hand, or by another program) goes to SQLAlchemy's processor,
    ``then``, which reads some of it differently (it ignores an offset, and a
    ``T`` between date and time ends what it reads)."""

    def process(value: Any) -> datetime | None:
        if value is None:
            return None
        if type(value) is str and len(value) == 26 and value[10] == " " and value[19] == ".":
            try:
                # the offset makes it aware, with datetime.UTC itself as its zone
                moment: datetime = datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass  # not digits where digits belong: SQLAlchemy's rules
            else:
                return moment
        return _as_utc(then(value))

    return process


def _json_result(value: Any) -> Any:
    return None if value is None else json_loads(value)


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
#: (``none_as_null=False``), SQL NULL needs ``sqlalchemy.null()``. The
#: document is stored as the text it was written as: TEXT on SQLite (see
#: :class:`_SQLiteJSONText`), ``JSON`` on MySQL/MariaDB (LONGTEXT checked by
#: ``JSON_VALID`` on MariaDB) and ``json`` on PostgreSQL, not ``jsonb``: jsonb
#: keeps numbers as ``numeric``, so the float ``1e16`` would read back as the
#: int ``10000000000000000`` and ``-0.0`` as ``0.0`` (numeric has no negative
#: zero). A value reads back with the same Python types on every dialect.
JSONDocument = JSON(none_as_null=False).with_variant(_SQLiteJSONText(none_as_null=False), "sqlite")

#: message bodies: up to 16 MiB on MySQL/MariaDB (TEXT holds only 64 KiB,
#: less than 100,000 four-byte characters).
LongText = Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")
