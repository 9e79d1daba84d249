"""Rows to records: one mapping per table, shared by every Core repository that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import AuditEvent, MemoryEntry, Message, Participant, Session, trusted, trusted_all
from ..schema import agent_memory, audit_log, messages, session_participants, sessions

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = [
    "ENTRY_COLUMNS",
    "EVENT_COLUMNS",
    "MESSAGE_COLUMNS",
    "PARTICIPANT_COLUMNS",
    "SESSION_COLUMNS",
    "entry_from",
    "event_from",
    "message_from",
    "messages_from",
    "participant_from",
    "session_from",
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
EVENT_COLUMNS = (
    audit_log.c.id,
    audit_log.c.event_type,
    audit_log.c.agent_id,
    audit_log.c.session_id,
    audit_log.c.resource,
    audit_log.c.action,
    audit_log.c.result,
    audit_log.c.metadata,
    audit_log.c.timestamp,
)
PARTICIPANT_COLUMNS = (
    session_participants.c.session_id,
    session_participants.c.agent_id,
    session_participants.c.agent_type,
    session_participants.c.role,
    session_participants.c.joined_at,
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


def _message_values(row: Sequence[Any]) -> dict[str, Any]:
    return {
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
    }


def messages_from(rows: Sequence[Sequence[Any]]) -> list[Message]:
    """:func:`message_from` of every row (a page), in one loop."""
    return trusted_all(Message, map(_message_values, rows))


def message_from(row: Sequence[Any]) -> Message:
    return trusted(Message, _message_values(row))


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


def event_from(row: Sequence[Any]) -> AuditEvent:
    return trusted(
        AuditEvent,
        {
            "id": row[0],
            "event_type": row[1],
            "agent_id": row[2],
            "session_id": row[3],
            "resource": row[4],
            "action": row[5],
            "result": row[6],
            "metadata": row[7] or {},
            "timestamp": row[8],
        },
    )


def participant_from(row: Sequence[Any]) -> Participant:
    return trusted(
        Participant,
        {
            "session_id": row[0],
            "agent_id": row[1],
            "agent_type": row[2],
            "role": row[3],
            "joined_at": row[4],
        },
    )
