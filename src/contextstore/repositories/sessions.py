"""CoreSessionRepository: sessions on SQLAlchemy Core."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, insert, select, update

from .. import _cursor, _validate
from .._execute import Query
from .._facts import utcnow
from ..errors import NotFoundError
from ..models import Page, Session, SessionActivity
from ..schema import messages, sessions
from ._common import CoreRepository, after
from ._records import SESSION_COLUMNS, session_from, to_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .._execute import Executor

_KIND = "sessions"

_GET = Query(select(*SESSION_COLUMNS).where(sessions.c.id == bindparam("session_id")))
_INSERT = Query(insert(sessions), column_keys=[column.name for column in SESSION_COLUMNS])


class CoreSessionRepository(CoreRepository):
    async def create(
        self,
        *,
        purpose: str,
        created_by: str,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        values = {
            "id": uuid.uuid4().hex
            if session_id is None
            else _validate.name("session_id", session_id),
            "purpose": _validate.name("purpose", purpose),
            "created_by": _validate.name("created_by", created_by),
            "metadata": _validate.metadata(metadata),
            "is_active": True,
        }
        now = utcnow()
        values["created_at"] = values["updated_at"] = now

        async def work(executor: Executor) -> None:
            await executor.execute(_INSERT, values)

        await self._db.perform(work, write=True)
        return Session(**values)

    async def get(self, session_id: str) -> Session | None:
        _validate.name("session_id", session_id)
        row = await self._db.read_row(_GET, {"session_id": session_id})
        return None if row is None else session_from(row)

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
        stmt = select(sessions)
        if created_by is not None:
            stmt = stmt.where(sessions.c.created_by == created_by)
        if active is not None:
            stmt = stmt.where(sessions.c.is_active == active)
        if cursor is not None:
            position = _cursor.decode(cursor, _KIND, scope)
            stmt = stmt.where(
                after(position, sessions.c.created_at, sessions.c.id, descending=True)
            )
        stmt = stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc()).limit(limit + 1)
        items = [to_session(row) for row in await self._db.fetch_all(stmt)]
        return _cursor.page(items, limit, _KIND, scope, lambda s: (s.created_at, s.id))

    async def update(
        self,
        session_id: str,
        *,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
        is_active: bool | None = None,
    ) -> Session:
        _validate.name("session_id", session_id)
        changes: dict[str, Any] = {}
        if purpose is not None:
            changes["purpose"] = _validate.name("purpose", purpose)
        if metadata is not None:
            changes["metadata"] = _validate.metadata(metadata)
        if is_active is not None:
            changes["is_active"] = _validate.flag("is_active", is_active)

        async def work(conn: AsyncConnection) -> Session:
            if changes:
                stmt = (
                    update(sessions)
                    .where(sessions.c.id == session_id)
                    .values(**changes, updated_at=utcnow())
                )
                if (await conn.execute(stmt)).rowcount == 0:
                    raise NotFoundError(f"session {session_id!r} does not exist")
            row = (
                (await conn.execute(select(sessions).where(sessions.c.id == session_id)))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"session {session_id!r} does not exist")
            return to_session(row)

        return await self._db.run(work, write=bool(changes))

    async def delete(self, session_id: str) -> bool:
        _validate.name("session_id", session_id)
        # messages, memory and participants go by ON DELETE CASCADE, audit rows
        # keep their row by ON DELETE SET NULL: one statement, atomic.
        return await self._db.execute(delete(sessions).where(sessions.c.id == session_id)) > 0

    async def activity(self, session_id: str) -> SessionActivity:
        _validate.name("session_id", session_id)
        stmt = (
            select(
                sessions.c.id,
                func.count(messages.c.id).label("message_count"),
                func.count(messages.c.sender.distinct()).label("unique_senders"),
                func.max(messages.c.timestamp).label("last_message_at"),
            )
            .select_from(sessions.outerjoin(messages, messages.c.session_id == sessions.c.id))
            .where(sessions.c.id == session_id)
            .group_by(sessions.c.id)
        )
        row = await self._db.fetch_one(stmt)
        if row is None:
            raise NotFoundError(f"session {session_id!r} does not exist")
        return SessionActivity(
            session_id=session_id,
            message_count=int(row["message_count"]),
            unique_senders=int(row["unique_senders"]),
            last_message_at=row["last_message_at"],
        )
