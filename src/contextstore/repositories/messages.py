"""CoreMessageRepository: messages on SQLAlchemy Core (keyset pages, search, feed)."""

from __future__ import annotations

import builtins
import functools
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Select, bindparam, func, insert, select, true

from .. import _cursor, _validate
from .._execute import Query
from .._facts import utcnow
from ..errors import NotFoundError, ValidationError
from ..models import Message, NewMessage, Page, SearchHit, Viewer
from ..schema import messages, session_participants
from ._common import CoreRepository, after, after_param
from ._records import MESSAGE_COLUMNS, first_key, message_from, to_message
from ._visibility import VISIBLE_TO_VIEWER, viewer_params, visible_to

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .._dialects import Dialect
    from .._execute import Executor

_COLUMNS = MESSAGE_COLUMNS
#: the columns a new message is written with
_WRITTEN = (*(column.name for column in MESSAGE_COLUMNS[1:]), "client_token")


class CoreMessageRepository(CoreRepository):
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
    ) -> Message:
        _validate.name("session_id", session_id)
        item = NewMessage.model_construct(
            sender=sender,
            content=content,
            sender_type=sender_type,
            visibility=visibility,
            message_type=message_type,
            metadata=metadata,
            parent_message_id=parent_message_id,
        )
        return (await self._insert(session_id, [_validate.new_message(session_id, item)]))[0]

    async def add_many(
        self, session_id: str, messages: Sequence[NewMessage]
    ) -> builtins.list[Message]:
        _validate.name("session_id", session_id)
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise ValidationError("messages: expected a sequence of NewMessage")
        rows = [_validate.new_message(session_id, item) for item in messages]
        if not rows:
            return []
        return await self._insert(session_id, rows)

    async def _insert(self, session_id: str, rows: list[dict[str, Any]]) -> builtins.list[Message]:
        """Insert ``rows`` in one transaction, idempotently: each row carries a token
        generated once, so a retry after a lost COMMIT finds the rows instead of
        inserting them twice."""
        now = utcnow()
        for row in rows:
            row["timestamp"] = now
            row["client_token"] = uuid.uuid4().hex
        tokens = [row["client_token"] for row in rows]
        parents = {row["parent_message_id"] for row in rows} - {None}

        async def work(conn: AsyncConnection) -> builtins.list[Message]:
            if parents:
                found = (
                    await conn.execute(
                        select(messages.c.id).where(
                            messages.c.id.in_(parents), messages.c.session_id == session_id
                        )
                    )
                ).scalars()
                missing = parents - set(found)
                if missing:
                    raise NotFoundError(
                        f"parent message {min(missing)} does not exist in session {session_id!r}"
                    )
            bulk = await self._dialect.bulk_insert(conn, messages, rows)
            if bulk is not None:
                ids = bulk
            elif len(rows) == 1:
                result = await conn.execute(insert(messages), rows[0])
                ids = [first_key(result.inserted_primary_key)]
            else:
                # RETURNING without sort_by_parameter_order: SQLite cannot batch
                # an ordered RETURNING (one INSERT per row); the rows come back
                # in any order and are matched to their input by token instead
                result = await conn.execute(_INSERT_RETURNING_TOKEN, rows)
                by_token = {token: row_id for row_id, token in result.all()}
                if len(by_token) != len(rows):
                    raise RuntimeError("the database returned no id for some inserted rows")
                ids = [by_token[token] for token in tokens]
            return [_message(row_id, row) for row_id, row in zip(ids, rows, strict=True)]

        if len(rows) == 1 and not parents:
            return [await self._insert_one(rows[0])]

        async def recover(conn: AsyncConnection) -> builtins.list[Message] | None:
            return await self._by_tokens(conn, tokens)

        return await self._db.run(work, write=True, recover=recover)

    async def _insert_one(self, row: dict[str, Any]) -> Message:
        """One message: one INSERT that commits itself; a retry after a lost
        acknowledgement finds it by its token instead of inserting it twice."""
        token = row["client_token"]

        async def work(executor: Executor) -> Message:
            row_id = await executor.value(_INSERT_ONE, row)
            if row_id is None:
                raise RuntimeError("the database reported no generated id for the insert")
            return _message(int(row_id), row)

        async def recover(executor: Executor) -> Message | None:
            found = await executor.row(_BY_TOKEN, {"token": token})
            return None if found is None else message_from(found)

        return await self._db.perform(work, write=True, autocommit=True, recover=recover)

    @staticmethod
    async def _by_tokens(conn: AsyncConnection, tokens: list[str]) -> builtins.list[Message] | None:
        """The rows of an earlier attempt that did commit, in input order; None if absent."""
        found: dict[str, Message] = {}
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            stmt = select(*_COLUMNS, messages.c.client_token).where(
                messages.c.client_token.in_(chunk)
            )
            for row in (await conn.execute(stmt)).mappings():
                found[row["client_token"]] = to_message(row)
        if not found:
            return None
        return [found[token] for token in tokens]

    async def get(self, message_id: int, *, viewer: Viewer) -> Message | None:
        _validate.row_id("message_id", message_id)
        _validate.viewer(viewer)
        params = viewer_params(viewer)
        params["message_id"] = message_id
        row = await self._db.read_row(_get_query(viewer.is_admin), params)
        return None if row is None else message_from(row)

    async def list(
        self,
        session_id: str,
        *,
        viewer: Viewer,
        limit: int = 50,
        cursor: str | None = None,
        order: str = "asc",
        sender: str | None = None,
    ) -> Page[Message]:
        _validate.name("session_id", session_id)
        _validate.viewer(viewer)
        _validate.limit(limit)
        _validate.order(order)
        _validate.optional_name("sender", sender)
        scope = _cursor.scope(session_id, order, sender)
        params = viewer_params(viewer)
        params.update(session_id=session_id, sender=sender, limit=limit + 1)
        if cursor is not None:
            params["after_time"], params["after_id"] = _cursor.decode(cursor, "messages", scope)
        query = _list_query(
            self._dialect, viewer.is_admin, sender is not None, cursor is not None, order == "desc"
        )
        items = [message_from(row) for row in await self._db.read_rows(query, params)]
        return _cursor.page(items, limit, "messages", scope, lambda m: (m.timestamp, m.id))

    async def count(self, session_id: str, *, viewer: Viewer) -> int:
        _validate.name("session_id", session_id)
        _validate.viewer(viewer)
        stmt = (
            select(func.count())
            .select_from(messages)
            .where(messages.c.session_id == session_id, visible_to(viewer))
        )
        return int(await self._db.fetch_value(stmt) or 0)

    async def search(
        self,
        query: str,
        *,
        viewer: Viewer,
        session_id: str | None = None,
        limit: int = 20,
    ) -> builtins.list[SearchHit]:
        _validate.search_query(query)
        _validate.viewer(viewer)
        _validate.optional_name("session_id", session_id)
        _validate.limit(limit)
        filters = [visible_to(viewer)]
        if session_id is not None:
            filters.append(messages.c.session_id == session_id)
        stmt = self._dialect.search_statement(messages, _COLUMNS, query, filters, limit)
        if stmt is None:
            return []  # no searchable words in the query
        rows = await self._db.fetch_all(stmt)
        return [SearchHit(message=to_message(row), score=float(row["score"])) for row in rows]

    async def feed(
        self, *, viewer: Viewer, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        _validate.viewer(viewer)
        _validate.limit(limit)
        scope = _cursor.scope(viewer.agent_id)
        stmt = (
            select(*_COLUMNS)
            .select_from(
                messages.join(
                    session_participants,
                    (session_participants.c.session_id == messages.c.session_id)
                    & (session_participants.c.agent_id == viewer.agent_id),
                )
            )
            .where(visible_to(viewer))
        )
        if cursor is not None:
            position = _cursor.decode(cursor, "feed", scope)
            stmt = stmt.where(after(position, messages.c.timestamp, messages.c.id, descending=True))
        stmt = stmt.order_by(messages.c.timestamp.desc(), messages.c.id.desc()).limit(limit + 1)
        items = [to_message(row) for row in await self._db.fetch_all(stmt)]
        return _cursor.page(items, limit, "feed", scope, lambda m: (m.timestamp, m.id))


def _message(row_id: int, row: dict[str, Any]) -> Message:
    """The record of a row just written (the values as validated, and its new id)."""
    return Message(id=row_id, **{k: v for k, v in row.items() if k != "client_token"})


@functools.cache
def _get_query(admin: bool) -> Query:
    """``get``'s statement, built and compiled once per shape."""
    return Query(
        select(*_COLUMNS).where(
            messages.c.id == bindparam("message_id"), true() if admin else VISIBLE_TO_VIEWER
        )
    )


#: one new message, returning its id (bind parameters: the written columns)
_INSERT_ONE = Query(insert(messages).returning(messages.c.id), column_keys=_WRITTEN)
#: the message written by the call with this token
_BY_TOKEN = Query(select(*_COLUMNS).where(messages.c.client_token == bindparam("token")))


#: every row a single INSERT: its new id and its token (see ``_insert``).
_INSERT_RETURNING_TOKEN = insert(messages).returning(messages.c.id, messages.c.client_token)

#: the index every listing of a session walks: equality on the session, then
#: the keyset range on (timestamp, id).
_SESSION_INDEX = next(
    str(index.name)
    for index in messages.indexes
    if [c.name for c in index.columns] == ["session_id", "timestamp", "id"]
)


@functools.cache
def _list_query(
    dialect: Dialect, admin: bool, by_sender: bool, resumed: bool, descending: bool
) -> Query:
    """``list``'s statement, built and compiled once per dialect and shape."""
    stmt: Select[Any] = select(*_COLUMNS).where(
        messages.c.session_id == bindparam("session_id"),
        true() if admin else VISIBLE_TO_VIEWER,
    )
    if by_sender:
        stmt = stmt.where(messages.c.sender == bindparam("sender"))
    if resumed:
        stmt = stmt.where(after_param(messages.c.timestamp, messages.c.id, descending=descending))
    if descending:
        stmt = stmt.order_by(messages.c.timestamp.desc(), messages.c.id.desc())
    else:
        stmt = stmt.order_by(messages.c.timestamp, messages.c.id)
    stmt = dialect.prefer_index(stmt, messages, _SESSION_INDEX)
    return Query(stmt.limit(bindparam("limit", type_=Integer)))
