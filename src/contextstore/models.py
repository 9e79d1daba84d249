"""Frozen records returned by contextstore, and the two input models.

Every datetime is timezone-aware UTC, whichever dialect or backend produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from .errors import ValidationError

__all__ = [
    "ActivityBucket",
    "AuditEvent",
    "Bucket",
    "HealthReport",
    "MemoryEntry",
    "Message",
    "NewMessage",
    "OffsetPage",
    "Order",
    "Page",
    "Participant",
    "PoolStats",
    "ReplicaHealth",
    "SearchHit",
    "Session",
    "SessionActivity",
    "Viewer",
    "Visibility",
]

#: who may read a message (``messages.add``, ``NewMessage``).
Visibility = Literal["public", "private", "agent_only", "admin_only"]
#: every visibility, in the order of :data:`Visibility`.
VISIBILITIES: tuple[Visibility, ...] = get_args(Visibility)
#: the direction of ``messages.list``: oldest first or newest first.
Order = Literal["asc", "desc"]
#: every order, in the order of :data:`Order`.
ORDERS: tuple[Order, ...] = get_args(Order)
#: the width of an ``audit.activity`` bucket.
Bucket = Literal["minute", "hour", "day"]
#: every bucket width, in the order of :data:`Bucket`.
BUCKETS: tuple[Bucket, ...] = get_args(Bucket)
T = TypeVar("T")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


R = TypeVar("R", bound=BaseModel)


def trusted(model: type[R], values: dict[str, Any]) -> R:
    """A record of ``model`` from ``values`` that are already what validation would
    make of them, without validating them a second time.

    For rows the execution core read back: the values were validated on their
    way in, and the columns' types give them back as the fields' types. The
    object is the one ``model(**values)`` builds (equal, frozen, the same
    ``model_dump``); it is made the way pydantic's ``model_construct`` makes
    it, through the documented ``__pydantic_*__`` attributes, at a fraction
    of the cost. ``values`` holds every field, in declaration order.
    """
    record = model.__new__(model)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", set(values))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def trusted_all(model: type[R], every: Iterable[dict[str, Any]]) -> list[R]:
    """:func:`trusted` for each of ``every`` (a page of rows), in one loop."""
    new = model.__new__
    records: list[R] = []
    for values in every:
        record = new(model)
        _set(record, "__dict__", values)
        _set(record, "__pydantic_fields_set__", set(values))
        _set(record, "__pydantic_extra__", None)
        _set(record, "__pydantic_private__", None)
        records.append(record)
    return records


#: the frozen models refuse their own ``__setattr__``
_set = object.__setattr__


class _Input(_Record):
    """Input models raise contextstore's ValidationError, never pydantic's.

    Strict: a wrong type is an error, never coerced (``is_admin="yes"`` is
    not an admin, ``parent_message_id="5"`` not an id), the same rule the
    repositories' keyword arguments follow.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def __init__(self, **values: Any) -> None:
        problem: str | None = None
        try:
            # what BaseModel.__init__ does, without its frame: a bulk write
            # makes one of these per row
            self.__pydantic_validator__.validate_python(values, self_instance=self)
        except pydantic.ValidationError as exc:
            problem = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
        if problem is not None:
            raise ValidationError(f"{type(self).__name__}: {problem}")


class Session(_Record):
    id: str
    purpose: str
    created_by: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True
    created_at: datetime
    updated_at: datetime


class Message(_Record):
    id: int
    session_id: str
    sender: str
    sender_type: str
    content: str
    visibility: Visibility
    message_type: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    parent_message_id: int | None = None
    timestamp: datetime


class NewMessage(_Input):
    """One message for ``messages.add_many``: the same fields as ``messages.add``."""

    sender: str
    content: str
    sender_type: str = "generic"
    if TYPE_CHECKING:
        visibility: Visibility = "public"
    else:
        # checked by messages.add_many, item by item with add's message, so a
        # bad item in a batch is that batch's error (nothing written), the
        # same at run time whether or not a type checker saw it
        visibility: str = "public"
    message_type: str = "agent_response"
    metadata: dict[str, Any] | None = None
    parent_message_id: int | None = None


class Viewer(_Input):
    """Who is reading; visibility rules are evaluated against it in SQL."""

    agent_id: str
    agent_type: str = "generic"
    is_admin: bool = False


class MemoryEntry(_Record):
    agent_id: str
    session_id: str | None
    key: str
    value: Any
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None


class AuditEvent(_Record):
    id: int
    event_type: str
    agent_id: str
    session_id: str | None = None
    resource: str | None = None
    action: str | None = None
    result: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    timestamp: datetime


class Participant(_Record):
    session_id: str
    agent_id: str
    agent_type: str
    role: str
    joined_at: datetime


class SessionActivity(_Record):
    session_id: str
    message_count: int
    unique_senders: int
    last_message_at: datetime | None = None


class ActivityBucket(_Record):
    start: datetime
    event_type: str
    count: int


class SearchHit(_Record):
    message: Message
    score: float


class Page(_Record, Generic[T]):
    """One page of a keyset-paginated listing; ``next_cursor`` is None on the last."""

    items: list[T]
    next_cursor: str | None = None


class OffsetPage(_Record, Generic[T]):
    """One numbered page of a listing, for screens with page numbers.

    ``number`` counts from 1; ``total`` is the number of rows the listing
    matched when the page was read. Keyset pages (:class:`Page`) are cheaper
    far into a long listing and stable while rows are added; numbered pages
    let a screen jump to any page.
    """

    items: list[T]
    total: int
    number: int
    size: int

    @property
    def has_next(self) -> bool:
        """A page after this one holds rows."""
        return self.number * self.size < self.total

    @property
    def has_prev(self) -> bool:
        """This is not the first page."""
        return self.number > 1


class PoolStats(_Record):
    size: int
    checked_in: int
    checked_out: int
    overflow: int


class ReplicaHealth(_Record):
    url: str
    ok: bool
    latency_ms: float | None = None
    lag_ms: float | None = None
    error: str | None = None


class HealthReport(_Record):
    ok: bool
    backend: str
    dialect: str
    latency_ms: float | None = None
    server_version: str | None = None
    schema_revision: str | None = None
    schema_current: bool = False
    pool: PoolStats | None = None
    error: str | None = None
    replicas: list[ReplicaHealth] = Field(default_factory=list)
