"""CoreParticipantRepository: who takes part in which session."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from .. import _validate
from .._facts import utcnow
from ..models import Participant, Session
from ..schema import session_participants, sessions
from ._common import CoreRepository
from ._records import to_participant, to_session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


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

        async def work(conn: AsyncConnection) -> Participant:
            # insert if absent: joining twice keeps the first membership as it was
            await conn.execute(
                self._dialect.upsert(
                    session_participants, row, conflict=("session_id", "agent_id"), update=()
                )
            )
            stored = (
                (
                    await conn.execute(
                        select(session_participants).where(
                            session_participants.c.session_id == session_id,
                            session_participants.c.agent_id == agent_id,
                        )
                    )
                )
                .mappings()
                .one()
            )
            return to_participant(stored)

        return await self._db.run(work, write=True, idempotent=True)

    async def leave(self, session_id: str, agent_id: str) -> bool:
        _validate.name("session_id", session_id)
        _validate.name("agent_id", agent_id)
        stmt = delete(session_participants).where(
            session_participants.c.session_id == session_id,
            session_participants.c.agent_id == agent_id,
        )
        return await self._db.execute(stmt) > 0

    async def list(self, session_id: str) -> builtins.list[Participant]:
        _validate.name("session_id", session_id)
        stmt = (
            select(session_participants)
            .where(session_participants.c.session_id == session_id)
            .order_by(session_participants.c.joined_at, session_participants.c.agent_id)
        )
        return [to_participant(row) for row in await self._db.fetch_all(stmt)]

    async def sessions_for(
        self, agent_id: str, *, active: bool | None = None
    ) -> builtins.list[Session]:
        _validate.name("agent_id", agent_id)
        _validate.optional_flag("active", active)
        stmt = select(sessions).join(
            session_participants,
            (session_participants.c.session_id == sessions.c.id)
            & (session_participants.c.agent_id == agent_id),
        )
        if active is not None:
            stmt = stmt.where(sessions.c.is_active == active)
        stmt = stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        return [to_session(row) for row in await self._db.fetch_all(stmt)]
