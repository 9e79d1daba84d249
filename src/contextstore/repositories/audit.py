"""CoreAuditRepository: the append-only audit log, its listing and activity buckets."""

from __future__ import annotations

import builtins
import functools
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Select, bindparam, func, insert, literal_column, select

from .. import _cursor, _validate
from .._execute import Query
from .._facts import utcnow
from ..errors import _in_terms, no_session
from ..models import ActivityBucket, AuditEvent, Bucket, Page, trusted
from ..schema import audit_log
from ._common import CoreRepository, after_param
from ._records import EVENT_COLUMNS, event_from

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from .._dialects import Dialect
    from .._execute import Executor

_KIND = "audit"
_COLUMNS = EVENT_COLUMNS
#: the columns a new event is written with
_WRITTEN = (*(column.name for column in EVENT_COLUMNS[1:]), "client_token")

#: one new event, returning its id (bind parameters: the written columns)
_INSERT = Query(insert(audit_log).returning(audit_log.c.id), column_keys=_WRITTEN)
#: the id of the event written by the call with this token
_BY_TOKEN = Query(select(audit_log.c.id).where(audit_log.c.client_token == bindparam("token")))


def _window(since: bool, until: bool) -> builtins.list[ColumnElement[bool]]:
    """The time window's predicates (bind parameters ``since`` and ``until``)."""
    where = []
    if since:
        where.append(audit_log.c.timestamp >= bindparam("since"))
    if until:
        where.append(audit_log.c.timestamp < bindparam("until"))
    return where


@functools.lru_cache(maxsize=512)
def _list_query(
    since: bool,
    until: bool,
    by_agent: bool,
    in_session: bool,
    by_type: bool,
    resumed: bool,
    limit: int,
) -> Query:
    """``list``'s statement, built and compiled once per shape and limit (the
    limit written into the SQL, as for messages)."""
    stmt: Select[Any] = select(*_COLUMNS).where(*_window(since, until))
    if by_agent:
        stmt = stmt.where(audit_log.c.agent_id == bindparam("agent_id"))
    if in_session:
        stmt = stmt.where(audit_log.c.session_id == bindparam("session_id"))
    if by_type:
        stmt = stmt.where(audit_log.c.event_type == bindparam("event_type"))
    if resumed:
        stmt = stmt.where(after_param(audit_log.c.timestamp, audit_log.c.id, descending=True))
    stmt = stmt.order_by(audit_log.c.timestamp.desc(), audit_log.c.id.desc())
    return Query(stmt.limit(literal_column(str(int(limit)), Integer)))


@functools.lru_cache(maxsize=512)
def _activity_query(
    dialect: Dialect, bucket: str, since: bool, until: bool, by_agent: bool
) -> Query:
    """``activity``'s statement, per dialect, bucket and shape; rows are
    (start, event_type, count)."""
    start = dialect.time_bucket(audit_log.c.timestamp, bucket).label("start")
    stmt = select(start, audit_log.c.event_type, func.count().label("count")).where(
        *_window(since, until)
    )
    if by_agent:
        stmt = stmt.where(audit_log.c.agent_id == bindparam("agent_id"))
    stmt = stmt.group_by(start, audit_log.c.event_type).order_by(start, audit_log.c.event_type)
    return Query(stmt)


def _event(row_id: int, row: dict[str, Any]) -> AuditEvent:
    """The record of an event just written: the values as validated, and its new
    id (built as a trusted record; the metadata as validation returns it: as a
    read returns it, in a dict of its own)."""
    return trusted(
        AuditEvent,
        {
            "id": row_id,
            "event_type": row["event_type"],
            "agent_id": row["agent_id"],
            "session_id": row["session_id"],
            "resource": row["resource"],
            "action": row["action"],
            "result": row["result"],
            "metadata": row["metadata"],
            "timestamp": row["timestamp"],
        },
    )


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
            "client_token": uuid.uuid4().hex,
        }

        async def work(executor: Executor) -> AuditEvent:
            row_id = await executor.value(_INSERT, row)
            if row_id is None:
                raise RuntimeError("the database reported no generated id for the insert")
            return _event(int(row_id), row)

        async def recover(executor: Executor) -> AuditEvent | None:
            done = await executor.value(_BY_TOKEN, {"token": row["client_token"]})
            return None if done is None else _event(int(done), row)

        # one INSERT: it commits itself, and a retry finds it by its token
        missing = None if session_id is None else no_session(session_id)
        with _in_terms(missing=missing):
            return await self._db.perform(work, write=True, autocommit=True, recover=recover)

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
        params: dict[str, Any] = {
            "agent_id": agent_id,
            "session_id": session_id,
            "event_type": event_type,
            "since": since,
            "until": until,
        }
        if cursor is not None:
            params["after_time"], params["after_id"] = _cursor.decode(cursor, _KIND, scope)
        query = _list_query(
            since is not None,
            until is not None,
            agent_id is not None,
            session_id is not None,
            event_type is not None,
            cursor is not None,
            limit + 1,
        )
        items = [event_from(row) for row in await self._db.read_rows(query, params)]
        return _cursor.page(items, limit, _KIND, scope, lambda e: (e.timestamp, e.id))

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
        query = _activity_query(
            self._dialect, bucket, since is not None, until is not None, agent_id is not None
        )
        params = {"since": since, "until": until, "agent_id": agent_id}
        return [
            trusted(ActivityBucket, {"start": row[0], "event_type": row[1], "count": int(row[2])})
            for row in await self._db.read_rows(query, params)
        ]
