"""Rows to records: one mapping per table, shared by every Core repository that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import AuditEvent, MemoryEntry, Message, Participant, Session, trusted
from ..schema import agent_memory, messages, sessions

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import RowMapping

__all__ = [
    "ENTRY_COLUMNS",
    "MESSAGE_COLUMNS",
    "SESSION_COLUMNS",
    "entry_from",
    "first_key",
    "message_from",
    "session_from",
    "to_entry",
    "to_event",
    "to_message",
    "to_participant",
    "to_session",
]

#: the columns a record is read from, in the order of the ``*_from`` mappers
#: (which take rows of the execution core: values by position).
SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.purpose,
    sessions.c.created_by,
    sessions.c.metadata,
    sessions.c.is_active,
    sessions.c.created_at,
    sessions.c.updated_at,
)
MESSAGE_COLUMNS = (
    messages.c.id,
    messages.c.session_id,
    messages.c.sender,
    messages.c.sender_type,
    messages.c.content,
    messages.c.visibility,
    messages.c.message_type,
    messages.c.metadata,
    messages.c.parent_message_id,
    messages.c.timestamp,
)
ENTRY_COLUMNS = (
    agent_memory.c.agent_id,
    agent_memory.c.session_id,
    agent_memory.c.key,
    agent_memory.c.value,
    agent_memory.c.metadata,
    agent_memory.c.created_at,
    agent_memory.c.updated_at,
    agent_memory.c.expires_at,
)


# The ``*_from`` mappers build records from trusted rows (see
# ``models.trusted``); the values' types are the columns' (``int`` ids,
# aware datetimes, decoded JSON), with the two conversions the fields need.


def session_from(row: Sequence[Any]) -> Session:
    return trusted(
        Session,
        {
            "id": row[0],
            "purpose": row[1],
            "created_by": row[2],
            "metadata": row[3] or {},
            "is_active": bool(row[4]),
            "created_at": row[5],
            "updated_at": row[6],
        },
    )


def message_from(row: Sequence[Any]) -> Message:
    return trusted(
        Message,
        {
            "id": row[0],
            "session_id": row[1],
            "sender": row[2],
            "sender_type": row[3],
            "content": row[4],
            "visibility": row[5],
            "message_type": row[6],
            "metadata": row[7] or {},
            "parent_message_id": row[8],
            "timestamp": row[9],
        },
    )


def entry_from(row: Sequence[Any]) -> MemoryEntry:
    return trusted(
        MemoryEntry,
        {
            "agent_id": row[0],
            "session_id": row[1],
            "key": row[2],
            "value": row[3],
            "metadata": row[4] or {},
            "created_at": row[5],
            "updated_at": row[6],
            "expires_at": row[7],
        },
    )


def to_session(row: RowMapping) -> Session:
    return Session(
        id=row["id"],
        purpose=row["purpose"],
        created_by=row["created_by"],
        metadata=row["metadata"] or {},
        is_active=bool(row["is_active"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def to_message(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        sender=row["sender"],
        sender_type=row["sender_type"],
        content=row["content"],
        visibility=row["visibility"],
        message_type=row["message_type"],
        metadata=row["metadata"] or {},
        parent_message_id=row["parent_message_id"],
        timestamp=row["timestamp"],
    )


def to_entry(row: RowMapping) -> MemoryEntry:
    return MemoryEntry(
        agent_id=row["agent_id"],
        session_id=row["session_id"],
        key=row["key"],
        value=row["value"],
        metadata=row["metadata"] or {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def to_event(row: RowMapping) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        timestamp=row["timestamp"],
        event_type=row["event_type"],
        agent_id=row["agent_id"],
        session_id=row["session_id"],
        resource=row["resource"],
        action=row["action"],
        result=row["result"],
        metadata=row["metadata"] or {},
    )


def to_participant(row: RowMapping) -> Participant:
    return Participant(
        session_id=row["session_id"],
        agent_id=row["agent_id"],
        agent_type=row["agent_type"],
        role=row["role"],
        joined_at=row["joined_at"],
    )


def first_key(key: Any) -> int:
    """The generated id of a single-row insert."""
    if key is None or key[0] is None:
        raise RuntimeError("the database reported no generated id for the insert")
    return int(key[0])
