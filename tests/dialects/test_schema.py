"""The schema at its limits, on every dialect, with plain Core statements.

Where SQL must differ (native upsert, full-text MATCH), a small dict of
builders keyed by dialect name keeps the difference in one visible place.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql import Executable

from contextstore import (
    ConflictError,
    ConnectionManager,
    NotFoundError,
    Settings,
    ValidationError,
    _migrations,
)
from contextstore._facts import search_text, search_words
from contextstore.schema import (
    agent_memory,
    audit_log,
    messages,
    session_participants,
    sessions,
)

NOW = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
EMOJI_100K = "😀" * 100_000  # four bytes each in UTF-8


@pytest.fixture
async def db(empty_url: str) -> AsyncIterator[ConnectionManager]:
    manager = ConnectionManager(Settings(database_url=empty_url))
    try:
        await _migrations.upgrade(manager)
        yield manager
    finally:
        await manager.dispose()


async def _session(db: ConnectionManager, session_id: str | None = None) -> str:
    session_id = uuid.uuid4().hex if session_id is None else session_id
    await db.execute(
        insert(sessions).values(
            id=session_id,
            purpose="testing the schema",
            created_by="agent-1",
            metadata={},
            created_at=NOW,
            updated_at=NOW,
        )
    )
    return session_id


async def _message(db: ConnectionManager, session_id: str, content: str, **extra: Any) -> int:
    values = {
        "session_id": session_id,
        "sender": "agent-1",
        "sender_type": "generic",
        "content": content,
        "visibility": "public",
        "message_type": "agent_response",
        "metadata": {},
        "timestamp": NOW,
        # what every writer of contextstore stores beside the content
        "search_text": search_text(content),
        **extra,
    }
    async with db.transaction() as conn:
        result = await conn.execute(insert(messages).values(values))
        return int(result.inserted_primary_key[0])


def _memory(key: str, *, session_id: str | None = None, value: Any = 1) -> dict[str, Any]:
    return {
        "agent_id": "agent-1",
        "session_id": session_id,
        "key": key,
        "value": value,
        "metadata": {},
        "created_at": NOW,
        "updated_at": NOW,
    }


# -- columns at their limits ----------------------------------------------


async def test_content_holds_100000_four_byte_characters(db: ConnectionManager) -> None:
    session_id = await _session(db)
    message_id = await _message(db, session_id, EMOJI_100K)
    stored = await db.fetch_value(select(messages.c.content).where(messages.c.id == message_id))
    assert stored == EMOJI_100K


async def test_unicode_nested_json_round_trips(db: ConnectionManager) -> None:
    document = {
        "名前": "Zoë 🚀",
        "nested": {"list": [1, 2.5, None, True, {"deep": ["ünïcödé", "𝄞 clef"]}], "empty": {}},
        "quote\"and'apostrophe": "back\\slash",
    }
    session_id = await _session(db)
    await db.execute(update(sessions).where(sessions.c.id == session_id).values(metadata=document))
    stored = await db.fetch_value(select(sessions.c.metadata).where(sessions.c.id == session_id))
    assert stored == document


@pytest.mark.parametrize(
    "value",
    [None, "text", "42", 0, 2**64 + 1, -(2**63), 0.1, 1.5, [1, "two"], {"a": {"b": None}}, False],
    ids=repr,
)
async def test_memory_value_is_any_json_value(db: ConnectionManager, value: Any) -> None:
    await db.execute(insert(agent_memory).values(_memory("k", value=value)))
    row = await db.fetch_one(select(agent_memory.c.value))
    assert row is not None
    assert row["value"] == value
    assert type(row["value"]) is type(value)
    # JSON null is the JSON literal null, never SQL NULL (the column is NOT NULL)
    sql_nulls = await db.fetch_value(
        select(func.count()).select_from(agent_memory).where(agent_memory.c.value.is_(None))
    )
    assert sql_nulls == 0


async def test_aware_datetimes_come_back_as_the_same_instant_in_utc(
    db: ConnectionManager,
) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    given = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=india)
    session_id = await _session(db)
    await db.execute(update(sessions).where(sessions.c.id == session_id).values(created_at=given))
    stored = await db.fetch_value(select(sessions.c.created_at).where(sessions.c.id == session_id))
    assert stored == given
    assert stored.tzinfo is UTC
    assert (stored.hour, stored.minute, stored.microsecond) == (21, 34, 678901)
    assert stored.day == 1


async def test_datetimes_compare_as_instants_in_sql(db: ConnectionManager) -> None:
    session_id = await _session(db)
    later = datetime(2025, 3, 4, 12, 0, tzinfo=timezone(timedelta(hours=5)))  # 07:00 UTC
    found = await db.fetch_value(
        select(func.count())
        .select_from(sessions)
        .where(sessions.c.id == session_id, sessions.c.created_at < later)
    )
    assert found == 1


async def test_naive_datetime_is_rejected(db: ConnectionManager) -> None:
    session_id = await _session(db)
    with pytest.raises(ValidationError, match="naive datetime"):
        await db.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(updated_at=datetime(2025, 1, 1, 12, 0))
        )
    stored = await db.fetch_value(select(sessions.c.updated_at).where(sessions.c.id == session_id))
    assert stored == NOW


async def test_memory_keys_compare_exactly(db: ConnectionManager) -> None:
    keys = ["key", "Key", "k", "k "]
    await db.execute_many(insert(agent_memory), [_memory(k) for k in keys])
    stored = await db.fetch_all(select(agent_memory.c.key).order_by(agent_memory.c.id))
    assert [row["key"] for row in stored] == keys
    for k in keys:
        hits = await db.fetch_all(select(agent_memory.c.key).where(agent_memory.c.key == k))
        assert [row["key"] for row in hits] == [k]


async def test_ids_compare_exactly(db: ConnectionManager) -> None:
    await _session(db, "s")
    await _session(db, "S")
    await _session(db, "s ")
    ids = await db.fetch_all(select(sessions.c.id).where(sessions.c.id == "s"))
    assert [row["id"] for row in ids] == ["s"]


# -- global memory and the one upsert target ------------------------------

UPSERTS: dict[str, Callable[[dict[str, Any]], Executable]] = {
    "sqlite": lambda row: (stmt := sqlite.insert(agent_memory).values(row)).on_conflict_do_update(
        index_elements=["agent_id", "scope", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    ),
    "postgresql": lambda row: (
        stmt := postgresql.insert(agent_memory).values(row)
    ).on_conflict_do_update(
        index_elements=["agent_id", "scope", "key"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    ),
    "mysql": lambda row: (stmt := mysql.insert(agent_memory).values(row)).on_duplicate_key_update(
        value=stmt.inserted.value, updated_at=stmt.inserted.updated_at
    ),
}


async def test_global_memory_upserts_into_one_row(db: ConnectionManager, dialect_name: str) -> None:
    upsert = UPSERTS[dialect_name]
    await db.execute(upsert(_memory("shared", value="first")))
    await db.execute(upsert(_memory("shared", value="second")))
    rows = await db.fetch_all(select(agent_memory.c.value, agent_memory.c.scope))
    assert [(row["value"], row["scope"]) for row in rows] == [("second", "")]


async def test_session_memory_upserts_apart_from_global(
    db: ConnectionManager, dialect_name: str
) -> None:
    upsert = UPSERTS[dialect_name]
    session_id = await _session(db)
    for value in ("a", "b"):
        await db.execute(upsert(_memory("k", value=f"global-{value}")))
        await db.execute(upsert(_memory("k", session_id=session_id, value=f"session-{value}")))
    rows = await db.fetch_all(
        select(agent_memory.c.scope, agent_memory.c.value).order_by(agent_memory.c.scope)
    )
    assert [(r["scope"], r["value"]) for r in rows] == [
        ("", "global-b"),
        (session_id, "session-b"),
    ]


async def test_duplicate_global_key_is_a_conflict(db: ConnectionManager) -> None:
    await db.execute(insert(agent_memory).values(_memory("once")))
    with pytest.raises(ConflictError):
        await db.execute(insert(agent_memory).values(_memory("once")))
    assert await db.fetch_value(select(func.count()).select_from(agent_memory)) == 1


async def test_deleting_a_session_cascades_and_sets_null(db: ConnectionManager) -> None:
    session_id = await _session(db)
    parent = await _message(db, session_id, "parent")
    other = await _session(db)
    child = await _message(db, other, "child", parent_message_id=parent)
    await db.execute(insert(agent_memory).values(_memory("k", session_id=session_id)))
    await db.execute(
        insert(session_participants).values(
            session_id=session_id,
            agent_id="agent-1",
            agent_type="generic",
            role="member",
            joined_at=NOW,
        )
    )
    await db.execute(
        insert(audit_log).values(
            timestamp=NOW, event_type="join", agent_id="agent-1", session_id=session_id, metadata={}
        )
    )

    await db.execute(delete(sessions).where(sessions.c.id == session_id))

    for table in (agent_memory, session_participants):
        assert await db.fetch_value(select(func.count()).select_from(table)) == 0
    assert await db.fetch_value(select(messages.c.id)) == child
    assert await db.fetch_value(select(messages.c.parent_message_id)) is None
    assert await db.fetch_value(select(audit_log.c.session_id)) is None


# -- constraints -------------------------------------------------------------


async def test_client_tokens_are_unique_when_given(db: ConnectionManager) -> None:
    session_id = await _session(db)
    await _message(db, session_id, "a")
    await _message(db, session_id, "b")  # NULL tokens: any number
    await _message(db, session_id, "c", client_token="tok-1")
    await _message(db, session_id, "d", client_token="TOK-1")
    with pytest.raises(ConflictError):
        await _message(db, session_id, "e", client_token="tok-1")


async def test_unknown_visibility_is_rejected(db: ConnectionManager) -> None:
    session_id = await _session(db)
    with pytest.raises(ValidationError):
        await _message(db, session_id, "x", visibility="Public")


async def test_empty_ids_are_rejected(db: ConnectionManager) -> None:
    with pytest.raises(ValidationError):
        await _session(db, "")
    with pytest.raises(ValidationError):
        await db.execute(insert(agent_memory).values(_memory("")))


async def test_message_in_a_missing_session_is_not_found(db: ConnectionManager) -> None:
    with pytest.raises(NotFoundError):
        await _message(db, "no-such-session", "hello")


# -- full-text search kept in sync by the database ---------------------------
#
# The index runs over messages.search_text (the words contextstore's writers
# store beside the content); each query here is the term of one word.

SEARCHES: dict[str, Callable[[str], Executable]] = {
    "sqlite": lambda word: text(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q ORDER BY rowid"
    ).bindparams(q=f'"{search_words(word)[0]}"'),
    "postgresql": lambda word: text(
        "SELECT id FROM messages WHERE search_vector @@ plainto_tsquery('simple', :q) ORDER BY id"
    ).bindparams(q=search_words(word)[0]),
    "mysql": lambda word: text(
        "SELECT id FROM messages WHERE MATCH (search_text) AGAINST (:q IN BOOLEAN MODE) ORDER BY id"
    ).bindparams(q=f"+{search_words(word)[0]}"),
}


async def test_fulltext_follows_insert_update_and_delete(
    db: ConnectionManager, dialect_name: str
) -> None:
    search = SEARCHES[dialect_name]

    async def found(word: str) -> list[int]:
        return [next(iter(row.values())) for row in await db.fetch_all(search(word))]

    session_id = await _session(db)
    first = await _message(db, session_id, "The quick brown fox jumps over marmalade")
    second = await _message(db, session_id, "Nothing to see here, only zebras")
    assert await found("marmalade") == [first]
    assert await found("MARMALADE") == [first]  # case-insensitive everywhere
    assert await found("zebras") == [second]

    edited = "Pineapple orchestra"
    await db.execute(
        update(messages)
        .where(messages.c.id == first)
        .values(content=edited, search_text=search_text(edited))
    )
    assert await found("marmalade") == []
    assert await found("orchestra") == [first]

    await db.execute(
        update(messages).where(messages.c.id == first).values(metadata={"edited": True})
    )
    assert await found("orchestra") == [first]

    await db.execute(delete(messages).where(messages.c.id == first))
    assert await found("orchestra") == []
    assert await found("zebras") == [second]

    await db.execute(delete(sessions).where(sessions.c.id == session_id))  # cascade
    assert await found("zebras") == []


async def test_fulltext_indexes_unicode_words(db: ConnectionManager, dialect_name: str) -> None:
    session_id = await _session(db)
    message_id = await _message(db, session_id, f"Größenwahn {EMOJI_100K[:10]} Übermütig 北京")
    for word in ("übermütig", "ubermutig", "GROSSENWAHN", "京"):
        rows = await db.fetch_all(SEARCHES[dialect_name](word))
        assert [next(iter(row.values())) for row in rows] == [message_id], word


# -- one dialect each ----------------------------------------------------------


@pytest.mark.mysql
async def test_mysql_schema_does_not_rely_on_the_database_default(mysql_empty_url: str) -> None:
    db = ConnectionManager(Settings(database_url=mysql_empty_url))
    try:
        await db.execute(text("ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci"))
        await _migrations.upgrade(db)
        assert await _migrations.check(db) == []
        session_id = await _session(db, "ünïcödé 🚀")
        message_id = await _message(db, session_id, EMOJI_100K)
        content = await db.fetch_value(
            select(messages.c.content).where(messages.c.id == message_id)
        )
        assert content == EMOJI_100K
        await db.execute_many(insert(agent_memory), [_memory(k) for k in ("k", "k ", "K")])
        hits = await db.fetch_all(select(agent_memory.c.key).where(agent_memory.c.key == "k"))
        assert [row["key"] for row in hits] == ["k"]
    finally:
        await db.dispose()


@pytest.mark.sqlite
async def test_sqlite_stores_datetimes_as_naive_utc_text(sqlite_empty_url: str) -> None:
    """The layout the legacy module writes too (see ``UTCDateTime``)."""
    db = ConnectionManager(Settings(database_url=sqlite_empty_url))
    try:
        await _migrations.upgrade(db)
        session_id = await _session(db)
        india = timezone(timedelta(hours=5, minutes=30))
        await db.execute(
            update(sessions)
            .where(sessions.c.id == session_id)
            .values(created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=india))
        )
        raw = await db.fetch_one(
            text("SELECT created_at, updated_at, typeof(created_at) AS kind FROM sessions")
        )
        assert raw is not None
        assert dict(raw) == {
            "created_at": "2025-01-01 21:34:05.000000",
            "updated_at": "2025-03-04 05:06:07.891011",
            "kind": "text",
        }
    finally:
        await db.dispose()


@pytest.mark.sqlite
async def test_sqlite_fts_index_stays_consistent(sqlite_empty_url: str) -> None:
    db = ConnectionManager(Settings(database_url=sqlite_empty_url))
    try:
        await _migrations.upgrade(db)
        session_id = await _session(db)
        ids = [await _message(db, session_id, f"word{n} shared") for n in range(5)]
        await db.execute(
            update(messages).where(messages.c.id == ids[0]).values(content="replaced text")
        )
        await db.execute(delete(messages).where(messages.c.id == ids[1]))
        # raises SQLITE_CORRUPT_VTAB when the index and messages disagree
        await db.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"))
        await db.execute(delete(sessions).where(sessions.c.id == session_id))
        await db.execute(text("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')"))
        left = await db.fetch_value(
            text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'shared'")
        )
        assert left == 0
    finally:
        await db.dispose()


def test_exact_strings_pick_the_collation_per_server() -> None:
    from sqlalchemy.schema import CreateTable

    mariadb = mysql.dialect()
    mariadb.is_mariadb = True
    mysql8 = mysql.dialect()
    mysql8.is_mariadb = False
    assert "utf8mb4_nopad_bin" in str(CreateTable(agent_memory).compile(dialect=mariadb))
    assert "utf8mb4_0900_bin" in str(CreateTable(agent_memory).compile(dialect=mysql8))
    assert 'COLLATE "C"' in str(CreateTable(agent_memory).compile(dialect=postgresql.dialect()))
    assert "COLLATE" not in str(CreateTable(agent_memory).compile(dialect=sqlite.dialect()))


def test_statements_print_without_a_database() -> None:
    """``str(stmt)`` compiles for SQLAlchemy's default dialect: no recipe, no crash."""
    stmt = select(agent_memory).where(agent_memory.c.expires_at < NOW)
    assert "agent_memory.expires_at <" in str(stmt)


@pytest.mark.parametrize(
    "value", ["2025-01-01T00:00:00+00:00", 1_700_000_000, datetime(2025, 1, 1)]
)
def test_utc_datetime_binds_only_aware_datetimes(value: object) -> None:
    from contextstore._dialects.types import UTCDateTime

    with pytest.raises(ValidationError):
        UTCDateTime().process_bind_param(value, sqlite.dialect())  # type: ignore[arg-type]


_DIALECTS = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.asyncpg.dialect(),  # type: ignore[attr-defined]
    "mysql": mysql.aiomysql.dialect(),  # type: ignore[attr-defined]
}


class _OwnLayout(datetime):
    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        return "not SQLAlchemy's layout"


@pytest.mark.parametrize("name", sorted(_DIALECTS))
def test_precompiled_datetime_binds_equal_sqlalchemys(name: str) -> None:
    """The execution core's one-call bind processor for ``UTCDateTime`` sends
    exactly what SQLAlchemy's own path (the decorator, then the storage type's
    processor) sends, and refuses what it refuses."""
    from contextstore._dialects.types import UTCDateTime, bind_processor

    dialect = _DIALECTS[name]
    column_type = UTCDateTime()
    ours = bind_processor(column_type, dialect)
    theirs = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert theirs is not None
    india = timezone(timedelta(hours=5, minutes=30))
    values = (
        None,
        datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2025, 1, 2, 3, 4, 5, tzinfo=india),
        datetime(1, 1, 1, 12, tzinfo=india),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        # no fraction, a three-digit year, a zone of offset 0 that is not
        # datetime.UTC: SQLite's text still has six fraction digits and four year digits
        datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(0), "UTC")),
        datetime(2025, 1, 2, 3, 4, 5, 7, tzinfo=ZoneInfo("UTC")),
        # a subclass whose isoformat writes its own layout: bound like any datetime
        _OwnLayout(2025, 1, 2, 3, 4, 5, 8, tzinfo=UTC),
        datetime(2025, 1, 2, 3, 4, 5, 600, tzinfo=ZoneInfo("Europe/Paris")),
    )
    # each value twice in a row, through the processors of two columns
    # (SQLite's keep the text of the value converted last), and the whole list
    # twice: nothing carries over from one value to the next
    other = bind_processor(UTCDateTime(), dialect)
    assert other is not None
    for value in (*values, *values):
        for process in (ours, other, ours):
            sent = process(value)
            assert sent == theirs(value)
            assert type(sent) is type(theirs(value))
    for bad in ("2025-01-01T00:00:00+00:00", 1_700_000_000, datetime(2025, 1, 1)):
        with pytest.raises(ValidationError) as refused:
            ours(bad)
        with pytest.raises(ValidationError) as expected:
            theirs(bad)
        assert str(refused.value) == str(expected.value)


def _outcome(process: Any, value: Any) -> Any:
    """What ``process`` (None: no processor) makes of ``value``: the result, or
    the type and text of the error it raises."""
    if process is None:
        return value
    try:
        return process(value)
    except Exception as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("name", sorted(_DIALECTS))
def test_precompiled_results_equal_sqlalchemys(name: str) -> None:
    """The execution core's result processors for ``UTCDateTime`` and
    ``JSONDocument`` give what SQLAlchemy's own path gives, with the JSON
    decoder the engines are built with."""
    from contextstore._dialects.types import JSONDocument, UTCDateTime, result_processor
    from contextstore._facts import json_loads

    dialect = type(_DIALECTS[name])(json_deserializer=json_loads)
    naive = datetime(2025, 1, 2, 3, 4, 5, 678901)
    driver_datetimes: dict[str, list[Any]] = {
        "sqlite": [
            None,
            "2025-01-02 03:04:05.678901",
            "0001-01-01 00:00:00.000000",
            "9999-12-31 23:59:59.999999",
            # text another program wrote: SQLAlchemy's rules, whatever they make of it
            "2025-01-02 03:04:05",
            "2025-01-02 03:04:05.678",
            "2025-01-02T03:04:05.678901",
            "2025-01-02 03:04:05.678901+05:30",
            "2025-01-02 03:04:05.67890x",
            # full-width digits in the fraction (U+FF10 to U+FF19)
            "2025-01-02 03:04:05.\uff16\uff17\uff18\uff19\uff10\uff11",
            "2025-01-02",
            # refused alike: a date that does not exist, in the fast path's layout
            "2025-13-02 03:04:05.678901",
            "2025-02-30 03:04:05.678901",
        ],
        "postgresql": [None, naive.replace(tzinfo=UTC)],
        "mysql": [None, naive, datetime(1, 1, 1)],
    }
    column_type = UTCDateTime()
    ours = result_processor(column_type, dialect)
    theirs = column_type.dialect_impl(dialect).result_processor(dialect, None)
    for value in driver_datetimes[name]:
        got, want = _outcome(ours, value), _outcome(theirs, value)
        assert got == want, value
        assert type(got) is type(want)
        assert not isinstance(got, datetime) or got.tzinfo is UTC
    ours = result_processor(JSONDocument, dialect)
    theirs = JSONDocument.dialect_impl(dialect).result_processor(dialect, None)
    if name == "postgresql":
        assert ours is None
        assert theirs is None
        return
    assert ours is not None
    assert theirs is not None
    for text_value in (None, "null", "{}", '{"a":[1,2.5,"x"]}', "18446744073709551617", '"é"'):
        got, want = ours(text_value), theirs(text_value)
        assert got == want
        assert type(got) is type(want)
