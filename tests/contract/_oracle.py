"""A pure-Python model of the contract, to check every backend against.

Each function restates one rule of DESIGN.md (and the semantics in
``contextstore.repositories.protocols``) without any database, so a test can
compute what a backend *should* return and compare the whole answer at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from contextstore import AuditEvent, Message, Session, Viewer


def can_see(viewer: Viewer, message: Message) -> bool:
    """The visibility rule: who may read ``message``."""
    if viewer.is_admin or message.visibility == "public":
        return True
    if message.sender == viewer.agent_id:
        return True  # the sender always sees what they sent
    if message.visibility == "agent_only":
        return viewer.agent_type == message.sender_type
    return False  # private and admin_only: nobody else


def visible(viewer: Viewer, messages: Iterable[Message]) -> list[Message]:
    return [m for m in messages if can_see(viewer, m)]


def message_key(message: Message) -> tuple[datetime, int]:
    """Keyset order of messages: (timestamp, id)."""
    return (message.timestamp, message.id)


def session_key(session: Session) -> tuple[datetime, str]:
    """Keyset order of sessions: (created_at, id)."""
    return (session.created_at, session.id)


def audit_key(event: AuditEvent) -> tuple[datetime, int]:
    """Keyset order of audit events: (timestamp, id)."""
    return (event.timestamp, event.id)


_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> set[str]:
    """Plain words (runs of letters and digits), case-folded."""
    return {w.casefold() for w in _WORD.findall(text)}


def contains_word(content: str, word: str) -> bool:
    """Whole-word, case-insensitive match of one distinctive search word."""
    return word.casefold() in words(content)


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """``moment`` truncated to the start of its minute, hour or day, in UTC."""
    moment = moment.astimezone(UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise AssertionError(f"unknown bucket {bucket!r}")


def is_utc(moment: datetime | None) -> bool:
    """Aware, with a zero UTC offset."""
    return moment is not None and moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def strict_json(value: Any) -> str:
    """A canonical text of a JSON value that tells False from 0 and [] from {}.

    Python says ``False == 0`` and ``1 == 1.0``; JSON round trips must not.
    Key order is ignored (keys are sorted).
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
