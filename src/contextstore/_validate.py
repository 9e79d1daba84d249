"""Input limits shared by the core and legacy backends; checked before any SQL.

Both backends call these same functions, so a bad input is rejected with the
same ``ValidationError`` (same message) wherever it is sent, and nothing is
written. Text is stored exactly as given (no stripping: ``"k"`` and ``"k "``
are different keys); the "1-255 characters after stripping" rule only
rejects blank values.

Some limits exist because one backend would otherwise fail later, and
differently: lone surrogate characters (no driver can encode them), JSON
nested deeper than MariaDB's ``JSON_VALID`` accepts, numbers and datetimes
that overflow on conversion. They are rejected here, for every backend.

JSON (metadata, memory values) is returned as a read will return it: the
parse of the text that is stored (tuples become lists, every container a
fresh one the caller does not hold), so a write's record equals a later
read's. Object keys must be strings at every depth: JSON would turn ``1``,
``True`` or ``None`` keys into ``"1"``, ``"true"``, ``"null"``, and
``{1: "a", "1": "b"}`` into one key, silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ._facts import json_loads
from .errors import ValidationError
from .models import BUCKETS, ORDERS, VISIBILITIES, NewMessage, Viewer

MAX_NAME = 255
MAX_CONTENT = 100_000
MAX_METADATA_BYTES = 64 * 1024
#: memory values are documents, not blobs: 1 MiB serialised is the ceiling.
MAX_VALUE_BYTES = 1024 * 1024
MIN_TTL = 1.0
MAX_TTL = 366 * 24 * 3600.0  # one year, leap years included
MAX_LIMIT = 1000
MAX_ID = 2**63 - 1
#: nested arrays/objects in a JSON value: MariaDB's JSON_VALID, the CHECK on its
#: JSON columns, rejects documents nested 32 deep (its JSON_DEPTH_LIMIT).
MAX_JSON_DEPTH = 31


#: names that passed :func:`name` with the default limit: every call checks
#: a few, and a service uses the same ones again and again. Emptied when full.
_NAMES: set[str] = set()
_NAMES_HELD = 4096


def name(field: str, value: Any, max_length: int = MAX_NAME) -> str:
    """An id or name: 1-255 characters (``max_length``), not blank, no NUL."""
    # a str exactly: a subclass's own __hash__ and __eq__ could claim membership
    if type(value) is str and value in _NAMES and max_length >= MAX_NAME:
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(f"{field}: NUL characters are not allowed")
    if not value.isascii():  # O(1): CPython knows; only other text can hold a surrogate
        _unicode(field, value)
    if not value or value.isspace():
        raise ValidationError(f"{field}: must not be empty or blank")
    if len(value) > max_length:
        raise ValidationError(f"{field}: at most {max_length} characters, got {len(value)}")
    if max_length == MAX_NAME and type(value) is str:
        if len(_NAMES) >= _NAMES_HELD:
            _NAMES.clear()
        _NAMES.add(value)
    return value


#: any text with a length limit: the same rules as a name (one function, since
#: every call validates a few names)
_text = name


def optional_name(field: str, value: Any) -> str | None:
    return None if value is None else name(field, value)


def content(value: Any) -> str:
    """Message content: 1-100,000 characters, not blank, no NUL."""
    return _text("content", value, MAX_CONTENT)


def _unicode(field: str, text: str) -> None:
    """Reject lone surrogates: valid in a Python str, unencodable for every driver."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{field}: lone surrogate characters are not allowed (text must be valid Unicode)"
        ) from None


#: the types orjson writes exactly as the standard library does
_PLAIN_TYPES = frozenset({str, dict, list, tuple, int, float, bool, type(None)})


def _walk(field: str, value: Any, *, unicode: bool = True) -> bool:
    """Check every string and key of a JSON value, and its nesting, without recursion.

    Returns whether the value holds only the plain JSON types (str, int,
    float, bool, None, dict, list, tuple) and finite floats: what orjson
    serialises exactly as the standard library would. ``unicode=False``
    leaves lone surrogates to orjson, which refuses them.
    """
    plain = True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) not in _PLAIN_TYPES:
            plain = False  # a subclass or another type: the standard library decides
        if isinstance(item, str):
            _json_text(field, item, unicode)
            continue
        if isinstance(item, dict):
            children: Any = item.values()
            for key in item:
                if type(key) is not str:
                    if not isinstance(key, str):
                        raise ValidationError(
                            f"{field}: object keys must be strings, "
                            f"got a key of type {type(key).__name__}"
                        )
                    plain = False
                _json_text(field, key, unicode)
        elif isinstance(item, list | tuple):
            children = item
        else:
            if type(item) is float and not math.isfinite(item):
                plain = False
            continue
        if depth > MAX_JSON_DEPTH:
            # a container that contains itself ends up here too
            raise ValidationError(f"{field}: nested deeper than {MAX_JSON_DEPTH} arrays/objects")
        depth += 1
        for child in children:
            stack.append((child, depth))
    return plain


#: what :func:`_flat` found: not flat (``_walk`` decides), plain scalars only
#: (a dict of them, or one), or lists or tuples among them
_NOT_FLAT, _SCALARS, _LISTS = 0, 1, 2


def _flat(value: Any) -> int:
    """The common case, checked at a fraction of :func:`_walk`'s cost: a dict
    whose values are plain scalars (ASCII text without NUL, finite floats,
    ints, bools, None) or lists of them, with ASCII keys; or one such list or
    scalar. ``_NOT_FLAT`` (falsy) sends the value to :func:`_walk` (it may
    still be fine); ``_SCALARS`` says a shallow copy of the value is what a
    read returns."""
    kind = type(value)
    if kind is dict:
        for key in value:
            if type(key) is not str or "\x00" in key or not key.isascii():
                return _NOT_FLAT
        return _flat_items(value.values(), lists=True)
    if kind is list or kind is tuple:
        return _LISTS if _flat_items(value, lists=False) else _NOT_FLAT
    return _flat_items((value,), lists=False)


def _flat_items(items: Iterable[Any], *, lists: bool) -> int:
    """Every item a plain scalar (see :func:`_flat`), or with ``lists`` a list
    or tuple of them: ``_SCALARS`` or ``_LISTS``; else ``_NOT_FLAT``."""
    found = _SCALARS
    for item in items:
        kind = type(item)
        if kind is str:
            if "\x00" in item or not item.isascii():
                return _NOT_FLAT
        elif kind is float:
            if not math.isfinite(item):
                return _NOT_FLAT
        elif lists and (kind is list or kind is tuple):
            if not _flat_items(item, lists=False):
                return _NOT_FLAT
            found = _LISTS
        elif kind is not int and kind is not bool and item is not None:
            return _NOT_FLAT
    return found


def _json_text(field: str, text: str, unicode: bool = True) -> None:
    # checked on the strings themselves: in the serialised text a literal
    # backslash followed by "u0000" would look like an escaped NUL
    if "\x00" in text:
        raise ValidationError(f"{field}: NUL characters are not allowed")
    if unicode and not text.isascii():
        _unicode(field, text)


def _stored(field: str, value: Any) -> tuple[int, Any]:
    """Bytes of ``value`` as stored (UTF-8 JSON), and the value a read of it
    returns; ValidationError if it is not storable JSON.

    Plain values are serialised with orjson, which stores them; anything else
    (subclasses, other types, integers beyond 64 bits, lone surrogates) is
    judged by the standard library's ``json``, as before orjson. The value
    read back is the parse of that text (for a dict of plain scalars, a
    shallow copy: the same thing, without the parse).
    """
    flat = _flat(value)
    if flat or _walk(field, value, unicode=False):
        try:
            data = orjson.dumps(value)
        except TypeError:
            pass
        else:
            if flat == _SCALARS:
                return len(data), dict(value) if type(value) is dict else value
            # orjson wrote it, so its numbers fit 64 bits: orjson reads them exactly
            return len(data), orjson.loads(data)
    _walk(field, value)
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}: not JSON-serialisable ({exc})") from None
    return len(text.encode("utf-8")), json_loads(text)


def metadata(value: Any) -> dict[str, Any]:
    """A JSON object of at most 64 KiB serialised; None means empty.

    Returns:
        The object as a read will return it (see the module docstring): store
        and return this, not ``value``.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = type(value).__name__
        raise ValidationError(f"metadata: expected a JSON object (dict), got {kind}")
    size, stored = _stored("metadata", value)
    if size > MAX_METADATA_BYTES:
        raise ValidationError(
            f"metadata: at most {MAX_METADATA_BYTES} bytes serialised, got {size}"
        )
    return stored  # type: ignore[no-any-return]  # the parse of a JSON object


def json_value(value: Any) -> Any:
    """Any JSON value (None, False, 0, "" and [] included), at most 1 MiB serialised.

    Returns:
        The value as a read will return it (see the module docstring).
    """
    size, stored = _stored("value", value)
    if size > MAX_VALUE_BYTES:
        raise ValidationError(f"value: at most {MAX_VALUE_BYTES} bytes serialised, got {size}")
    return stored


def document(field: str, value: Any) -> Any:
    """Any JSON value for a JSON column of a service's own table (no size limit
    of its own: the database's applies).

    Returns:
        The value as a read will return it (see the module docstring).
    """
    return _stored(field, value)[1]


def text(field: str, value: Any, max_length: int | None = None) -> str:
    """Text for a column of a service's own table: any string (empty and blank
    included), no NUL, valid Unicode, at most ``max_length`` characters."""
    if not isinstance(value, str):
        raise ValidationError(f"{field}: expected a string, got {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(f"{field}: NUL characters are not allowed")
    if not value.isascii():
        _unicode(field, value)
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{field}: at most {max_length} characters, got {len(value)}")
    return value


def visibility(value: Any) -> str:
    if value not in VISIBILITIES:
        allowed = ", ".join(VISIBILITIES)
        raise ValidationError(f"visibility: must be one of {allowed}, got {value!r}")
    return str(value)


def bucket(value: Any) -> str:
    if value not in BUCKETS:
        raise ValidationError(f"bucket: must be one of {', '.join(BUCKETS)}, got {value!r}")
    return str(value)


def order(value: Any) -> str:
    if value not in ORDERS:
        raise ValidationError(f"order: must be 'asc' or 'desc', got {value!r}")
    return str(value)


def limit(value: Any, maximum: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"limit: expected an integer, got {type(value).__name__}")
    if not 1 <= value <= maximum:
        raise ValidationError(f"limit: must be between 1 and {maximum}, got {value}")
    return value


def row_id(field: str, value: Any) -> int:
    """A 64-bit positive integer id."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field}: expected an integer id, got {type(value).__name__}")
    if not 1 <= value <= MAX_ID:
        raise ValidationError(f"{field}: must be between 1 and 2**63-1, got {value}")
    return value


def optional_row_id(field: str, value: Any) -> int | None:
    return None if value is None else row_id(field, value)


def flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{field}: expected True or False, got {type(value).__name__}")
    return value


def optional_flag(field: str, value: Any) -> bool | None:
    return None if value is None else flag(field, value)


def ttl(value: Any) -> timedelta | None:
    """Seconds (int/float) or a timedelta, 1 s to 1 year; None means no expiry."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise ValidationError("ttl: must be between 1 second and 1 year") from None
    else:
        raise ValidationError(f"ttl: expected seconds or a timedelta, got {type(value).__name__}")
    if not math.isfinite(seconds) or not MIN_TTL <= seconds <= MAX_TTL:
        raise ValidationError(f"ttl: must be between 1 second and 1 year, got {seconds:g} s")
    return timedelta(seconds=seconds)


def aware(field: str, value: Any) -> datetime:
    """An aware datetime (naive ones are ambiguous and rejected)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{field}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field}: naive datetime; give a timezone-aware datetime (UTC)")
    try:
        value.astimezone(UTC)  # every backend converts it; near datetime.min/max it overflows
    except (OverflowError, ValueError):
        raise ValidationError(f"{field}: out of range once converted to UTC") from None
    return value


def optional_aware(field: str, value: Any) -> datetime | None:
    return None if value is None else aware(field, value)


def search_query(value: Any) -> str:
    """A full-text query: any text, 1-1,000 characters, no NUL."""
    return _text("query", value, 1000)


#: Viewers that passed :func:`viewer`, by identity, each held so that its id
#: is not reused: a service reads with the same Viewer again and again, and a
#: Viewer is frozen. Emptied when full.
_VIEWERS: dict[int, Viewer] = {}
_VIEWERS_HELD = 1024


def viewer(value: Any) -> Viewer:
    """The reader of a message path: a Viewer whose id and type are valid names."""
    known = _VIEWERS.get(id(value))
    if known is not None and known is value:
        return known
    if not isinstance(value, Viewer):
        raise ValidationError(f"viewer: expected a Viewer, got {type(value).__name__}")
    name("viewer.agent_id", value.agent_id)
    name("viewer.agent_type", value.agent_type)
    if type(value.is_admin) is not bool:  # a model_construct()ed Viewer skips pydantic
        flag("viewer.is_admin", value.is_admin)
    if len(_VIEWERS) >= _VIEWERS_HELD:
        _VIEWERS.clear()
    _VIEWERS[id(value)] = value
    return value


def new_messages(session_id: str, items: Iterable[Any]) -> list[dict[str, Any]]:
    """The items of ``messages.add_many`` as the rows to insert (no id, timestamp
    or token yet). A batch repeats a few senders, sender types and message
    types: each distinct name is checked once."""
    known: set[str] = set()
    return [new_message(session_id, item, known) for item in items]


def new_message(session_id: str, item: Any, known: set[str] | None = None) -> dict[str, Any]:
    """One new message as the row to insert (no id, timestamp or token yet);
    ``known``: names of the batch already checked (see :func:`message_row`)."""
    if isinstance(item, dict):
        if not all(isinstance(key, str) for key in item):
            raise ValidationError("messages: item keys must be field names (strings)")
        item = NewMessage(**item)
    elif not isinstance(item, NewMessage):
        raise ValidationError(f"messages: expected NewMessage items, got {type(item).__name__}")
    return message_row(
        session_id,
        sender=item.sender,
        sender_type=item.sender_type,
        content=item.content,
        visibility=item.visibility,
        message_type=item.message_type,
        metadata=item.metadata,
        parent_message_id=item.parent_message_id,
        known=known,
    )


def message_row(
    session_id: str,
    *,
    sender: Any,
    sender_type: Any,
    content: Any,
    visibility: Any,
    message_type: Any,
    metadata: Any,
    parent_message_id: Any,
    known: set[str] | None = None,
) -> dict[str, Any]:
    """The fields of ``messages.add`` (or of one :class:`NewMessage`) checked, as
    the row to insert (no id, timestamp or token yet).

    ``known``: names that passed :func:`name` earlier in the same batch; the
    row's names are skipped when all three are among them, and added once
    checked. The errors are the same, in the same order, as without it.
    """
    checked = (
        known is not None
        and type(sender) is str
        and type(sender_type) is str
        and type(message_type) is str
        and known.issuperset((sender, sender_type, message_type))
    )
    if not checked:
        name("sender", sender)
        name("sender_type", sender_type)
    content = _text("content", content, MAX_CONTENT)
    visibility = _visibility(visibility)
    if not checked:
        name("message_type", message_type)
        if known is not None:
            known.update((sender, sender_type, message_type))
    return {
        "session_id": session_id,
        "sender": sender,
        "sender_type": sender_type,
        "content": content,
        "visibility": visibility,
        "message_type": message_type,
        "metadata": _metadata(metadata),
        "parent_message_id": optional_row_id("parent_message_id", parent_message_id),
    }


# the keyword arguments of message_row shadow these
_visibility = visibility
_metadata = metadata
