"""One Protocol per repository: the contract both backends implement.

The contract suite (``tests/contract``) is written against these; DESIGN.md
is the prose version. Method names say what happens on absence: ``get``
returns None, ``update`` raises ``NotFoundError``, ``delete``/``leave``
return False.

Behaviour where DESIGN.md is silent (both backends do exactly this):

- All "now" timestamps are generated in Python (datetime.now(UTC)), microsecond precision, returned
  aware UTC.
- Validation (src/contextstore/_validate.py, shared by both backends, runs before any SQL):
  ids/names (session_id, agent_id, sender, sender_type, message_type, purpose, created_by, key,
  event_type, agent_type, role, resource, action, result) 1-255 chars, not blank, no NUL, stored
  exactly as given (no stripping; "k" and "k " are different keys); content 1-100,000 chars;
  metadata None→{} else a dict with str keys, JSON-serialisable, ≤ 64 KiB serialised, no NUL
  anywhere; memory value any JSON value (None, False, 0, "", [] are values distinct from absent), ≤
  1 MiB serialised; ttl None or seconds/timedelta in [1 s, 1 year]; limit int 1-1000 (bool
  rejected); visibility in public/private/agent_only/admin_only; bucket in minute/hour/day; order
  asc/desc; naive datetimes rejected; message ids positive 64-bit ints; is_active/active bool or
  None; search query 1-1000 chars not blank. Errors are contextstore.ValidationError.
- sessions.create: session_id optional (uuid4 hex generated); taken id → ConflictError. is_active
  True, metadata {} default, created_at == updated_at.
- sessions.get → None if absent. sessions.list: newest first, keyset on (created_at DESC, id DESC),
  filters created_by / active; cursor opaque, bound to the listing (filters included) — a cursor
  from another listing → ValidationError.
- sessions.update: missing → NotFoundError; only the given fields change; updated_at bumped when
  something changed; no fields → returns the session unchanged.
- sessions.delete → True/False; cascades messages, memory, participants; audit rows stay with
  session_id NULL. Atomic.
- sessions.activity(session_id): missing session → NotFoundError; message_count (all messages, no
  viewer), unique_senders, last_message_at (None when no messages).
- messages.add: missing session → NotFoundError; parent_message_id missing or in another session →
  NotFoundError; timestamp = now.
- messages.add_many: validates every item first (any bad item → ValidationError, nothing written);
  all-or-nothing; returns the Messages in input order with ids ascending; empty list → [] with no
  SQL. Missing session → NotFoundError.
- Visibility (one SQL predicate on every read path get/list/count/search/feed): public → everyone;
  private → sender only; agent_only → sender and viewers whose agent_type == message.sender_type;
  admin_only → sender and admins; admins (Viewer.is_admin) see everything. Invisible == missing
  (get → None).
- messages.list(session_id, viewer, limit, cursor, order asc|desc, sender=None): keyset pages on
  (timestamp, id) in the given order; a missing session → empty page; rows with equal timestamps
  neither skipped nor repeated. next_cursor None on the last page (a page shorter than limit, or
  exactly at the end — implementation fetches limit+1).
- messages.count: visible messages of the session.
- messages.search(query, viewer, session_id=None, limit=20): full-text over content, best first
  with float score (higher = better), visible messages only; any query string (quotes, operators,
  `*`, `NEAR(`, stopwords only, SQL-looking text) is safe: no driver error, it just returns what
  matches its plain words (possibly []). Words are matched case-insensitively as whole words;
  contract tests should use distinctive words of ≥ 4 letters that are not stopwords (MariaDB
  FULLTEXT has a min token size and stopwords).
- messages.feed(viewer, limit, cursor): newest first (timestamp DESC, id DESC) across every session
  the viewer is a participant of (admins too: only sessions they joined, but they see every
  visibility there).
- memory.set: upsert on (agent_id, session_id or global, key); ttl → expires_at = now + ttl, None →
  never expires; overwrite=False and a live entry exists → ConflictError (expired counts as absent
  and is replaced); created_at kept when an existing row is overwritten, updated_at = now;
  session_id of a missing session → NotFoundError.
- memory.get → None if absent or expired (before any purge). memory.list(agent_id, session_id=None,
  prefix=None, limit=100): live entries of exactly that scope (None = global only), ordered by key;
  prefix matched literally and case-sensitively (`%`, `_`, backslash are plain characters).
  memory.delete → True only if a live entry was deleted.
  memory.purge_expired → number of expired rows removed.
  Memory is readable only through its owner's agent_id.
- audit.record: returns the event; session_id of a missing session → NotFoundError. audit.list:
  newest first (timestamp DESC, id DESC), filters agent_id/session_id/event_type, since inclusive,
  until exclusive; keyset cursor bound to the filters. audit.activity(bucket, since, until,
  agent_id): list of ActivityBucket(start aware UTC truncated to the bucket, event_type, count)
  ordered by start ASC then event_type ASC.
- participants.join: idempotent (an existing membership is returned unchanged, no error); missing
  session → NotFoundError. leave → True/False. list → in join order (joined_at, agent_id).
  sessions_for(agent_id, active=None) → sessions newest first (created_at DESC, id DESC).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ..models import (
    ActivityBucket,
    AuditEvent,
    MemoryEntry,
    Message,
    NewMessage,
    Page,
    Participant,
    SearchHit,
    Session,
    SessionActivity,
    Viewer,
)

__all__ = [
    "AuditRepository",
    "MemoryRepository",
    "MessageRepository",
    "ParticipantRepository",
    "SessionRepository",
]


@runtime_checkable
class SessionRepository(Protocol):
    async def create(
        self,
        *,
        purpose: str,
        created_by: str,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session: ...

    async def get(self, session_id: str) -> Session | None: ...

    async def list(
        self,
        *,
        created_by: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        """Newest first (``created_at``, then id, descending)."""
        ...

    async def update(
        self,
        session_id: str,
        *,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
        is_active: bool | None = None,
    ) -> Session: ...

    async def delete(self, session_id: str) -> bool: ...

    async def activity(self, session_id: str) -> SessionActivity: ...


@runtime_checkable
class MessageRepository(Protocol):
    async def add(
        self,
        session_id: str,
        *,
        sender: str,
        content: str,
        sender_type: str = "generic",
        visibility: str = "public",
        message_type: str = "agent_response",
        metadata: dict[str, Any] | None = None,
        parent_message_id: int | None = None,
    ) -> Message: ...

    async def add_many(
        self, session_id: str, messages: Sequence[NewMessage]
    ) -> builtins.list[Message]: ...

    async def get(self, message_id: int, *, viewer: Viewer) -> Message | None: ...

    async def list(
        self,
        session_id: str,
        *,
        viewer: Viewer,
        limit: int = 50,
        cursor: str | None = None,
        order: str = "asc",
        sender: str | None = None,
    ) -> Page[Message]: ...

    async def count(self, session_id: str, *, viewer: Viewer) -> int: ...

    async def search(
        self,
        query: str,
        *,
        viewer: Viewer,
        session_id: str | None = None,
        limit: int = 20,
    ) -> builtins.list[SearchHit]: ...

    async def feed(
        self, *, viewer: Viewer, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]: ...


@runtime_checkable
class MemoryRepository(Protocol):
    async def set(
        self,
        agent_id: str,
        key: str,
        value: Any,
        *,
        session_id: str | None = None,
        ttl: float | timedelta | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = True,
    ) -> MemoryEntry: ...

    async def get(
        self, agent_id: str, key: str, *, session_id: str | None = None
    ) -> MemoryEntry | None: ...

    async def list(
        self,
        agent_id: str,
        *,
        session_id: str | None = None,
        prefix: str | None = None,
        limit: int = 100,
    ) -> builtins.list[MemoryEntry]:
        """Live entries of one scope, ordered by key."""
        ...

    async def delete(self, agent_id: str, key: str, *, session_id: str | None = None) -> bool: ...

    async def purge_expired(self) -> int: ...


@runtime_checkable
class AuditRepository(Protocol):
    async def record(
        self,
        event_type: str,
        *,
        agent_id: str,
        session_id: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        result: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditEvent: ...

    async def list(
        self,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """Newest first; ``since`` inclusive, ``until`` exclusive."""
        ...

    async def activity(
        self,
        *,
        bucket: str = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
        agent_id: str | None = None,
    ) -> builtins.list[ActivityBucket]:
        """Counts per (bucket start, event type), oldest bucket first."""
        ...


@runtime_checkable
class ParticipantRepository(Protocol):
    async def join(
        self,
        session_id: str,
        agent_id: str,
        *,
        agent_type: str = "generic",
        role: str = "member",
    ) -> Participant: ...

    async def leave(self, session_id: str, agent_id: str) -> bool: ...

    async def list(self, session_id: str) -> builtins.list[Participant]:
        """In join order."""
        ...

    async def sessions_for(
        self, agent_id: str, *, active: bool | None = None
    ) -> builtins.list[Session]:
        """Newest first."""
        ...
