"""CoreAuditRepository: the append-only audit log, its listing and activity buckets."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from .. import _cursor, _validate
from .._facts import utcnow
from ..models import ActivityBucket, AuditEvent, Page
from ..schema import audit_log
from ._common import CoreRepository, after
from ._records import first_key, to_event

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql.elements import ColumnElement

_KIND = "audit"
_COLUMNS = (
    audit_log.c.id,
    audit_log.c.timestamp,
    audit_log.c.event_type,
    audit_log.c.agent_id,
    audit_log.c.session_id,
    audit_log.c.resource,
    audit_log.c.action,
    audit_log.c.result,
    audit_log.c.metadata,
)


def _window(since: datetime | None, until: datetime | None) -> builtins.list[ColumnElement[bool]]:
    where = []
    if since is not None:
        where.append(audit_log.c.timestamp >= since)
    if until is not None:
        where.append(audit_log.c.timestamp < until)
    return where


class CoreAuditRepository(CoreRepository):
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
        row = {
            "event_type": _validate.name("event_type", event_type),
            "agent_id": _validate.name("agent_id", agent_id),
            "session_id": _validate.optional_name("session_id", session_id),
            "resource": _validate.optional_name("resource", resource),
            "action": _validate.optional_name("action", action),
            "result": _validate.optional_name("result", result),
            "metadata": _validate.metadata(metadata),
            "timestamp": utcnow(),
        }
        token = uuid.uuid4().hex
        recorded = select(audit_log.c.id).where(audit_log.c.client_token == token)

        async def work(conn: AsyncConnection) -> AuditEvent:
            inserted = await conn.execute(insert(audit_log), {**row, "client_token": token})
            return AuditEvent(id=first_key(inserted.inserted_primary_key), **row)

        async def recover(conn: AsyncConnection) -> AuditEvent | None:
            done = (await conn.execute(recorded)).scalar()
            return None if done is None else AuditEvent(id=done, **row)

        # one INSERT: it commits itself, and a retry finds it by its token
        return await self._db.run(work, write=True, autocommit=True, recover=recover)

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
        stmt = select(*_COLUMNS).where(*_window(since, until))
        if agent_id is not None:
            stmt = stmt.where(audit_log.c.agent_id == agent_id)
        if session_id is not None:
            stmt = stmt.where(audit_log.c.session_id == session_id)
        if event_type is not None:
            stmt = stmt.where(audit_log.c.event_type == event_type)
        if cursor is not None:
            position = _cursor.decode(cursor, _KIND, scope)
            stmt = stmt.where(
                after(position, audit_log.c.timestamp, audit_log.c.id, descending=True)
            )
        stmt = stmt.order_by(audit_log.c.timestamp.desc(), audit_log.c.id.desc()).limit(limit + 1)
        items = [to_event(row) for row in await self._db.fetch_all(stmt)]
        return _cursor.page(items, limit, _KIND, scope, lambda e: (e.timestamp, e.id))

    async def activity(
        self,
        *,
        bucket: str = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
        agent_id: str | None = None,
    ) -> builtins.list[ActivityBucket]:
        _validate.bucket(bucket)
        _validate.optional_aware("since", since)
        _validate.optional_aware("until", until)
        _validate.optional_name("agent_id", agent_id)
        start = self._dialect.time_bucket(audit_log.c.timestamp, bucket).label("start")
        stmt = select(start, audit_log.c.event_type, func.count().label("count")).where(
            *_window(since, until)
        )
        if agent_id is not None:
            stmt = stmt.where(audit_log.c.agent_id == agent_id)
        stmt = stmt.group_by(start, audit_log.c.event_type).order_by(start, audit_log.c.event_type)
        return [
            ActivityBucket(
                start=row["start"], event_type=row["event_type"], count=int(row["count"])
            )
            for row in await self._db.fetch_all(stmt)
        ]
