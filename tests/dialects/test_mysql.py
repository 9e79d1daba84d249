"""MySQL/MariaDB only: utf8mb4, UTC sessions, statement limits, a bounded handshake."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from sqlalchemy import insert, literal, select, text

from contextstore import DatabaseUnavailableError, QueryTimeoutError

from ._scratch import create_tables, items, managed, other_tasks, server_url, silent_server

pytestmark = pytest.mark.mysql

#: a statement MariaDB really aborts with ER_STATEMENT_TIMEOUT (1969) once
#: max_statement_time passes: billions of joined rows.
HEAVY_QUERY = (
    "SELECT COUNT(*) FROM information_schema.columns a, "
    "information_schema.columns b, information_schema.columns c"
)


async def test_session_settings(mysql_empty_url: str) -> None:
    async with managed(mysql_empty_url, statement_timeout=0.5) as db:
        row = await db.fetch_one(
            text(
                "SELECT @@character_set_client AS client, "
                "@@character_set_connection AS connection, "
                "@@character_set_results AS results, @@session.time_zone AS tz"
            )
        )
        assert row is not None
        assert dict(row) == {
            "client": "utf8mb4",
            "connection": "utf8mb4",
            "results": "utf8mb4",
            "tz": "+00:00",
        }
        version = str(await db.fetch_value(text("SELECT VERSION()")))
        if "mariadb" in version.lower():
            limit = await db.fetch_value(text("SELECT @@session.max_statement_time"))
            assert float(limit) == pytest.approx(0.5)
        else:
            assert await db.fetch_value(text("SELECT @@session.max_execution_time")) == 500


async def test_four_byte_characters_survive(mysql_empty_url: str) -> None:
    async with managed(mysql_empty_url) as db:
        await create_tables(db)
        text_in = "\N{MUSICAL SYMBOL G CLEF} 😀 🀄 \U0010fffd"
        await db.execute(insert(items).values(label=text_in, body=text_in))
        row = await db.fetch_one(select(items.c.label, items.c.body))
        assert row is not None
        assert dict(row) == {"label": text_in, "body": text_in}


@pytest.mark.parametrize("sql", [HEAVY_QUERY, "SELECT SLEEP(5)"], ids=["heavy-join", "sleep"])
async def test_statement_timeout_raises_query_timeout(mysql_empty_url: str, sql: str) -> None:
    async with managed(mysql_empty_url, statement_timeout=0.5) as db:
        started = time.perf_counter()
        try:
            value = await db.fetch_value(text(sql))
        except QueryTimeoutError as error:
            cause = error.__cause__
            assert cause is not None
            errno = cause.orig.args[0]  # type: ignore[attr-defined]
            assert errno in (1969, 3024)  # MariaDB / MySQL statement timeout
        else:
            # MariaDB may end an interrupted SLEEP() by returning 1 instead
            assert sql.startswith("SELECT SLEEP"), f"{sql!r} finished and returned {value!r}"
            assert value == 1
        assert time.perf_counter() - started < 5  # the server cut it short
        assert await db.fetch_value(select(literal(1))) == 1
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0


async def test_handshake_is_bounded_by_connect_timeout() -> None:
    # aiomysql bounds only the TCP connect by itself; the server greeting is awaited
    # under connect_timeout too, or a hung server would hold the checkout forever
    async with (
        silent_server() as server,
        managed(server_url("mysql", server.port), connect_timeout=0.3) as db,
    ):
        started = time.perf_counter()
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.fetch_value(select(literal(1)))
        assert caught.value.may_have_committed is False
        # the driver's own words are the cause's, not the message's
        assert str(caught.value) == "cannot reach the database (no answer)"
        assert "handshake" in str(caught.value.__cause__)
        assert time.perf_counter() - started < 10  # RETRY_WINDOW, not forever
        stats = db.pool_stats()
        assert stats is not None
        assert stats.checked_out == 0
    assert other_tasks() == set()


#: DATETIME and TIMESTAMP values as the server sends them: full and no
#: precision (parsed by contextstore's decoder), DATETIME(3), the range's ends,
#: zero dates (text, not a datetime), NULL (the decoders' fallback paths)
DATETIME_SQL = (
    "SELECT CAST('2026-12-06 19:57:31.123456' AS DATETIME(6)), "
    "CAST('2026-12-06 19:57:31' AS DATETIME), CAST('2026-12-06 19:57:31' AS DATETIME(6)), "
    "CAST('2026-12-06 19:57:31.5' AS DATETIME(3)), TIMESTAMP('2026-12-06 19:57:31.000001'), "
    "CAST('1000-01-01' AS DATETIME(6)), CAST('9999-12-31 23:59:59.999999' AS DATETIME(6)), "
    "FROM_UNIXTIME(1), CAST('0000-00-00 00:00:00' AS DATETIME), "
    "CAST('2026-00-00' AS DATETIME(6)), CAST(NULL AS DATETIME(6))"
)


async def test_datetimes_read_as_pymysql_reads_them(mysql_empty_url: str) -> None:
    # contextstore's connections parse DATETIME text faster than pymysql's
    # converter (see contextstore._dialects.mysql.decoders): every value must
    # still be the one a connection with pymysql's own decoders returns
    import aiomysql
    from pymysql.constants import FIELD_TYPE
    from pymysql.converters import decoders as pymysql_decoders
    from sqlalchemy.engine import make_url

    url = make_url(mysql_empty_url)
    plain = await aiomysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        db=url.database,
        autocommit=True,
    )
    try:
        async with plain.cursor() as cursor:
            await cursor.execute(DATETIME_SQL)
            expected = (await cursor.fetchall())[0]
    finally:
        plain.close()
    assert isinstance(expected[0], datetime)
    assert isinstance(expected[8], str)

    async with managed(mysql_empty_url) as db:
        row = await db.fetch_one(text(DATETIME_SQL))
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            decoders = raw.driver_connection.decoders  # type: ignore[union-attr]
    assert row is not None
    assert [(type(v), v) for v in row.values()] == [(type(v), v) for v in expected]
    # and the connections do use the faster decoder
    assert decoders[FIELD_TYPE.DATETIME] is not pymysql_decoders[FIELD_TYPE.DATETIME]
