"""What a column of a service's own table can hold: one check per column, before any SQL.

A check is made once per column from its SQLAlchemy type when a table
repository is first built, and takes ``(value)`` to the value to bind (the
same value, or JSON as a read will return it), or raises ``ValidationError``
naming the column. What is checked, by type:

* ``Boolean``: ``True`` or ``False``;
* integers: ``int`` (never ``bool``) within the type's width: 16 bits for
  ``SmallInteger``, 32 for ``Integer``, 64 for ``BigInteger``, as on
  PostgreSQL and MySQL/MariaDB (SQLite would take more, the others not);
* ``Float``: a finite ``int`` or ``float``; ``Numeric``: a finite ``int``,
  ``float`` or ``Decimal`` that fits its precision;
* strings (``String(n)``, ``Text``, ``ExactString``, ``Enum``): ``str`` without
  NUL characters or lone surrogates, at most ``n`` characters where the type
  says; an ``Enum``'s value must be one of its values;
* ``UTCDateTime``: an aware datetime; ``DateTime(timezone=True)`` aware,
  plain ``DateTime`` naive (PostgreSQL's ``timestamp`` refuses an offset);
  ``Date``, ``Time``, ``Interval``: ``date``, ``time``, ``timedelta``;
* ``JSON`` (``JSONDocument``): a JSON value (string keys, no NUL, finite
  numbers, nesting within what every dialect accepts);
* ``LargeBinary``: bytes, at most ``n`` where the type says; ``Uuid``: a UUID;
* any other type is left to its own bind processing.

``None`` is allowed where the column is nullable. A JSON column stores Python
``None`` as the JSON literal ``null``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Time,
    Uuid,
)
from sqlalchemy.types import TypeDecorator

from .. import _validate
from ..errors import ValidationError
from ..types import ExactString, UTCDateTime

if TYPE_CHECKING:
    from sqlalchemy import Column
    from sqlalchemy.types import TypeEngine

__all__ = ["Check", "check_for", "comparable", "orderable"]

Check = Callable[[Any], Any]

_INT_BITS: tuple[tuple[type, int], ...] = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))


def check_for(column: Column[Any]) -> Check:
    """The check of ``column``'s values (``None`` allowed when it is nullable)."""
    field = str(column.name)
    inner = _check_type(field, column.type)
    if column.nullable:

        def nullable(value: Any) -> Any:
            return None if value is None else inner(value)

        return nullable

    def required(value: Any) -> Any:
        if value is None:
            raise ValidationError(f"{field}: must not be None (the column is NOT NULL)")
        return inner(value)

    return required


def comparable(type_: TypeEngine[Any]) -> bool:
    """Whether ``column = value`` means the same on every dialect (JSON does not)."""
    return not isinstance(_plain(type_), JSON)


def orderable(type_: TypeEngine[Any]) -> bool:
    """Whether rows can be ordered by a column of this type, on every dialect,
    and a cursor can carry its values.

    Text without a length (``Text``, ``String()``) and binary values are not:
    MySQL/MariaDB sort them by their first ``max_sort_length`` bytes only
    (1,024 by default), while a keyset comparison compares them whole, so a
    page could skip or repeat rows.
    """
    plain = _plain(type_)
    if isinstance(plain, String):
        return plain.length is not None
    return isinstance(plain, Boolean | Integer | Numeric | DateTime | Date | Time | Uuid)


def _plain(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    """The type under contextstore's own decorators (``ExactString`` is a
    String, ``UTCDateTime`` a DateTime); a foreign decorator stays as it is."""
    if isinstance(type_, UTCDateTime | ExactString):
        return type_.impl_instance
    return type_


def _check_type(field: str, type_: TypeEngine[Any]) -> Check:
    if isinstance(type_, UTCDateTime):
        return lambda value: _validate.aware(field, value)
    if isinstance(type_, ExactString):
        return _text(field, type_.length)
    if isinstance(type_, Interval):  # a TypeDecorator of SQLAlchemy's own
        return _instance(field, timedelta, "a timedelta")
    if isinstance(type_, TypeDecorator):
        return _anything  # its own process_bind_param decides what it takes
    if isinstance(type_, Boolean):
        return lambda value: _validate.flag(field, value)
    if isinstance(type_, Integer):
        bits = next(width for kind, width in _INT_BITS if isinstance(type_, kind))
        return _integer(field, bits)
    if isinstance(type_, Float):
        return _float(field)
    if isinstance(type_, Numeric):
        return _decimal(field, type_.precision, type_.scale)
    if isinstance(type_, Enum):
        return _enum(field, type_)
    if isinstance(type_, String):
        return _text(field, type_.length)
    if isinstance(type_, DateTime):
        return _datetime(field, bool(type_.timezone))
    if isinstance(type_, Date):
        return _instance(field, date, "a date", exclude=datetime)
    if isinstance(type_, Time):
        return _instance(field, time, "a time")
    if isinstance(type_, JSON):
        return lambda value: _validate.document(field, value)
    if isinstance(type_, LargeBinary):
        return _binary(field, type_.length)
    if isinstance(type_, Uuid):
        return _uuid(field, bool(type_.as_uuid))
    return _anything


def _anything(value: Any) -> Any:
    return value


def _text(field: str, length: int | None) -> Check:
    return lambda value: _validate.text(field, value, length)


def _integer(field: str, bits: int) -> Check:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(f"{field}: expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise ValidationError(f"{field}: must be between {low} and {high}, got {value}")
        return value

    return check


def _float(field: str) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{field}: expected a number, got {type(value).__name__}")
        try:
            number = float(value)
        except OverflowError:
            raise ValidationError(f"{field}: out of the range of a float") from None
        if not math.isfinite(number):
            raise ValidationError(f"{field}: must be a finite number")
        return number

    return check


def _decimal(field: str, precision: int | None, scale: int | None) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValidationError(f"{field}: expected a number, got {type(value).__name__}")
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise ValidationError(f"{field}: must be a finite number")
        if precision is not None and number != 0:
            whole = number.adjusted() + 1  # digits before the point
            if whole > precision - (scale or 0):
                raise ValidationError(
                    f"{field}: too many digits for NUMERIC({precision}, {scale or 0})"
                )
        return value

    return check


def _enum(field: str, type_: Enum) -> Check:
    allowed = set(type_.enums)
    members = type_.enum_class

    def check(value: Any) -> Any:
        if members is not None and isinstance(value, members):
            return value
        if not isinstance(value, str) or value not in allowed:
            raise ValidationError(f"{field}: must be one of {', '.join(sorted(allowed))}")
        return value

    return check


def _datetime(field: str, aware: bool) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, datetime):
            raise ValidationError(f"{field}: expected a datetime, got {type(value).__name__}")
        if aware:
            return _validate.aware(field, value)
        if value.tzinfo is not None:
            raise ValidationError(
                f"{field}: the column holds naive datetimes (DateTime without timezone); "
                "use UTCDateTime for points in time"
            )
        return value

    return check


def _instance(field: str, kind: type, name: str, exclude: type | None = None) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, kind) or (exclude is not None and isinstance(value, exclude)):
            raise ValidationError(f"{field}: expected {name}, got {type(value).__name__}")
        return value

    return check


def _binary(field: str, length: int | None) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ValidationError(f"{field}: expected bytes, got {type(value).__name__}")
        data = bytes(value)
        if length is not None and len(data) > length:
            raise ValidationError(f"{field}: at most {length} bytes, got {len(data)}")
        return data

    return check


def _uuid(field: str, as_uuid: bool) -> Check:
    def check(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return value if as_uuid else str(value)
        if isinstance(value, str):
            try:
                parsed = uuid.UUID(value)
            except ValueError:
                raise ValidationError(f"{field}: not a UUID") from None
            return parsed if as_uuid else value
        raise ValidationError(f"{field}: expected a UUID, got {type(value).__name__}")

    return check
