"""Legacy*Repository: the repository protocols on raw SQL over aiosqlite.

Each method validates with ``contextstore._validate`` (the same checks and
messages as core, before any SQL), runs statements from ``_sql`` on a
connection of its own, and maps rows to the same frozen models. Cursors are
built with ``contextstore._cursor`` under the same kinds and scopes as core,
so a cursor is valid on either backend for the same listing.
"""

from __future__ import annotations

import builtins
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from .. import _cursor, _validate
from .._facts import BUCKET_LAYOUT, fts5_query, search_text, utcnow
from ..errors import (
    ConflictError,
    NotFoundError,
    ValidationError,
    _in_terms,
    _memory_terms,
    key_taken,
    no_session,
)
from ..models import (
    ActivityBucket,
    AuditEvent,
    Bucket,
    MemoryEntry,
    Message,
    NewMessage,
    Order,
    Page,
    Participant,
    SearchHit,
    Session,
    SessionActivity,
    Viewer,
    Visibility,
)
from . import _sql
from ._db import (
    Database,
    from_db_json,
    from_db_time,
    optional_time,
    to_db_bool,
    to_db_json,
    to_db_time,
)

__all__ = [
    "LegacyAuditRepository",
    "LegacyMemoryRepository",
    "LegacyMessageRepository",
    "LegacyParticipantRepository",
    "LegacySessionRepository",
]


def _after(cursor: str | None, kind: str, scope: str) -> dict[str, Any]:
    """Keyset parameters for the rows after ``cursor`` (all None on the first page)."""
    if cursor is None:
        return {"after_time": None, "after_id": None}
    moment, row_id = _cursor.decode(cursor, kind, scope)
    return {"after_time": to_db_time(moment), "after_id": row_id}


def _viewer(viewer: Any) -> dict[str, Any]:
    """Validate ``viewer`` into the visibility parameters of ``_sql``."""
    viewer = _validate.viewer(viewer)
    return {
        "viewer_id": viewer.agent_id,
        "viewer_type": viewer.agent_type,
        "is_admin": int(viewer.is_admin),
    }


# -- row mapping ---------------------------------------------------------------


def _session(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        purpose=row["purpose"],
        created_by=row["created_by"],
        metadata=from_db_json(row["metadata"]) or {},
        is_active=bool(row["is_active"]),
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
    )


def _message(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        sender=row["sender"],
        sender_type=row["sender_type"],
        content=row["content"],
        visibility=row["visibility"],
        message_type=row["message_type"],
        metadata=from_db_json(row["metadata"]) or {},
        parent_message_id=row["parent_message_id"],
        timestamp=from_db_time(row["timestamp"]),
    )


def _memory(row: sqlite3.Row) -> MemoryEntry:
    return MemoryEntry(
        agent_id=row["agent_id"],
        session_id=row["session_id"],
        key=row["key"],
        value=from_db_json(row["value"]),
        metadata=from_db_json(row["metadata"]) or {},
        created_at=from_db_time(row["created_at"]),
        updated_at=from_db_time(row["updated_at"]),
        expires_at=optional_time(row["expires_at"]),
    )


def _audit(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        event_type=row["event_type"],
        agent_id=row["agent_id"],
        session_id=row["session_id"],
        resource=row["resource"],
        action=row["action"],
        result=row["result"],
        metadata=from_db_json(row["metadata"]) or {},
        timestamp=from_db_time(row["timestamp"]),
    )


def _participant(row: sqlite3.Row) -> Participant:
    return Participant(
        session_id=row["session_id"],
        agent_id=row["agent_id"],
        agent_type=row["agent_type"],
        role=row["role"],
        joined_at=from_db_time(row["joined_at"]),
    )


class _Repository:
    def __init__(self, db: Database) -> None:
        self._db = db


# -- sessions --------------------------------------------------------------------


class LegacySessionRepository(_Repository):
    async def create(
        self,
        *,
        purpose: str,
        created_by: str,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        row_id = (
            uuid.uuid4().hex if session_id is None else _validate.name("session_id", session_id)
        )
        purpose = _validate.name("purpose", purpose)
        created_by = _validate.name("created_by", created_by)
        metadata = _validate.metadata(metadata)
        now = utcnow()
        with _in_terms(taken=f"session {row_id!r} already exists"):
            async with self._db.writing() as conn:
                await conn.run(
                    _sql.SESSION_INSERT,
                    {
                        "id": row_id,
                        "purpose": purpose,
                        "created_by": created_by,
                        "metadata": to_db_json(metadata),
                        "is_active": 1,
                        "created_at": to_db_time(now),
                        "updated_at": to_db_time(now),
                    },
                )
        return Session(
            id=row_id,
            purpose=purpose,
            created_by=created_by,
            metadata=metadata,
            is_active=True,
            created_at=now,
            updated_at=now,
        )

    async def get(self, session_id: str) -> Session | None:
        _validate.name("session_id", session_id)
        async with self._db.reading() as conn:
            row = await conn.one(_sql.SESSION_GET, {"id": session_id})
        return None if row is None else _session(row)

    async def list(
        self,
        *,
        created_by: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        _validate.optional_name("created_by", created_by)
        _validate.optional_flag("active", active)
        _validate.limit(limit)
        scope = _cursor.scope(created_by, active)
        params = {
            "created_by": created_by,
            "active": to_db_bool(active),
            "limit": limit + 1,
            **_after(cursor, "sessions", scope),
        }
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.SESSION_PAGE, params)
        items = [_session(row) for row in rows]
        return _cursor.page(items, limit, "sessions", scope, lambda s: (s.created_at, s.id))

    async def update(
        self,
        session_id: str,
        *,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
        is_active: bool | None = None,
    ) -> Session:
        _validate.name("session_id", session_id)
        params = {
            "id": session_id,
            "purpose": _validate.optional_name("purpose", purpose),
            "metadata": None if metadata is None else to_db_json(_validate.metadata(metadata)),
            "is_active": to_db_bool(_validate.optional_flag("is_active", is_active)),
            "updated_at": to_db_time(utcnow()),
        }
        if purpose is None and metadata is None and is_active is None:
            async with self._db.reading() as conn:
                row = await conn.one(_sql.SESSION_GET, {"id": session_id})
        else:
            async with self._db.writing() as conn:
                await conn.run(_sql.SESSION_UPDATE, params)
                row = await conn.one(_sql.SESSION_GET, {"id": session_id})
        if row is None:
            raise NotFoundError(no_session(session_id))
        return _session(row)

    async def delete(self, session_id: str) -> bool:
        _validate.name("session_id", session_id)
        # messages, memory and participants go by ON DELETE CASCADE, audit rows
        # keep their row by ON DELETE SET NULL: one statement, atomic.
        async with self._db.writing() as conn:
            return await conn.run(_sql.SESSION_DELETE, {"id": session_id}) > 0

    async def activity(self, session_id: str, *, viewer: Viewer) -> SessionActivity:
        _validate.name("session_id", session_id)
        params = _viewer(viewer)
        params["id"] = session_id
        async with self._db.reading() as conn:
            row = await conn.one(_sql.SESSION_ACTIVITY, params)
        if row is None:
            raise NotFoundError(no_session(session_id))
        return SessionActivity(
            session_id=session_id,
            message_count=int(row["message_count"]),
            unique_senders=int(row["unique_senders"]),
            last_message_at=optional_time(row["last_message_at"]),
        )


# -- messages ------------------------------------------------------------------


class LegacyMessageRepository(_Repository):
    async def add(
        self,
        session_id: str,
        *,
        sender: str,
        content: str,
        sender_type: str = "generic",
        visibility: Visibility = "public",
        message_type: str = "agent_response",
        metadata: dict[str, Any] | None = None,
        parent_message_id: int | None = None,
    ) -> Message:
        _validate.name("session_id", session_id)
        row = _validate.message_row(
            session_id,
            sender=sender,
            sender_type=sender_type,
            content=content,
            visibility=visibility,
            message_type=message_type,
            metadata=metadata,
            parent_message_id=parent_message_id,
        )
        with _in_terms(missing=no_session(session_id)):
            return (await self._insert(session_id, [row]))[0]

    async def add_many(self, session_id: str, messages: Sequence[NewMessage]) -> list[Message]:
        _validate.name("session_id", session_id)
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise ValidationError("messages: expected a sequence of NewMessage")
        rows = _validate.new_messages(session_id, messages)
        if not rows:
            return []
        with _in_terms(missing=no_session(session_id)):
            return await self._insert(session_id, rows)

    async def _insert(self, session_id: str, rows: list[dict[str, Any]]) -> list[Message]:
        """Insert ``rows`` in one transaction, after checking their parents exist."""
        now = utcnow()
        # a parent hidden from the replying sender fails as a missing one
        parents = sorted(
            {
                (row["parent_message_id"], row["sender"], row["sender_type"])
                for row in rows
                if row["parent_message_id"] is not None
            }
        )
        created: list[Message] = []
        async with self._db.writing() as conn:
            for parent, sender, sender_type in parents:
                found = await conn.value(
                    _sql.MESSAGE_PARENT,
                    {
                        "id": parent,
                        "session_id": session_id,
                        "viewer_id": sender,
                        "viewer_type": sender_type,
                        "is_admin": 0,
                    },
                )
                if found is None:
                    raise NotFoundError(
                        f"parent message {parent} does not exist in session {session_id!r}"
                    )
            for row in rows:
                row_id = await conn.insert(
                    _sql.MESSAGE_INSERT,
                    {
                        **row,
                        "metadata": to_db_json(row["metadata"]),
                        "timestamp": to_db_time(now),
                        # core's normalisation, so either backend finds what the other wrote
                        "search_text": search_text(row["content"]),
                    },
                )
                created.append(Message(id=row_id, timestamp=now, **row))
        return created

    async def get(self, message_id: int, *, viewer: Viewer) -> Message | None:
        _validate.row_id("message_id", message_id)
        params = {"id": message_id, **_viewer(viewer)}
        async with self._db.reading() as conn:
            row = await conn.one(_sql.MESSAGE_GET, params)
        return None if row is None else _message(row)

    async def list(
        self,
        session_id: str,
        *,
        viewer: Viewer,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "asc",
        sender: str | None = None,
    ) -> Page[Message]:
        _validate.name("session_id", session_id)
        visibility = _viewer(viewer)
        _validate.limit(limit)
        _validate.order(order)
        _validate.optional_name("sender", sender)
        scope = _cursor.scope(session_id, order, sender)
        params = {
            "session_id": session_id,
            "sender": sender,
            "limit": limit + 1,
            **visibility,
            **_after(cursor, "messages", scope),
        }
        sql = _sql.MESSAGE_PAGE_DESC if order == "desc" else _sql.MESSAGE_PAGE_ASC
        async with self._db.reading() as conn:
            rows = await conn.all(sql, params)
        items = [_message(row) for row in rows]
        return _cursor.page(items, limit, "messages", scope, lambda m: (m.timestamp, m.id))

    async def count(self, session_id: str, *, viewer: Viewer) -> int:
        _validate.name("session_id", session_id)
        params = {"session_id": session_id, **_viewer(viewer)}
        async with self._db.reading() as conn:
            return int(await conn.value(_sql.MESSAGE_COUNT, params) or 0)

    async def search(
        self,
        query: str,
        *,
        viewer: Viewer,
        session_id: str | None = None,
        limit: int = 20,
    ) -> builtins.list[SearchHit]:
        _validate.search_query(query)
        visibility = _viewer(viewer)
        _validate.optional_name("session_id", session_id)
        _validate.limit(limit)
        match = fts5_query(query)
        if match is None:
            return []  # no searchable words in the query
        params = {"match": match, "session_id": session_id, "limit": limit, **visibility}
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.MESSAGE_SEARCH, params)
        return [SearchHit(message=_message(row), score=float(row["score"])) for row in rows]

    async def feed(
        self, *, viewer: Viewer, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        visibility = _viewer(viewer)
        _validate.limit(limit)
        scope = _cursor.scope(viewer.agent_id)
        params = {"limit": limit + 1, **visibility, **_after(cursor, "feed", scope)}
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.MESSAGE_FEED, params)
        items = [_message(row) for row in rows]
        return _cursor.page(items, limit, "feed", scope, lambda m: (m.timestamp, m.id))


# -- memory ----------------------------------------------------------------------


def _scope(session_id: str | None) -> str:
    """The value of the generated ``scope`` column: '' for global memory."""
    return "" if session_id is None else session_id


class LegacyMemoryRepository(_Repository):
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
    ) -> MemoryEntry:
        _validate.name("agent_id", agent_id)
        _validate.name("key", key)
        value = _validate.json_value(value)
        _validate.optional_name("session_id", session_id)
        lifetime = _validate.ttl(ttl)
        metadata = _validate.metadata(metadata)
        _validate.flag("overwrite", overwrite)
        now = utcnow()
        params = {
            "agent_id": agent_id,
            "session_id": session_id,
            "key": key,
            "value": to_db_json(value),
            "metadata": to_db_json(metadata),
            "now": to_db_time(now),
            "expires_at": None if lifetime is None else to_db_time(now + lifetime),
            "overwrite": int(overwrite),
        }
        where = {
            "agent_id": agent_id,
            "scope": _scope(session_id),
            "key": key,
            "now": params["now"],
        }
        with _memory_terms(agent_id, key, session_id):
            async with self._db.writing() as conn:
                if await conn.run(_sql.MEMORY_UPSERT, params) == 0:
                    raise ConflictError(key_taken(agent_id, key))
                row = await conn.one(_sql.MEMORY_GET, where)
        if row is None:  # pragma: no cover - written in this very transaction
            raise NotFoundError(f"memory key {key!r} vanished while being written")
        return _memory(row)

    async def get(
        self, agent_id: str, key: str, *, session_id: str | None = None
    ) -> MemoryEntry | None:
        _validate.name("agent_id", agent_id)
        _validate.name("key", key)
        _validate.optional_name("session_id", session_id)
        params = {
            "agent_id": agent_id,
            "scope": _scope(session_id),
            "key": key,
            "now": to_db_time(utcnow()),
        }
        async with self._db.reading() as conn:
            row = await conn.one(_sql.MEMORY_GET, params)
        return None if row is None else _memory(row)

    async def list(
        self,
        agent_id: str,
        *,
        session_id: str | None = None,
        prefix: str | None = None,
        limit: int = 100,
    ) -> list[MemoryEntry]:
        _validate.name("agent_id", agent_id)
        _validate.optional_name("session_id", session_id)
        # the same order as core (limit before prefix): the same first error
        _validate.limit(limit)
        if prefix is not None:
            _validate.name("prefix", prefix)
        params = {
            "agent_id": agent_id,
            "scope": _scope(session_id),
            "prefix": prefix,
            "now": to_db_time(utcnow()),
            "limit": limit,
        }
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.MEMORY_LIST, params)
        return [_memory(row) for row in rows]

    async def delete(self, agent_id: str, key: str, *, session_id: str | None = None) -> bool:
        _validate.name("agent_id", agent_id)
        _validate.name("key", key)
        _validate.optional_name("session_id", session_id)
        params = {
            "agent_id": agent_id,
            "scope": _scope(session_id),
            "key": key,
            "now": to_db_time(utcnow()),
        }
        async with self._db.writing() as conn:
            return await conn.run(_sql.MEMORY_DELETE, params) > 0

    async def purge_expired(self) -> int:
        async with self._db.writing() as conn:
            return await conn.run(_sql.MEMORY_PURGE, {"now": to_db_time(utcnow())})


# -- audit -------------------------------------------------------------------------


class LegacyAuditRepository(_Repository):
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
    ) -> AuditEvent:
        values = {
            "event_type": _validate.name("event_type", event_type),
            "agent_id": _validate.name("agent_id", agent_id),
            "session_id": _validate.optional_name("session_id", session_id),
            "resource": _validate.optional_name("resource", resource),
            "action": _validate.optional_name("action", action),
            "result": _validate.optional_name("result", result),
        }
        metadata = _validate.metadata(metadata)
        now = utcnow()
        missing = None if session_id is None else no_session(session_id)
        with _in_terms(missing=missing):
            async with self._db.writing() as conn:
                row_id = await conn.insert(
                    _sql.AUDIT_INSERT,
                    {**values, "metadata": to_db_json(metadata), "timestamp": to_db_time(now)},
                )
        return AuditEvent(id=row_id, metadata=metadata, timestamp=now, **values)

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
        _validate.optional_name("agent_id", agent_id)
        _validate.optional_name("session_id", session_id)
        _validate.optional_name("event_type", event_type)
        _validate.optional_aware("since", since)
        _validate.optional_aware("until", until)
        _validate.limit(limit)
        scope = _cursor.scope(agent_id, session_id, event_type, since, until)
        params = {
            "agent_id": agent_id,
            "session_id": session_id,
            "event_type": event_type,
            "since": None if since is None else to_db_time(since),
            "until": None if until is None else to_db_time(until),
            "limit": limit + 1,
            **_after(cursor, "audit", scope),
        }
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.AUDIT_PAGE, params)
        items = [_audit(row) for row in rows]
        return _cursor.page(items, limit, "audit", scope, lambda e: (e.timestamp, e.id))

    async def activity(
        self,
        *,
        bucket: Bucket = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
        agent_id: str | None = None,
    ) -> builtins.list[ActivityBucket]:
        _validate.bucket(bucket)
        _validate.optional_aware("since", since)
        _validate.optional_aware("until", until)
        _validate.optional_name("agent_id", agent_id)
        params = {
            "layout": BUCKET_LAYOUT[bucket],
            "agent_id": agent_id,
            "since": None if since is None else to_db_time(since),
            "until": None if until is None else to_db_time(until),
        }
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.AUDIT_ACTIVITY, params)
        return [
            ActivityBucket(
                start=from_db_time(row["start"]),
                event_type=row["event_type"],
                count=int(row["count"]),
            )
            for row in rows
        ]


# -- participants --------------------------------------------------------------------


class LegacyParticipantRepository(_Repository):
    async def join(
        self,
        session_id: str,
        agent_id: str,
        *,
        agent_type: str = "generic",
        role: str = "member",
    ) -> Participant:
        params = {
            "session_id": _validate.name("session_id", session_id),
            "agent_id": _validate.name("agent_id", agent_id),
            "agent_type": _validate.name("agent_type", agent_type),
            "role": _validate.name("role", role),
            "joined_at": to_db_time(utcnow()),
        }
        where = {"session_id": session_id, "agent_id": agent_id}
        with _in_terms(missing=no_session(session_id)):
            async with self._db.writing() as conn:
                # an existing membership is kept as it is (idempotent join)
                await conn.run(_sql.PARTICIPANT_JOIN, params)
                row = await conn.one(_sql.PARTICIPANT_GET, where)
        if row is None:  # pragma: no cover - written in this very transaction
            raise NotFoundError(no_session(session_id))
        return _participant(row)

    async def leave(self, session_id: str, agent_id: str) -> bool:
        _validate.name("session_id", session_id)
        _validate.name("agent_id", agent_id)
        where = {"session_id": session_id, "agent_id": agent_id}
        async with self._db.writing() as conn:
            return await conn.run(_sql.PARTICIPANT_LEAVE, where) > 0

    async def list(self, session_id: str) -> list[Participant]:
        _validate.name("session_id", session_id)
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.PARTICIPANT_LIST, {"session_id": session_id})
        return [_participant(row) for row in rows]

    async def sessions_for(
        self, agent_id: str, *, active: bool | None = None
    ) -> builtins.list[Session]:
        _validate.name("agent_id", agent_id)
        _validate.optional_flag("active", active)
        params = {"agent_id": agent_id, "active": to_db_bool(active)}
        async with self._db.reading() as conn:
            rows = await conn.all(_sql.PARTICIPANT_SESSIONS, params)
        return [_session(row) for row in rows]
