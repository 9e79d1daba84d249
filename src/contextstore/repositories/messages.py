"""CoreMessageRepository: messages on SQLAlchemy Core (keyset pages, search, feed)."""

from __future__ import annotations

import builtins
import functools
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Select, bindparam, func, insert, literal_column, select

from .. import _cursor, _validate
from .._execute import Query
from .._facts import collection_paused, search_text, utcnow
from ..errors import NotFoundError, ValidationError, _session_terms
from ..models import Message, NewMessage, Order, Page, SearchHit, Viewer, Visibility, trusted
from ..schema import messages, session_participants
from ._common import CoreRepository, after_param
from ._records import MESSAGE_COLUMNS, message_from, messages_from
from ._visibility import viewer_params, visible

if TYPE_CHECKING:
    from .._dialects import Dialect
    from .._execute import Executor, Form

_COLUMNS = MESSAGE_COLUMNS
#: the columns a new message is written with
_WRITTEN = (*(column.name for column in MESSAGE_COLUMNS[1:]), "client_token", "search_text")


class CoreMessageRepository(CoreRepository):
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
        with _session_terms(session_id):
            return (await self._insert(session_id, [row]))[0]

    async def add_many(
        self, session_id: str, messages: Sequence[NewMessage]
    ) -> builtins.list[Message]:
        _validate.name("session_id", session_id)
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise ValidationError("messages: expected a sequence of NewMessage")
        with collection_paused():
            rows = _validate.new_messages(session_id, messages)
        if not rows:
            return []
        with _session_terms(session_id):
            return await self._insert(session_id, rows)

    async def _insert(self, session_id: str, rows: list[dict[str, Any]]) -> builtins.list[Message]:
        """Insert ``rows`` in one transaction, idempotently: a retry after a lost
        COMMIT finds the batch by its first row's token instead of inserting it
        twice.

        Only the first and last rows carry a token (one random prefix per call,
        then the row's index): the batch commits whole or not at all, so its
        first row tells whether it committed, and the two ends are what a
        dialect checks its ids against. A token on every row would cost a
        unique-index entry each (about a fifth of the server's time on a
        20,000-row COPY) and tell nothing more.
        """
        now = utcnow()
        # 96 random bits as hex: a quarter of uuid4().hex's cost (0.6 against 2.2 µs)
        prefix = secrets.token_hex(_PREFIX_LENGTH // 2)
        for row in rows:
            row["timestamp"] = now
            row["client_token"] = None
        last = len(rows) - 1
        rows[0]["client_token"] = f"{prefix}{0:08x}"
        rows[last]["client_token"] = f"{prefix}{last:08x}"
        if len(rows) == 1 and rows[0]["parent_message_id"] is None:
            _add_words(rows)
            return [await self._insert_one(rows[0])]
        parents = _parents_by_sender(rows)
        dialect = self._dialect
        shared = {"timestamp": now}
        #: each attempt's ids, by the first: what a committed attempt gave its rows
        attempts: dict[int, builtins.list[int]] = {}

        async def work(executor: Executor) -> builtins.list[Message]:
            if parents:
                await _check_parents(executor, session_id, parents)
            form = _INSERT_ROW.form(executor.dialect)
            ids = await dialect.reserve_ids(executor, messages, len(rows))
            if ids is not None:
                made: builtins.list[Message] = []
                reserved = ids  # the closure sees it as a list, not list | None

                def load(start: int, stop: int) -> Sequence[Sequence[Any]]:
                    return _with_ids(form, rows[start:stop], shared, reserved[start:stop], made)

                names = ["id", *form.names]
                await dialect.copy_prepared(executor, messages, names, len(rows), load)
                # before the COMMIT: an attempt that may have committed is known here
                attempts[ids[0]] = ids
                return made

            def prepare(start: int, stop: int) -> Sequence[Sequence[Any]]:
                # a part at a time: a dialect may make the next statement's
                # rows while the server runs the one before
                return _bound(form, rows[start:stop], shared)

            ids = await dialect.insert_prepared(executor, messages, form.names, len(rows), prepare)
            attempts[ids[0]] = ids
            with collection_paused():
                return [_message(row_id, row) for row_id, row in zip(ids, rows, strict=True)]

        async def recover(executor: Executor) -> builtins.list[Message] | None:
            found = await executor.value(_ID_BY_TOKEN, {"token": rows[0]["client_token"]})
            if found is None:
                return None
            ids = attempts.get(int(found))
            if ids is None:
                # a COMMIT is sent only after the work returned its ids
                raise RuntimeError("a batch with this call's token that no attempt wrote")
            with collection_paused():
                return [_message(row_id, row) for row_id, row in zip(ids, rows, strict=True)]

        return await self._db.perform(work, write=True, recover=recover)

    async def _insert_one(self, row: dict[str, Any]) -> Message:
        """One message without a parent: one INSERT that commits itself; a retry
        after a lost acknowledgement finds it by its token instead of inserting
        it twice. (A reply's parent is checked first: ``_insert``'s path.)"""
        if row["parent_message_id"] is not None:
            raise RuntimeError("a reply is written with its parent's check, not alone")
        token = row["client_token"]
        by_lastrowid = self._dialect.id_from_lastrowid

        async def work(executor: Executor) -> Message:
            if by_lastrowid:
                row_id: Any = await executor.insert(_INSERT_ROOT, row)
            else:
                row_id = await executor.value(_INSERT_ONE, row)
            if row_id is None:
                raise RuntimeError("the database reported no generated id for the insert")
            return _message(int(row_id), row)

        async def recover(executor: Executor) -> Message | None:
            found = await executor.row(_BY_TOKEN, {"token": token})
            return None if found is None else message_from(found)

        return await self._db.perform(work, write=True, autocommit=True, recover=recover)

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
        order: Order = "asc",
        sender: str | None = None,
    ) -> Page[Message]:
        _validate.name("session_id", session_id)
        _validate.viewer(viewer)
        _validate.limit(limit)
        _validate.order(order)
        _validate.optional_name("sender", sender)
        scope = _cursor.scope(session_id, order, sender)
        params = viewer_params(viewer)
        params.update(session_id=session_id, sender=sender)
        if cursor is not None:
            params["after_time"], params["after_id"] = _cursor.decode(cursor, "messages", scope)
        query = _list_query(
            self._dialect,
            viewer.is_admin,
            sender is not None,
            cursor is not None,
            order == "desc",
            limit + 1,
        )
        items = messages_from(await self._db.read_rows(query, params))
        return _cursor.page(items, limit, "messages", scope, lambda m: (m.timestamp, m.id))

    async def count(self, session_id: str, *, viewer: Viewer) -> int:
        _validate.name("session_id", session_id)
        _validate.viewer(viewer)
        params = viewer_params(viewer)
        params["session_id"] = session_id
        return int(await self._db.read_value(_count_query(viewer.is_admin), params) or 0)

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
        terms = self._dialect.search_terms(query)
        if terms is None:
            return []  # no searchable words in the query
        params = viewer_params(viewer)
        params.update(terms=terms, session_id=session_id)
        found = await self._db.read_rows(
            _search_query(self._dialect, viewer.is_admin, session_id is not None, limit), params
        )
        return [
            trusted(SearchHit, {"message": message_from(row), "score": float(row[-1])})
            for row in found
        ]

    async def feed(
        self, *, viewer: Viewer, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        _validate.viewer(viewer)
        _validate.limit(limit)
        scope = _cursor.scope(viewer.agent_id)
        params = viewer_params(viewer)
        if cursor is not None:
            params["after_time"], params["after_id"] = _cursor.decode(cursor, "feed", scope)
        query = _feed_query(viewer.is_admin, cursor is not None, limit + 1)
        items = messages_from(await self._db.read_rows(query, params))
        return _cursor.page(items, limit, "feed", scope, lambda m: (m.timestamp, m.id))


def _add_words(rows: Sequence[dict[str, Any]]) -> None:
    """Each row's ``search_text``: the words search finds it by, the same on every dialect."""
    for row in rows:
        row["search_text"] = search_text(row["content"])


def _bound(
    form: Form, part: Sequence[dict[str, Any]], shared: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """``part``'s rows with their search words, as bind values in ``form``'s order."""
    with collection_paused():
        _add_words(part)
        return form.args_many(part, shared)


def _with_ids(
    form: Form,
    part: Sequence[dict[str, Any]],
    shared: dict[str, Any],
    ids: Sequence[int],
    made: builtins.list[Message],
) -> builtins.list[tuple[Any, ...]]:
    """The bind values of ``part``, each row's reserved id first, as a bulk load
    that takes the ids with the rows sends them; the part's records are
    appended to ``made`` (a part at a time, while the server loads the part
    before, rather than all after the last is acknowledged)."""
    values = _bound(form, part, shared)
    with collection_paused():
        made.extend(_message(row_id, row) for row_id, row in zip(ids, part, strict=True))
    return [(row_id, *value) for row_id, value in zip(ids, values, strict=True)]


def _message(row_id: int, row: dict[str, Any]) -> Message:
    """The record of a row just written: the values as validated, and its new id
    (built as a trusted record; the metadata as validation returns it: as a
    read returns it, in a dict of its own)."""
    return trusted(
        Message,
        {
            "id": row_id,
            "session_id": row["session_id"],
            "sender": row["sender"],
            "sender_type": row["sender_type"],
            "content": row["content"],
            "visibility": row["visibility"],
            "message_type": row["message_type"],
            "metadata": row["metadata"],
            "parent_message_id": row["parent_message_id"],
            "timestamp": row["timestamp"],
        },
    )


def _parents_by_sender(rows: builtins.list[dict[str, Any]]) -> dict[tuple[str, str], set[int]]:
    """The parents the rows reply to, by the (sender, sender type) replying."""
    parents: dict[tuple[str, str], set[int]] = {}
    for row in rows:
        if row["parent_message_id"] is not None:
            key = (row["sender"], row["sender_type"])
            parents.setdefault(key, set()).add(row["parent_message_id"])
    return parents


async def _check_parents(
    executor: Executor, session_id: str, parents: dict[tuple[str, str], set[int]]
) -> None:
    """NotFoundError unless every parent is a message of ``session_id`` that its
    replying sender may read.

    A parent hidden from the sender fails exactly as a missing one (same
    error, same message): otherwise a caller could learn which hidden ids
    exist, and a reply would link to a message its sender cannot see. The
    sender is the viewer of the one visibility rule (never an admin).
    """
    for (sender, sender_type), wanted in parents.items():
        ids = sorted(wanted)
        params = viewer_params(Viewer(agent_id=sender, agent_type=sender_type))
        params["session_id"] = session_id
        found: set[int] = set()
        for start in range(0, len(ids), 500):
            # validated ints, written into the statement (a precompiled query has no IN lists)
            chunk: builtins.list[Any] = [
                literal_column(str(int(parent))) for parent in ids[start : start + 500]
            ]
            query = Query(
                select(messages.c.id).where(
                    messages.c.session_id == bindparam("session_id"),
                    messages.c.id.in_(chunk),
                    visible(False),
                )
            )
            found.update(row[0] for row in await executor.rows(query, params))
        missing = wanted - found
        if missing:
            raise NotFoundError(
                f"parent message {min(missing)} does not exist in session {session_id!r}"
            )


@functools.cache
def _count_query(admin: bool) -> Query:
    """``count``'s statement, per shape (bind parameters: ``session_id``, the viewer)."""
    return Query(
        select(func.count())
        .select_from(messages)
        .where(
            messages.c.session_id == bindparam("session_id"),
            visible(admin),
        )
    )


@functools.lru_cache(maxsize=512)
def _feed_query(admin: bool, resumed: bool, limit: int) -> Query:
    """``feed``'s statement, per shape and limit: the messages of every session the
    viewer takes part in, newest first (bind parameters: the viewer and, resumed,
    ``after_time`` and ``after_id``)."""
    joined = messages.join(
        session_participants,
        (session_participants.c.session_id == messages.c.session_id)
        & (session_participants.c.agent_id == bindparam("viewer_id")),
    )
    stmt: Select[Any] = select(*_COLUMNS).select_from(joined).where(visible(admin))
    if resumed:
        stmt = stmt.where(after_param(messages.c.timestamp, messages.c.id, descending=True))
    stmt = stmt.order_by(messages.c.timestamp.desc(), messages.c.id.desc())
    return Query(stmt.limit(literal_column(str(int(limit)), Integer)))


@functools.cache
def _get_query(admin: bool) -> Query:
    """``get``'s statement, built and compiled once per shape."""
    return Query(select(*_COLUMNS).where(messages.c.id == bindparam("message_id"), visible(admin)))


#: the columns a message without a parent is written with: its
#: ``parent_message_id`` is the column's NULL rather than a bound None (sqlite3
#: sends every None parameter through a failing, error-formatting adapter lookup)
_WRITTEN_ROOT = tuple(name for name in _WRITTEN if name != "parent_message_id")
#: one new message without a parent, returning its id (bind parameters: the
#: written columns); ``messages.add``'s statement
_INSERT_ONE = Query(insert(messages).returning(messages.c.id), column_keys=_WRITTEN_ROOT)
#: the same without RETURNING, where the id is the driver's ``lastrowid``
_INSERT_ROOT = Query(insert(messages), column_keys=_WRITTEN_ROOT)
#: the message written by the call with this token
_BY_TOKEN = Query(select(*_COLUMNS).where(messages.c.client_token == bindparam("token")))


#: one new message (its positional form is what ``insert_many`` sends per row)
_INSERT_ROW = Query(insert(messages), column_keys=_WRITTEN)
#: the id of the message written with this token
_ID_BY_TOKEN = Query(select(messages.c.id).where(messages.c.client_token == bindparam("token")))
#: hex digits of a call's random token prefix (then 8 of the row's index)
_PREFIX_LENGTH = 24

#: the index every listing of a session walks: equality on the session, then
#: the keyset range on (timestamp, id).
_SESSION_INDEX = next(
    str(index.name)
    for index in messages.indexes
    if [c.name for c in index.columns] == ["session_id", "timestamp", "id"]
)


@functools.lru_cache(maxsize=512)
def _list_query(
    dialect: Dialect, admin: bool, by_sender: bool, resumed: bool, descending: bool, limit: int
) -> Query:
    """``list``'s statement, built and compiled once per dialect, shape and limit.

    The limit is written into the SQL: PostgreSQL plans a bound LIMIT as
    "10% of the rows" and never settles on a generic plan for it.
    """
    stmt: Select[Any] = select(*_COLUMNS).where(
        messages.c.session_id == bindparam("session_id"),
        visible(admin),
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
    return Query(stmt.limit(literal_column(str(int(limit)), Integer)))


@functools.lru_cache(maxsize=512)
def _search_query(dialect: Dialect, admin: bool, in_session: bool, limit: int) -> Query:
    """``search``'s statement, per dialect, shape and limit (bind parameters: the
    dialect's ``terms``, the viewer, ``session_id``)."""
    filters = [visible(admin)]
    if in_session:
        filters.append(messages.c.session_id == bindparam("session_id"))
    stmt = dialect.search_statement(messages, _COLUMNS, bindparam("terms"), filters)
    return Query(stmt.limit(literal_column(str(int(limit)), Integer)))
