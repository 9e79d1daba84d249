"""CoreParticipantRepository: who takes part in which session."""

from __future__ import annotations

import builtins
import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, delete, select

from .. import _validate
from .._execute import Query
from .._facts import utcnow
from ..errors import _in_terms, no_session
from ..models import Participant, Session
from ..schema import session_participants, sessions
from ._common import CoreRepository
from ._records import PARTICIPANT_COLUMNS, SESSION_COLUMNS, participant_from, session_from

if TYPE_CHECKING:
    from .._dialects import Dialect
    from .._execute import Executor

#: the columns a membership is written with
_WRITTEN = tuple(column.name for column in PARTICIPANT_COLUMNS)

_MEMBERSHIP = (
    session_participants.c.session_id == bindparam("session_id"),
    session_participants.c.agent_id == bindparam("agent_id"),
)
#: the stored membership of an agent in a session
_STORED = Query(select(*PARTICIPANT_COLUMNS).where(*_MEMBERSHIP))
_LEAVE = Query(delete(session_participants).where(*_MEMBERSHIP))
_LIST = Query(
    select(*PARTICIPANT_COLUMNS)
    .where(session_participants.c.session_id == bindparam("session_id"))
    .order_by(session_participants.c.joined_at, session_participants.c.agent_id)
)


@functools.cache
def _join_query(dialect: Dialect) -> Query:
    """``join``'s insert-if-absent, built once per dialect; bind parameters
    ``set_<column>`` for every value."""
    values = {
        name: bindparam(f"set_{name}", type_=session_participants.c[name].type) for name in _WRITTEN
    }
    stmt = dialect.upsert(
        session_participants, values, conflict=("session_id", "agent_id"), update=()
    )
    return Query(stmt)


@functools.cache
def _sessions_query(by_activity: bool) -> Query:
    """``sessions_for``'s statement, per shape (bind parameters ``agent_id``
    and, filtering on activity, ``active``)."""
    stmt: Select[Any] = select(*SESSION_COLUMNS).select_from(
        sessions.join(
            session_participants,
            (session_participants.c.session_id == sessions.c.id)
            & (session_participants.c.agent_id == bindparam("agent_id")),
        )
    )
    if by_activity:
        stmt = stmt.where(sessions.c.is_active == bindparam("active"))
    return Query(stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc()))


class CoreParticipantRepository(CoreRepository):
    async def join(
        self,
        session_id: str,
        agent_id: str,
        *,
        agent_type: str = "generic",
        role: str = "member",
    ) -> Participant:
        row = {
            "session_id": _validate.name("session_id", session_id),
            "agent_id": _validate.name("agent_id", agent_id),
            "agent_type": _validate.name("agent_type", agent_type),
            "role": _validate.name("role", role),
            "joined_at": utcnow(),
        }
        upsert = _join_query(self._dialect)
        params = {f"set_{name}": row[name] for name in _WRITTEN}
        key = {"session_id": session_id, "agent_id": agent_id}

        async def work(executor: Executor) -> Participant:
            # insert if absent: joining twice keeps the first membership as it was
            await executor.execute(upsert, params)
            stored = await executor.row(_STORED, key)
            if stored is None:
                raise RuntimeError("the membership just written could not be read back")
            return participant_from(stored)

        with _in_terms(missing=no_session(session_id)):
            return await self._db.perform(work, write=True, idempotent=True)

    async def leave(self, session_id: str, agent_id: str) -> bool:
        _validate.name("session_id", session_id)
        _validate.name("agent_id", agent_id)
        key = {"session_id": session_id, "agent_id": agent_id}

        async def work(executor: Executor) -> bool:
            return await executor.execute(_LEAVE, key) > 0

        return await self._db.perform(work, write=True)

    async def list(self, session_id: str) -> builtins.list[Participant]:
        _validate.name("session_id", session_id)
        rows = await self._db.read_rows(_LIST, {"session_id": session_id})
        return [participant_from(row) for row in rows]

    async def sessions_for(
        self, agent_id: str, *, active: bool | None = None
    ) -> builtins.list[Session]:
        _validate.name("agent_id", agent_id)
        _validate.optional_flag("active", active)
        params = {"agent_id": agent_id, "active": active}
        rows = await self._db.read_rows(_sessions_query(active is not None), params)
        return [session_from(row) for row in rows]
