"""CoreSessionRepository: sessions on SQLAlchemy Core."""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)

from .. import _cursor, _validate
from .._execute import Query
from .._facts import utcnow
from ..errors import NotFoundError, _in_terms, no_session
from ..models import Page, Session, SessionActivity, Viewer, trusted
from ..schema import messages, sessions
from ._common import CoreRepository, after_param
from ._records import SESSION_COLUMNS, session_from
from ._visibility import viewer_params, visible

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._execute import Executor

_KIND = "sessions"

_GET = Query(select(*SESSION_COLUMNS).where(sessions.c.id == bindparam("session_id")))
_INSERT = Query(insert(sessions), column_keys=[column.name for column in SESSION_COLUMNS])
#: one session and everything that belongs to it: messages, memory and
#: participants go by ON DELETE CASCADE, audit rows keep their row by ON
#: DELETE SET NULL (one statement, atomic)
_DELETE = Query(delete(sessions).where(sessions.c.id == bindparam("session_id")))
#: a session's message counts (no row: no such session)


@functools.lru_cache(maxsize=2)
def _activity_query(admin: bool) -> Query:
    """``activity``'s statement, per shape (bind parameters ``session_id`` and
    the viewer): the visibility rule sits in the join, so a session whose
    messages are all hidden still has its row, with nothing counted."""
    joined = sessions.outerjoin(
        messages, and_(messages.c.session_id == sessions.c.id, visible(admin))
    )
    return Query(
        select(
            sessions.c.id,
            func.count(messages.c.id).label("message_count"),
            func.count(messages.c.sender.distinct()).label("unique_senders"),
            func.max(messages.c.timestamp).label("last_message_at"),
        )
        .select_from(joined)
        .where(sessions.c.id == bindparam("session_id"))
        .group_by(sessions.c.id)
    )


@functools.lru_cache(maxsize=512)
def _list_query(by_creator: bool, by_active: bool, resumed: bool, limit: int) -> Query:
    """``list``'s statement, built and compiled once per shape and limit (bind
    parameters ``created_by``, ``active``, ``after_time``/``after_id``)."""
    stmt: Select[Any] = select(*SESSION_COLUMNS)
    if by_creator:
        stmt = stmt.where(sessions.c.created_by == bindparam("created_by"))
    if by_active:
        stmt = stmt.where(sessions.c.is_active == bindparam("active"))
    if resumed:
        stmt = stmt.where(after_param(sessions.c.created_at, sessions.c.id, descending=True))
    stmt = stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
    return Query(stmt.limit(literal_column(str(int(limit)), Integer)))


#: the columns ``update`` may change, in the order of its cache key
_UPDATABLE = ("purpose", "metadata", "is_active")


@functools.lru_cache(maxsize=512)
def _update_query(purpose: bool, metadata: bool, is_active: bool) -> Query:
    """``update``'s statement, once per set of changed columns (bind parameters
    ``set_<column>`` for each, ``set_updated_at`` and ``session_id``)."""
    changed = [
        name
        for name, present in zip(_UPDATABLE, (purpose, metadata, is_active), strict=True)
        if present
    ]
    values = {
        name: bindparam(f"set_{name}", type_=sessions.c[name].type)
        for name in (*changed, "updated_at")
    }
    return Query(update(sessions).where(sessions.c.id == bindparam("session_id")).values(values))


def _activity_from(session_id: str, row: Sequence[Any]) -> SessionActivity:
    return trusted(
        SessionActivity,
        {
            "session_id": session_id,
            "message_count": int(row[1]),
            "unique_senders": int(row[2]),
            "last_message_at": row[3],
        },
    )


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

        with _in_terms(taken=f"session {values['id']!r} already exists"):
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
        params: dict[str, Any] = {"created_by": created_by, "active": active}
        if cursor is not None:
            params["after_time"], params["after_id"] = _cursor.decode(cursor, _KIND, scope)
        query = _list_query(
            created_by is not None, active is not None, cursor is not None, limit + 1
        )
        items = [session_from(row) for row in await self._db.read_rows(query, params)]
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
        key = {"session_id": session_id}

        async def work(executor: Executor) -> Session:
            if changes:
                query = _update_query(*(name in changes for name in _UPDATABLE))
                params = {f"set_{name}": value for name, value in changes.items()}
                params["set_updated_at"] = utcnow()
                params["session_id"] = session_id
                if await executor.execute(query, params) == 0:
                    raise NotFoundError(no_session(session_id))
            row = await executor.row(_GET, key)
            if row is None:
                raise NotFoundError(no_session(session_id))
            return session_from(row)

        return await self._db.perform(work, write=bool(changes))

    async def delete(self, session_id: str) -> bool:
        _validate.name("session_id", session_id)
        key = {"session_id": session_id}

        async def work(executor: Executor) -> bool:
            return await executor.execute(_DELETE, key) > 0

        return await self._db.perform(work, write=True)

    async def activity(self, session_id: str, *, viewer: Viewer) -> SessionActivity:
        _validate.name("session_id", session_id)
        _validate.viewer(viewer)
        params = viewer_params(viewer)
        params["session_id"] = session_id
        row = await self._db.read_row(_activity_query(viewer.is_admin), params)
        if row is None:
            raise NotFoundError(no_session(session_id))
        return _activity_from(session_id, row)
