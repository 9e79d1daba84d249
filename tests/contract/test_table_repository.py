"""``store.table(table, record)``: a service's own tables with the built-in guarantees.

Every case runs on the three core dialects, directly and with each call in a
unit of work of its own (``tx.table``). The legacy backend refuses the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Integer, Table, event, select, true

from contextstore import (
    ConfigurationError,
    ConflictError,
    ContextStoreError,
    NotFoundError,
    OffsetPage,
    Page,
    Settings,
    Store,
    TableRepository,
    ValidationError,
)
from contextstore.schema import sessions
from contextstore.types import UTCDateTime
from tests.topologies._registry import REPLICA_URLS

from ._factories import ADMIN
from ._tables import (
    BASE,
    Feature,
    Idea,
    InUnitTable,
    Job,
    Link,
    TestCase,
    create_tables,
    features,
    idea,
    ideas,
    jobs,
    test_features,
    tests_table,
)

CORE = [
    pytest.param("sqlite", id="core-sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", id="core-postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", id="core-mysql", marks=pytest.mark.mysql),
    pytest.param("mysql_galera", id="core-mysql-galera", marks=pytest.mark.galera),
    pytest.param(
        "postgresql_pgbouncer", id="core-postgresql-pgbouncer", marks=pytest.mark.pgbouncer
    ),
    pytest.param("postgresql_replicas", id="core-postgresql-replicas", marks=pytest.mark.replicas),
]

Tables = Callable[[Table, type[BaseModel]], Any]


@pytest.fixture(params=CORE)
async def core(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """A connected core Store with the service's tables created beside contextstore's."""
    url = request.getfixturevalue(f"{request.param}_migrated_url")
    replicas = REPLICA_URLS.get(url, [])
    async with Store(Settings(database_url=url, replica_urls=replicas)) as store:
        await create_tables(store)
        yield store


@pytest.fixture(params=["direct", "in-unit"])
def tables(core: Store, request: pytest.FixtureRequest) -> Tables:
    """``store.table``, or a repository whose every call is a unit of work of its own."""
    if request.param == "direct":
        return core.table
    return lambda table, record: InUnitTable(core, table, record)


@pytest.fixture
def repo(tables: Tables) -> Any:
    return tables(ideas, Idea)


async def _all(repo: Any, *where: Any, **listing: Any) -> list[Any]:
    """Every row of a listing, page by page."""
    found: list[Any] = []
    cursor = None
    while True:
        page = await repo.list(*where, cursor=cursor, **listing)
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


# -- writes ---------------------------------------------------------------------


async def test_add_fills_in_the_generated_key_and_get_reads_the_same_record(repo: Any) -> None:
    first = await repo.add(idea(1))
    second = await repo.add(idea(2))
    assert isinstance(first, Idea)
    assert first.id is not None
    assert second.id is not None
    assert second.id != first.id
    assert first.model_dump(exclude={"id"}) == idea(1).model_dump(exclude={"id"})
    assert await repo.get(first.id) == first
    assert await repo.get(second.id) == second
    assert await repo.get(10**12) is None
    assert first.created_at.tzinfo is not None  # aware UTC on every dialect


async def test_add_many_returns_the_rows_in_order_with_their_keys(repo: Any) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 21)])
    assert [item.source_id for item in added] == [f"src-{n:04d}" for n in range(1, 21)]
    assert len({item.id for item in added}) == 20
    for item in added:
        assert await repo.get(item.id) == item
    assert await repo.add_many([]) == []
    assert await repo.count() == 20


async def test_add_many_spans_several_statements_and_keeps_the_order(repo: Any) -> None:
    # past one statement's bind parameters (32,766 / 6 written columns)
    count = 6_000
    added = await repo.add_many([idea(n, keywords=[]) for n in range(count)])
    assert [item.source_id for item in added] == [f"src-{n:04d}" for n in range(count)]
    by_id = {item.id: item for item in added}
    assert len(by_id) == count
    sample = [added[0], added[5_000], added[5_500], added[-1]]
    for item in sample:
        assert await repo.get(item.id) == item


async def test_a_batch_larger_than_one_request_is_split(core: Store) -> None:
    # 18 MB of rows: more than MariaDB's default max_allowed_packet (16 MiB)
    repo = core.table(ideas, Idea)
    title = "x" * 60_000
    added = await repo.add_many([idea(n, title=title) for n in range(300)])
    assert [item.source_id for item in added] == [f"src-{n:04d}" for n in range(300)]
    assert await repo.count() == 300
    last = await repo.get(added[-1].id)
    assert last is not None
    assert last.title == title


async def test_add_many_is_all_or_nothing(repo: Any) -> None:
    await repo.add(idea(1))
    with pytest.raises(ConflictError):
        await repo.add_many([idea(2), idea(3), idea(1, title="again")])  # clashes a stored row
    with pytest.raises(ConflictError):
        await repo.add_many([idea(4), idea(4, title="twin")])  # clashes within the batch
    assert await repo.count() == 1


async def test_a_unique_key_clash_is_a_conflict_in_the_records_terms(repo: Any) -> None:
    stored = await repo.add(idea(1))
    with pytest.raises(ConflictError) as caught:
        await repo.add(idea(1, title="another"))
    message = str(caught.value)
    assert message == "Idea: a row with the same id or source_id already exists"
    assert caught.value.__cause__ is not None  # the driver's error stays chained
    other = await repo.add(idea(2))
    with pytest.raises(ConflictError, match=r"^Idea: a row with the same"):
        await repo.update(other.id, source_id=stored.source_id)
    assert await repo.get(other.id) == other


async def test_update_changes_only_the_given_columns(repo: Any) -> None:
    stored = await repo.add(idea(1, score=1))
    changed = await repo.update(stored.id, title="better", score=None, keywords=["a", "b"])
    assert changed == stored.model_copy(
        update={"title": "better", "score": None, "keywords": ["a", "b"]}
    )
    assert await repo.get(stored.id) == changed
    assert await repo.update(stored.id) == changed  # nothing to change: the row as it is
    with pytest.raises(NotFoundError, match="Idea 999999 does not exist"):
        await repo.update(999_999, title="x")


async def test_upsert_inserts_then_updates_the_row_with_that_key(repo: Any) -> None:
    inserted = await repo.upsert(idea(1, title="first"))
    assert inserted.id is not None
    assert inserted.title == "first"
    updated = await repo.upsert(idea(1, title="second", score=3, category=None))
    assert updated.id == inserted.id  # the stored row keeps its key
    assert (updated.title, updated.score, updated.category) == ("second", 3, None)
    assert await repo.get(inserted.id) == updated
    assert await repo.count() == 1
    by_pk = await repo.upsert(updated.model_copy(update={"title": "third"}), on=("id",))
    assert by_pk.title == "third"
    assert by_pk.id == inserted.id
    assert await repo.count() == 1


async def test_delete_and_delete_where(repo: Any) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 13)])
    assert await repo.delete(added[0].id) is True
    assert await repo.delete(added[0].id) is False
    assert await repo.get(added[0].id) is None
    tools = sum(1 for item in added[1:] if item.category == "tools")
    assert await repo.delete_where(category="tools") == tools
    low = sum(1 for item in added[1:] if item.category != "tools" and item.score == 0)
    assert await repo.delete_where(ideas.c.score == 0) == low
    left = 11 - tools - low
    assert await repo.count() == left
    with pytest.raises(ValidationError, match="at least one filter"):
        await repo.delete_where()
    assert await repo.count() == left
    assert await repo.delete_where(true()) == left
    assert await repo.count() == 0


# -- reads ----------------------------------------------------------------------


async def test_get_by_finds_one_row_by_column_values(repo: Any) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 6)])
    assert await repo.get_by(source_id="src-0003") == added[2]
    assert await repo.get_by(source_id="nope") is None
    # several match: the lowest primary key
    assert await repo.get_by(category=None) == min(
        (item for item in added if item.category is None), key=lambda item: item.id
    )
    with pytest.raises(ValidationError, match="at least one"):
        await repo.get_by()


@pytest.mark.parametrize("descending", [False, True], ids=["ascending", "descending"])
@pytest.mark.parametrize("order_by", [None, "score", "category", "created_at", "source_id"])
async def test_keyset_pages_walk_every_row_once_in_order(
    repo: Any, order_by: str | None, descending: bool
) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 31)])

    def key(item: Idea) -> tuple[Any, ...]:
        # the contract's order: the column (NULLs last ascending), then the key
        if order_by is None:
            return (item.id,)
        value = getattr(item, order_by)
        return (value is None, value if value is not None else 0, item.id)

    expected = sorted(added, key=key, reverse=descending)
    for limit in (1, 4, 7, 30, 1000):
        walked = await _all(repo, order_by=order_by, descending=descending, limit=limit)
        assert [item.id for item in walked] == [item.id for item in expected], limit


async def test_keyset_pages_with_filters_and_where_expressions(repo: Any) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 41)])
    wanted = [item for item in added if item.category == "tools" and (item.score or 0) >= 1]
    walked = await _all(
        repo, ideas.c.score >= 1, category="tools", order_by="score", descending=True, limit=3
    )
    expected = sorted(wanted, key=lambda item: (item.score, item.id), reverse=True)
    assert [item.id for item in walked] == [item.id for item in expected]
    nulls = await _all(repo, category=None, limit=5)
    assert [item.id for item in nulls] == [item.id for item in added if item.category is None]
    first = await repo.list(limit=2)
    assert isinstance(first, Page)
    assert len(first.items) == 2
    assert first.next_cursor
    # a cursor belongs to its listing: another order or filter refuses it
    with pytest.raises(ValidationError, match="cursor"):
        await repo.list(limit=2, cursor=first.next_cursor, order_by="score")
    with pytest.raises(ValidationError, match="cursor"):
        await repo.list(limit=2, cursor=first.next_cursor, category="ops")
    with pytest.raises(ValidationError, match="cursor"):
        await repo.list(limit=2, cursor=first.next_cursor[:-3] + "abc")


async def test_count_and_numbered_pages(repo: Any) -> None:
    added = await repo.add_many([idea(n) for n in range(1, 24)])
    assert await repo.count() == 23
    ops = [item for item in added if item.category == "ops"]
    assert await repo.count(category="ops") == len(ops)
    assert await repo.count(ideas.c.score.is_(None)) == sum(1 for i in added if i.score is None)
    first = await repo.page(size=10)
    assert isinstance(first, OffsetPage)
    assert (first.total, first.number, first.size) == (23, 1, 10)
    assert (first.has_prev, first.has_next) == (False, True)
    assert [item.id for item in first.items] == [item.id for item in added[:10]]
    last = await repo.page(number=3, size=10)
    assert [item.id for item in last.items] == [item.id for item in added[20:]]
    assert (last.has_prev, last.has_next) == (True, False)
    beyond = await repo.page(number=4, size=10)
    assert beyond.items == []
    assert beyond.total == 23
    assert beyond.has_prev
    newest = await repo.page(ideas.c.title != "", size=5, order_by="created_at", descending=True)
    assert [item.id for item in newest.items] == [item.id for item in added[::-1][:5]]
    assert newest.total == 23
    filtered = await repo.page(number=2, size=2, category="ops")
    assert [item.id for item in filtered.items] == [item.id for item in ops[2:4]]
    assert filtered.total == len(ops)


# -- validation: refused before any SQL, nothing written ---------------------------

NAIVE = datetime(2026, 1, 1)

REFUSED: list[tuple[str, Callable[[Any], Any], str]] = [
    ("unknown equals column", lambda r: r.list(colour="red"), "no column 'colour'"),
    ("unknown count column", lambda r: r.count(colour="red"), "no column 'colour'"),
    ("unknown order_by", lambda r: r.list(order_by="colour"), "order_by"),
    ("order by a JSON column", lambda r: r.list(order_by="keywords"), "cannot be ordered"),
    ("order by text without length", lambda r: r.page(order_by="title"), "cannot be ordered"),
    ("equals on a JSON column", lambda r: r.get_by(keywords=["a"]), "JSON column"),
    ("upsert on an unknown column", lambda r: r.upsert(idea(9), on=("colour",)), "on"),
    ("upsert on a non-unique column", lambda r: r.upsert(idea(9), on=("title",)), "unique key"),
    ("update an unknown column", lambda r: r.update(1, colour="red"), "no column 'colour'"),
    ("update the primary key", lambda r: r.update(1, id=5), "primary key"),
    ("wrong type", lambda r: r.add(idea(9).model_copy(update={"score": "high"})), "score"),
    ("integer too big", lambda r: r.add(idea(9, score=2**31)), "score: must be between"),
    ("string too long", lambda r: r.add(idea(9, category="c" * 101)), "at most 100"),
    ("naive datetime", lambda r: r.add(idea(9, created_at=NAIVE)), "naive"),
    ("NUL in text", lambda r: r.add(idea(9, title="a\x00b")), "NUL"),
    ("NUL in JSON", lambda r: r.add(idea(9, keywords=["a\x00"])), "NUL"),
    ("None for NOT NULL", lambda r: r.add(idea(9).model_copy(update={"title": None})), "title"),
    ("not a record", lambda r: r.add({"source_id": "x"}), "expected Idea"),
    ("bad item in a batch", lambda r: r.add_many([idea(9), idea(10, title="\x00")]), "items"),
    ("limit 0", lambda r: r.list(limit=0), "limit"),
    ("limit 1001", lambda r: r.list(limit=1001), "limit"),
    ("size 0", lambda r: r.page(size=0), "size"),
    ("size 1001", lambda r: r.page(size=1001), "size"),
    ("number 0", lambda r: r.page(number=0), "number"),
    ("garbage cursor", lambda r: r.list(cursor="garbage"), "cursor"),
    ("pk of the wrong type", lambda r: r.get("one"), "id"),
    ("a where that is no expression", lambda r: r.count("score > 1"), "where"),
    ("naive datetime filter", lambda r: r.count(created_at=NAIVE), "naive"),
]


@pytest.mark.parametrize(
    ("call", "message"), [pytest.param(c, m, id=name) for name, c, m in REFUSED]
)
async def test_each_refusal_is_a_validation_error_that_writes_nothing(
    repo: Any, call: Callable[[Any], Any], message: str
) -> None:
    stored = await repo.add(idea(1))
    with pytest.raises(ValidationError, match=message):
        await call(repo)
    assert await repo.count() == 1
    assert await repo.get(stored.id) == stored


async def test_a_forged_cursor_position_is_refused(repo: Any) -> None:
    from contextstore import _cursor

    await repo.add_many([idea(n) for n in range(1, 5)])
    page = await repo.list(limit=2, order_by="score")
    assert page.next_cursor is not None
    # a well-formed cursor of this listing whose position no row can have
    scope_cursor = _cursor.decode_key(page.next_cursor, "table", _scope_of(page), 2)
    assert len(scope_cursor) == 2
    forged = _cursor.encode_key("table", _scope_of(page), ["high", 1])
    with pytest.raises(ValidationError, match="cursor: position out of range"):
        await repo.list(limit=2, order_by="score", cursor=forged)


def _scope_of(page: Page[Any]) -> str:
    """The scope a cursor carries (read back from it, as a forger would)."""
    import base64
    import json

    cursor = str(page.next_cursor)
    token = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    scope: str = json.loads(token.rpartition(b"|")[0])[2]
    return scope


class Mismatched(BaseModel):
    id: int | None = None
    source_id: str
    colour: str


async def test_a_record_that_does_not_match_the_table_is_refused(core: Store) -> None:
    with pytest.raises(ValidationError, match="no field for the column") as caught:
        core.table(ideas, Mismatched)
    assert "colour" in str(caught.value)
    with pytest.raises(ValidationError, match="contextstore's own"):
        core.table(sessions, Idea)
    with pytest.raises(ValidationError, match="expected a pydantic model"):
        core.table(ideas, dict)  # type: ignore[type-var]
    repository = core.table(ideas, Idea)
    assert isinstance(repository, TableRepository)
    assert repository.table is ideas
    assert repository.record is Idea


async def test_defaults_fill_the_not_null_columns_left_none(tables: Tables) -> None:
    repo = tables(jobs, Job)
    single = await repo.add(Job(name="a"))
    assert (single.state, single.attempts) == ("queued", 0)
    batch = await repo.add_many([Job(name="b"), Job(name="c", state="running", attempts=2)])
    assert [(job.name, job.state, job.attempts) for job in batch] == [
        ("b", "queued", 0),
        ("c", "running", 2),
    ]
    assert await repo.get(batch[1].id) == batch[1]
    # the update path: a None left to the server's default keeps the stored value
    running = await repo.update(single.id, state="running", attempts=4)
    upserted = await repo.upsert(Job(id=single.id, name="a2"), on=("id",))
    assert (upserted.id, upserted.name, upserted.state, upserted.attempts) == (
        running.id,
        "a2",
        "running",
        0,
    )


def test_a_python_default_is_refused(core: Store) -> None:
    from sqlalchemy import Column, MetaData

    stamped = Table(
        "stamped",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime, nullable=False, default=lambda: BASE),
    )

    class Stamped(BaseModel):
        id: int | None = None
        at: datetime | None = None

    with pytest.raises(ValidationError, match="Python default"):
        core.table(stamped, Stamped)


# -- many-to-many: a junction with a composite primary key ---------------------------


async def test_a_junction_links_both_sides(tables: Tables) -> None:
    cases = tables(tests_table, TestCase)
    feats = tables(features, Feature)
    links = tables(test_features, Link)
    await cases.add_many([TestCase(id="t-login", name="login"), TestCase(id="t-pay", name="pay")])
    auth, billing, ui = await feats.add_many(
        [Feature(name="auth"), Feature(name="billing"), Feature(name="ui")]
    )
    added = await links.add_many(
        [
            Link(test_id="t-login", feature_id=auth.id, weight=3),
            Link(test_id="t-login", feature_id=ui.id),
            Link(test_id="t-pay", feature_id=billing.id, weight=2),
            Link(test_id="t-pay", feature_id=auth.id),
        ]
    )
    assert [(link.test_id, link.feature_id) for link in added] == [
        ("t-login", auth.id),
        ("t-login", ui.id),
        ("t-pay", billing.id),
        ("t-pay", auth.id),
    ]
    # one side's links, in key order
    login = await links.list(test_id="t-login")
    assert [link.feature_id for link in login.items] == sorted([auth.id, ui.id])
    # the other side's rows, through the junction (a where-expression)
    of_login = select(test_features.c.feature_id).where(test_features.c.test_id == "t-login")
    found = await feats.list(features.c.id.in_(of_login), order_by="name")
    assert [feature.name for feature in found.items] == ["auth", "ui"]
    testing_auth = select(test_features.c.test_id).where(test_features.c.feature_id == auth.id)
    assert await cases.count(tests_table.c.id.in_(testing_auth)) == 2
    # the composite key: a tuple, in column order
    assert await links.get(("t-pay", billing.id)) == added[2]
    assert (await links.update(("t-pay", billing.id), weight=5)).weight == 5
    with pytest.raises(ValidationError, match="tuple"):
        await links.get("t-pay")
    with pytest.raises(ConflictError, match=r"^Link: a row with the same \(test_id, feature_id\)"):
        await links.add(Link(test_id="t-pay", feature_id=auth.id))
    with pytest.raises(NotFoundError):
        await links.add(Link(test_id="t-unknown", feature_id=auth.id))
    assert await links.delete(("t-login", ui.id)) is True
    assert await links.count(test_id="t-login") == 1
    assert await cases.delete("t-pay") is True  # the links go with it (ON DELETE CASCADE)
    assert await links.count() == 1


async def test_watched_engines_see_the_tables_statements(core: Store) -> None:
    # with a statement listener (OpenTelemetry, counters) every call runs on
    # SQLAlchemy Connections: the same results, and every statement seen
    seen: list[str] = []

    def watch(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        seen.append(statement)

    # replica reads (replica_urls) run on the replicas' own engines
    engines = [engine.sync_engine for engine in core.db.engines]
    for engine in engines:
        event.listen(engine, "after_cursor_execute", watch)
    try:
        repo = core.table(ideas, Idea)
        added = await repo.add_many([idea(n) for n in range(1, 6)])
        single = await repo.add(idea(6))
        assert await repo.get(single.id) == single
        walked = await _all(repo, order_by="score", limit=2)
        assert sorted(item.id for item in walked) == sorted(i.id for i in [*added, single])
        upserted = await repo.upsert(idea(1, title="again"))
        assert upserted.id == added[0].id
        assert await repo.count(ideas.c.score >= 0) == sum(1 for i in walked if i.score is not None)
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", watch)
    assert sum("ideas" in statement for statement in seen) >= 6


# -- units of work ------------------------------------------------------------------


class Boom(Exception):
    pass


async def test_table_writes_roll_back_with_a_failing_unit_of_work(core: Store) -> None:
    repo = core.table(ideas, Idea)
    with pytest.raises(Boom):  # noqa: PT012 - the block is the unit of work under test
        async with core.transaction() as tx:
            inside = tx.table(ideas, Idea)
            added = await inside.add(idea(1))
            await inside.add_many([idea(2), idea(3)])
            assert await inside.get(added.id) == added  # the unit reads its own writes
            assert await inside.count() == 3
            raise Boom
    assert await repo.count() == 0


async def test_a_unit_of_work_mixes_built_in_repositories_and_own_tables(core: Store) -> None:
    async with core.transaction() as tx:
        session = await tx.sessions.create(purpose="triage", created_by="planner")
        await tx.messages.add(session.id, sender="planner", content="importing ideas")
        stored = await tx.table(ideas, Idea).add(idea(1, source_id=session.id))
        await tx.table(ideas, Idea).update(stored.id, title="triaged")
    assert await core.sessions.get(session.id) == session
    assert await core.messages.count(session.id, viewer=ADMIN) == 1
    found = await core.table(ideas, Idea).get_by(source_id=session.id)
    assert found is not None
    assert found.title == "triaged"


async def test_a_failed_table_call_fails_the_unit_and_nothing_commits(core: Store) -> None:
    repo = core.table(ideas, Idea)
    await repo.add(idea(1))
    with pytest.raises(ContextStoreError, match="rolled back"):  # noqa: PT012 - the unit under test
        async with core.transaction() as tx:
            await tx.sessions.create(purpose="p", created_by="c", session_id="s-1")
            with pytest.raises(ConflictError):
                await tx.table(ideas, Idea).add(idea(1))
            with pytest.raises(ContextStoreError, match="failed earlier"):
                await tx.table(ideas, Idea).count()
    assert await core.sessions.get("s-1") is None
    # a refusal before any SQL leaves the unit usable
    async with core.transaction() as tx:
        with pytest.raises(ValidationError):
            await tx.table(ideas, Idea).add(idea(2, created_at=NAIVE))
        await tx.table(ideas, Idea).add(idea(2))
    assert await repo.count() == 2
    # and a savepoint recovers from a failed call
    async with core.transaction() as tx:
        inside = tx.table(ideas, Idea)
        with pytest.raises(ConflictError):
            async with tx.savepoint():
                await inside.add(idea(2))
        await inside.add(idea(3))
    assert await repo.count() == 3


async def test_tx_table_after_the_block_is_refused(core: Store) -> None:
    async with core.transaction() as tx:
        inside = tx.table(ideas, Idea)
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        await inside.count()
    with pytest.raises(ContextStoreError, match="transaction is closed"):
        tx.table(ideas, Idea)


@pytest.mark.sqlite
@pytest.mark.legacy
async def test_the_legacy_backend_refuses_own_tables(sqlite_empty_url: str) -> None:
    async with Store(Settings(database_url=sqlite_empty_url, backend="legacy")) as store:
        with pytest.raises(ConfigurationError, match="backend 'core'"):
            store.table(ideas, Idea)
        async with store.transaction() as tx:
            with pytest.raises(ConfigurationError, match="backend 'core'"):
                tx.table(ideas, Idea)


async def test_datetimes_read_back_as_aware_utc_with_microseconds(repo: Any) -> None:
    from datetime import timezone

    moment = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=timezone(timedelta(hours=5)))
    stored = await repo.add(idea(1, created_at=moment))
    assert stored.created_at == moment
    assert stored.created_at.utcoffset() == timedelta(0)
    assert (await repo.get(stored.id)).created_at == BASE.replace(
        year=2026, month=5, day=3, hour=22, minute=2, second=1, microsecond=123456
    )
