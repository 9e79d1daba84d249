"""Table specs: which columns are read, how values are encoded, and the checksum.

Every table of ``contextstore.schema`` (parents first, :data:`TABLES`) gets a
:class:`_Spec`: its columns (generated ones left out) with their value kind,
the JSON encoding of a row, the canonical checksum line, and the decoding of
a dump row checked against the kinds. The checksum rules are in the package
docstring (:mod:`contextstore._admin.datatools`).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Integer

from contextstore._facts import search_text
from contextstore.errors import ContextStoreError, ValidationError
from contextstore.schema import agent_memory, audit_log, messages, session_participants, sessions

if TYPE_CHECKING:
    from sqlalchemy import Column, Table

#: every table, parents before children (the order of inserts and of a dump).
TABLES: tuple[Table, ...] = (sessions, messages, agent_memory, audit_log, session_participants)

#: columns a writer computes from the rest of the row: never read, dumped or
#: checksummed, computed again for every row a copy or restore inserts (so the
#: target's search index is right whatever the source held).
DERIVED: Mapping[tuple[str, str], Callable[[Mapping[str, Any]], Any]] = {
    ("messages", "search_text"): lambda row: search_text(row["content"]),
}


# -- public records ------------------------------------------------------


@dataclass(frozen=True)
class TableDigest:
    """Row count and checksum of one table (see the package docstring)."""

    rows: int
    sha256: str


@dataclass(frozen=True)
class TableCheck:
    """One table compared: what it should hold against what it holds."""

    table: str
    expected: TableDigest
    actual: TableDigest

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass(frozen=True)
class DataReport:
    """What a copy, verification, backup or restore did.

    Attributes:
        action: ``copy``, ``verify``, ``backup`` or ``restore``.
        source: where the rows came from (safe URL or file path).
        target: where they went (safe URL or file path).
        revision: the schema revision of the data.
        tables: one check per table, in :data:`TABLES` order.
        written: the target was changed (committed, or the file written).
        seconds: wall time of the whole operation.
    """

    action: str
    source: str
    target: str
    revision: str | None
    tables: tuple[TableCheck, ...]
    written: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.tables)

    @property
    def mismatches(self) -> list[TableCheck]:
        return [check for check in self.tables if not check.ok]


# -- column codecs -------------------------------------------------------


class _Kind(enum.Enum):
    TEXT = "text"
    INT = "int"
    BOOL = "bool"
    TIME = "time"
    JSON = "json"


@dataclass(frozen=True)
class _Column:
    name: str
    kind: _Kind
    nullable: bool


def _kind_of(column: Column[Any]) -> _Kind:
    from contextstore._dialects.types import UTCDateTime

    if isinstance(column.type, UTCDateTime):
        return _Kind.TIME
    if isinstance(column.type, JSON):
        if column.nullable:
            # a JSON null and SQL NULL would both be written as null
            raise ContextStoreError(f"{column}: nullable JSON columns cannot be dumped")
        return _Kind.JSON
    if isinstance(column.type, Boolean):
        return _Kind.BOOL
    if isinstance(column.type, Integer):
        return _Kind.INT
    return _Kind.TEXT


@dataclass(frozen=True)
class _Spec:
    """How one table is read, encoded, checked and written."""

    table: Table
    columns: tuple[_Column, ...]
    key: tuple[str, ...]
    names: frozenset[str] = field(init=False)
    times: tuple[str, ...] = field(init=False)
    documents: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", frozenset(c.name for c in self.columns))
        times = tuple(c.name for c in self.columns if c.kind is _Kind.TIME)
        object.__setattr__(self, "times", times)
        documents = tuple(c.name for c in self.columns if c.kind is _Kind.JSON)
        object.__setattr__(self, "documents", documents)

    @classmethod
    def of(cls, table: Table) -> _Spec:
        columns = tuple(
            _Column(c.name, _kind_of(c), bool(c.nullable))
            for c in table.c
            if c.computed is None and (table.name, c.name) not in DERIVED
        )
        return cls(table, columns, tuple(c.name for c in table.primary_key.columns))

    def derive(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` (dicts of :attr:`columns`) with the derived columns added, as
        the target's INSERT takes them: computed here from the row, never read."""
        derived = [(name, make) for (table, name), make in DERIVED.items() if table == self.name]
        for name, make in derived:
            for row in rows:
                row[name] = make(row)
        return rows

    @property
    def name(self) -> str:
        return self.table.name

    def select_columns(self) -> list[Column[Any]]:
        return [self.table.c[c.name] for c in self.columns]

    def encode(self, values: Mapping[Any, Any]) -> dict[str, Any]:
        """The row as JSON-ready values: datetimes as ISO text, the rest as decoded."""
        out = dict(values)
        for name in self.times:
            value = out[name]
            if value is not None:
                out[name] = value.astimezone(UTC).isoformat(timespec="microseconds")
        return out

    def canonical(self, encoded: Mapping[str, Any]) -> str:
        """The checksum line of an encoded row."""
        values = dict(encoded)
        for name in self.documents:
            values[name] = _canonical_json(values[name])
        return _CANONICAL.encode(values)

    def line(self, values: Mapping[Any, Any]) -> str:
        """The checksum line of a decoded row."""
        out = dict(values)
        for name in self.times:
            value = out[name]
            if value is not None:
                out[name] = value.astimezone(UTC).isoformat(timespec="microseconds")
        for name in self.documents:
            out[name] = _canonical_json(out[name])
        return _CANONICAL.encode(out)

    def decode(self, raw: Any, where: str) -> dict[str, Any]:
        """A dump row back to Python values, checked against the column kinds."""
        if not isinstance(raw, dict) or raw.keys() != self.names:
            got = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
            raise ValidationError(
                f"{where}: a {self.name} row must have the columns {sorted(self.names)}, got {got}"
            )
        out: dict[str, Any] = {}
        for col in self.columns:
            out[col.name] = _decode_value(col, raw[col.name], f"{where}: {self.name}.{col.name}")
        return out


def _decode_value(col: _Column, value: Any, where: str) -> Any:
    if col.kind is _Kind.JSON:
        return value  # any JSON value; the columns are NOT NULL, so null is JSON null
    if value is None:
        if not col.nullable:
            raise ValidationError(f"{where}: null in a NOT NULL column")
        return None
    if col.kind is _Kind.TEXT and isinstance(value, str):
        return value
    if col.kind is _Kind.INT and isinstance(value, int) and not isinstance(value, bool):
        return value
    if col.kind is _Kind.BOOL and isinstance(value, bool):
        return value
    if col.kind is _Kind.TIME and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.utcoffset() is not None:
            return moment.astimezone(UTC)
        raise ValidationError(f"{where}: {value[:40]!r} is not an ISO 8601 time with offset")
    raise ValidationError(f"{where}: expected {col.kind.value}, got {type(value).__name__}")


def _canonical_json(value: Any) -> Any:
    """JSON numbers by value: an integral float is written as the integer."""
    kind = type(value)
    if kind is dict:
        return {
            key: item if type(item) in _PLAIN else _canonical_json(item)
            for key, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _PLAIN else _canonical_json(item) for item in value]
    if kind is float:
        return int(value) if value.is_integer() else value
    return value


#: JSON values _canonical_json leaves as they are (checked by exact type: bool is an int).
_PLAIN = frozenset({str, int, bool, type(None)})
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
SPECS: tuple[_Spec, ...] = tuple(_Spec.of(table) for table in TABLES)


class _Digester:
    """Counts rows and hashes their canonical lines, in order."""

    def __init__(self) -> None:
        self.rows = 0
        self._hash = hashlib.sha256()

    def add(self, line: str) -> None:
        self.rows += 1
        self._hash.update(f"{line}\n".encode())

    def result(self) -> TableDigest:
        return TableDigest(self.rows, self._hash.hexdigest())
