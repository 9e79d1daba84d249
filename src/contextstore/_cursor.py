"""Opaque keyset cursors: ``(timestamp, id)`` positions bound to one listing.

The id is the row's primary key (an integer, or the text id of a session).

A cursor carries the listing it belongs to (kind and scope, e.g. the session
and order) and a checksum, so a tampered, garbage or foreign cursor is a
``ValidationError`` instead of a wrong page or a crash. The checksum is not a
secret signature; cursors hold no secret data, only a position.

Kinds and scopes (both backends use exactly these, so cursors are portable):

* ``"sessions"``: ``scope(created_by, active)``, position ``(created_at, id)``;
* ``"messages"``: ``scope(session_id, order, sender)``, position ``(timestamp, id)``;
* ``"feed"``: ``scope(viewer.agent_id)``, position ``(timestamp, id)``;
* ``"audit"``: ``scope(agent_id, session_id, event_type, since, until)``,
  position ``(timestamp, id)``;
* ``"table"`` (a service's own table, :func:`encode_key`): the scope names the
  table, its sort column and direction and the filters; the position is the
  sort column's value, then the primary key's, of any type a column holds.

The checksum key is public, so a well-formed cursor can still carry a forged
position. ``decode`` checks the position against the same limits as any other
input (an aware moment that converts to UTC, a 64-bit positive integer id or a
valid session id, per kind) before any SQL, on both backends: a position no
real row can have is a ``ValidationError``, never a driver overflow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from . import _validate
from .errors import ValidationError
from .models import Page

T = TypeVar("T")

_VERSION = 1
_KEY = b"contextstore-cursor-v1"
#: the type of the id in each kind's position (see the module docstring).
_ID_TYPES: dict[str, type] = {"sessions": str, "messages": int, "feed": int, "audit": int}


def _digest(payload: bytes) -> str:
    return hashlib.blake2b(payload, key=_KEY, digest_size=8).hexdigest()


# base64's urlsafe_b64encode and urlsafe_b64decode, without their two layers
# of Python wrappers (every listing call encodes a cursor, every page after
# the first decodes one): the same alphabets, the same lenient decoding
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64encode(token: bytes) -> str:
    return binascii.b2a_base64(token, newline=False).translate(_TO_URLSAFE).decode().rstrip("=")


def _b64decode(cursor: str) -> bytes:
    # a non-ASCII cursor raises UnicodeEncodeError, a ValueError, as base64's does
    padded = (cursor + "=" * (-len(cursor) % 4)).encode("ascii")
    return binascii.a2b_base64(padded.translate(_FROM_URLSAFE))


def encode(kind: str, scope: str, position: tuple[datetime, int | str]) -> str:
    """Encode the position of the last row of a page."""
    moment, row_id = position
    # the checksum covers the bytes as sent, so cursors written by the standard
    # library's json (non-ASCII escaped) and by orjson (UTF-8) both decode
    body = [_VERSION, kind, scope, moment.isoformat(), row_id]
    try:
        raw = orjson.dumps(body)
    except TypeError:  # what orjson refuses (integers past 64 bits): the standard library
        raw = json.dumps(body, separators=(",", ":")).encode()
    token = raw + b"|" + _digest(raw).encode()
    return _b64encode(token)


def decode(cursor: Any, kind: str, scope: str) -> tuple[datetime, int | str]:
    """Return the position in ``cursor``; raise ValidationError if it is not ours."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > 1024:
        raise ValidationError("cursor: not a cursor returned by this listing")
    try:
        token = _b64decode(cursor)
        raw, _, digest = token.rpartition(b"|")
        if not raw or _digest(raw).encode() != digest:
            raise ValueError("checksum")
        version, got_kind, got_scope, moment_text, row_id = _loads(raw)
        moment = datetime.fromisoformat(moment_text)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise ValidationError("cursor: malformed or tampered cursor") from None
    if version != _VERSION or got_kind != kind or got_scope != scope:
        raise ValidationError("cursor: belongs to another listing")
    if not _position_fits(kind, moment, row_id):
        raise ValidationError("cursor: position out of range (malformed or tampered cursor)")
    return moment, row_id


def encode_key(kind: str, scope: str, position: Sequence[Any]) -> str:
    """Encode a position of any width (a table's sort column, then its primary key).

    Each value is written as JSON, with a tag for the types JSON has not
    (datetimes, dates, times, decimals, bytes, UUIDs); see :func:`decode_key`.

    Raises:
        ValidationError: a value of a type a cursor cannot carry.
    """
    body = [_VERSION, kind, scope, [_tagged(value) for value in position]]
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    token = raw + b"|" + _digest(raw).encode()
    return _b64encode(token)


def decode_key(cursor: Any, kind: str, scope: str, width: int) -> list[Any]:
    """The position in a cursor of :func:`encode_key`, ``width`` values long.

    The values are only decoded here; the caller checks each against the
    column it belongs to (a forged cursor can hold anything).

    Raises:
        ValidationError: the cursor is not one of this listing, or is malformed.
    """
    if not isinstance(cursor, str) or not cursor or len(cursor) > _MAX_KEY_CURSOR:
        raise ValidationError("cursor: not a cursor returned by this listing")
    try:
        token = _b64decode(cursor)
        raw, _, digest = token.rpartition(b"|")
        if not raw or _digest(raw).encode() != digest:
            raise ValueError("checksum")
        version, got_kind, got_scope, values = json.loads(raw)
        if not isinstance(values, list):
            raise ValueError("position")
        position = [_untagged(value) for value in values]
    except (ValueError, TypeError, ArithmeticError, UnicodeDecodeError, RecursionError, KeyError):
        raise ValidationError("cursor: malformed or tampered cursor") from None
    if version != _VERSION or got_kind != kind or got_scope != scope or len(position) != width:
        raise ValidationError("cursor: belongs to another listing")
    return position


#: the longest cursor :func:`decode_key` reads: a position holds a sort value
#: of up to a VARCHAR's length (16,383 four-byte characters on MySQL), base64
_MAX_KEY_CURSOR = 256 * 1024

#: tags of the values JSON cannot write as themselves
_TAGS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
    "bytes": lambda text: base64.b64decode(text, validate=True),
    "uuid": uuid.UUID,
}


def _tagged(value: Any) -> Any:
    """``value`` as JSON: itself, or ``[tag, text]``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("cursor: a sort value that is not a finite number")
        return value
    if isinstance(value, datetime):
        return ["datetime", value.isoformat()]
    if isinstance(value, date):
        return ["date", value.isoformat()]
    if isinstance(value, time):
        return ["time", value.isoformat()]
    if isinstance(value, Decimal):
        return ["decimal", str(value)]
    if isinstance(value, bytes | bytearray | memoryview):
        return ["bytes", base64.b64encode(bytes(value)).decode()]
    if isinstance(value, uuid.UUID):
        return ["uuid", str(value)]
    raise ValidationError(f"cursor: cannot carry a sort value of type {type(value).__name__}")


def _untagged(value: Any) -> Any:
    if isinstance(value, list):
        tag, text = value
        if not isinstance(text, str):
            raise ValueError("tagged value")
        return _TAGS[tag](text)
    if isinstance(value, dict):
        raise ValueError("position")
    return value


def _loads(raw: bytes) -> Any:
    # orjson refuses escaped lone surrogates that the standard library reads:
    # such a (forged) cursor is judged by the standard library, as before orjson
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def _position_fits(kind: str, moment: datetime, row_id: Any) -> bool:
    """Whether ``(moment, row_id)`` could be the position of a real row of ``kind``."""
    # the limits' own messages are not used: they would quote the forged value
    try:
        _validate.aware("cursor", moment)
        if _ID_TYPES[kind] is str:
            _validate.name("cursor", row_id)
        else:
            _validate.row_id("cursor", row_id)
    except ValidationError:
        return False
    return True


def scope(*parts: Any) -> str:
    """The canonical scope string of a listing: its filters, in a fixed order.

    Both backends build scopes with this function, so a cursor is valid on
    either backend for the same listing and on no other. The parts are text,
    None, booleans, integers, datetimes and lists of them: for these orjson
    writes exactly what the standard library's compact, non-ASCII-keeping
    ``json.dumps`` writes (a test compares them), in a twentieth of the time;
    what orjson refuses (lone surrogates) is written by the standard library.
    """
    values = [part.isoformat() if isinstance(part, datetime) else part for part in parts]
    try:
        return orjson.dumps(values).decode()
    except TypeError:
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def page(
    items: list[T], limit: int, kind: str, scope: str, key: Callable[[T], tuple[datetime, Any]]
) -> Page[T]:
    """Cut a ``limit + 1`` fetch into a Page whose cursor is the position of its last row.

    Both backends fetch one row more than asked: its presence says a next page exists.
    """
    if len(items) <= limit:
        return Page(items=items, next_cursor=None)
    items = items[:limit]
    return Page(items=items, next_cursor=encode(kind, scope, key(items[-1])))
