"""Rows to records: one mapping per table, shared by every Core repository that reads it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models import AuditEvent, MemoryEntry, Message, Participant, Session

if TYPE_CHECKING:
    from sqlalchemy.engine import RowMapping

__all__ = ["first_key", "to_entry", "to_event", "to_message", "to_participant", "to_session"]


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
