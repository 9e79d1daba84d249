"""``contextstore.otel``: a span per SQL statement, on every dialect and every road a
statement takes (repository calls, units of work, bulk inserts, ``store.db``).

Spans are collected by the SDK's in-memory exporter; the statements the
engine really ran are counted by a listener of the test's own on the same
cursor events, so "a span per statement" is checked against the database's
side of the story, not the exporter's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text, event, select

from contextstore import NewMessage, Settings, Store, Viewer
from contextstore._execute import observed
from contextstore.otel import instrument, instrumented, uninstrument
from contextstore.schema import messages, sessions
from tests.topologies._registry import REPLICA_URLS

#: a parameter value that must never reach a span
SECRET = "hunter2-SECRET-5b1e0d"
ADMIN = Viewer(agent_id="root", is_admin=True)
#: the statement's attribute: the old semantic conventions, or the stable ones
STATEMENT_KEYS = ("db.statement", "db.query.text")


class Traced:
    """A store instrumented into an in-memory exporter, with the statements
    its engine ran counted alongside."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.statements: list[str] = []
        for engine in store.db.engines:  # the primary's and every replica's
            event.listen(engine.sync_engine, "after_cursor_execute", self.count)

    def count(self, _conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        self.statements.append(statement)

    def reset(self) -> None:
        self.exporter.clear()
        self.statements.clear()

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
async def traced(empty_url: str) -> AsyncIterator[Traced]:
    async with Store(Settings(database_url=empty_url)) as store:
        await store.sessions.create(purpose="traced", created_by="a", session_id="s1")
        result = Traced(store)
        instrument(store, tracer_provider=result.provider)
        result.reset()
        yield result
        uninstrument(store)


def statement_of(span: ReadableSpan) -> str:
    attributes = dict(span.attributes or {})
    found = [attributes[key] for key in STATEMENT_KEYS if key in attributes]
    assert found, f"span {span.name!r} carries no statement: {attributes}"
    return str(found[0])


def assert_span_per_statement(traced: Traced) -> list[str]:
    """Every statement the engine ran has its span, with its text and no value."""
    spans = traced.spans()
    texts = [statement_of(span) for span in spans]
    assert texts, "no span at all"
    assert sorted(texts) == sorted(traced.statements)
    for span in spans:
        assert SECRET not in repr(dict(span.attributes or {}))
        assert SECRET not in span.name
    return texts


def has(texts: list[str], *words: str) -> bool:
    return any(all(word in text.lower() for word in words) for text in texts)


async def add_one(store: Store) -> Any:
    return await store.messages.add("s1", sender="a", content=SECRET, metadata={"k": SECRET})


CALLS: dict[str, tuple[Callable[[Store], Awaitable[Any]], tuple[str, ...]]] = {
    "sessions.create": (
        lambda s: s.sessions.create(purpose=SECRET, created_by="a", session_id="s2"),
        ("insert", "sessions"),
    ),
    "messages.add": (add_one, ("insert", "messages")),
    "messages.list": (lambda s: s.messages.list("s1", viewer=ADMIN), ("select", "messages")),
    "memory.set": (
        lambda s: s.memory.set("agent", "k", {"token": SECRET}, session_id="s1"),
        ("agent_memory",),
    ),
    "memory.get": (
        lambda s: s.memory.get("agent", "k", session_id="s1"),
        ("select", "agent_memory"),
    ),
    "store.db.fetch_all": (
        lambda s: s.db.fetch_all(select(sessions).where(sessions.c.purpose != SECRET)),
        ("select", "sessions"),
    ),
}


@pytest.mark.parametrize("name", list(CALLS))
async def test_a_span_per_statement_of_each_call(traced: Traced, name: str) -> None:
    call, words = CALLS[name]
    await call(traced.store)
    texts = assert_span_per_statement(traced)
    assert has(texts, *words), texts


async def test_a_unit_of_work_has_a_span_per_statement(traced: Traced) -> None:
    store = traced.store
    async with store.transaction() as tx:
        await tx.sessions.update("s1", purpose=SECRET)
        await tx.messages.add("s1", sender="a", content=SECRET)
        await tx.memory.set("agent", "k", SECRET)
        await tx.fetch_all(select(messages.c.id).where(messages.c.content == SECRET))
    texts = assert_span_per_statement(traced)
    for words in (("update", "sessions"), ("insert", "messages"), ("agent_memory",)):
        assert has(texts, *words), texts
    assert has(texts, "select", "messages")
    # and it committed
    assert (await store.sessions.get("s1")).purpose == SECRET  # type: ignore[union-attr]


@pytest.mark.parametrize("count", [3, 300], ids=["few", "bulk"])
async def test_add_many_has_a_span_per_statement(traced: Traced, count: int) -> None:
    # 300 rows take PostgreSQL's COPY and MySQL's pipelined INSERTs with their
    # values in the text on the driver path: instrumented, parameterised
    # INSERTs the events see instead
    items = [NewMessage(sender="a", content=f"{SECRET} {n}") for n in range(count)]
    added = await traced.store.messages.add_many("s1", items)
    texts = assert_span_per_statement(traced)
    assert has(texts, "insert", "messages")
    assert not has(texts, "copy ")
    assert [m.content for m in added] == [i.content for i in items]
    stored = await traced.store.db.fetch_all(
        select(messages.c.id, messages.c.content).order_by(messages.c.id)
    )
    assert [(r["id"], r["content"]) for r in stored] == [(m.id, m.content) for m in added]


async def test_spans_name_the_dialect_and_carry_no_password(traced: Traced) -> None:
    await traced.store.sessions.get("s1")
    (span,) = traced.spans()
    attributes = dict(span.attributes or {})
    assert attributes.get("db.system", attributes.get("db.system.name")) in (
        "sqlite",
        "postgresql",
        "mysql",
    )
    password = traced.store.db.engine.url.password
    if password:
        assert str(password) not in repr(attributes)


async def test_uninstrument_stops_the_spans_and_gives_the_driver_path_back(
    traced: Traced,
) -> None:
    store = traced.store
    assert instrumented(store)
    assert observed(store.db.engine)
    uninstrument(store)
    assert not instrumented(store)
    # (the test's own counter still listens: the statements still run watched)
    await store.sessions.get("s1")
    await store.db.fetch_all(select(sessions))
    async with store.transaction() as tx:
        await tx.messages.add("s1", sender="a", content="after")
    assert traced.spans() == []
    assert traced.statements  # the statements did run
    # instrumenting again works, and once is enough
    instrument(store, tracer_provider=traced.provider)
    instrument(store, tracer_provider=traced.provider)
    traced.reset()
    await store.sessions.get("s1")
    assert len(traced.spans()) == 1


async def test_instrumenting_alone_switches_the_core_to_observed_connections(
    empty_url: str,
) -> None:
    async with Store(Settings(database_url=empty_url)) as store:
        assert not observed(store.db.engine)
        instrument(store, tracer_provider=TracerProvider())
        assert observed(store.db.engine)
        uninstrument(store.db)  # the ConnectionManager names the same engine
        assert not observed(store.db.engine)
        uninstrument(store)  # not instrumented: nothing to do


def test_instrument_refuses_what_is_not_a_store() -> None:
    with pytest.raises(TypeError, match="expected a Store"):
        instrument("sqlite://")  # type: ignore[arg-type]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, check=False
    )


def test_importing_contextstore_imports_no_opentelemetry() -> None:
    done = _python(
        "import sys, contextstore, contextstore.store, contextstore.connection\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('opentelemetry'))\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


def test_without_the_extra_the_import_error_names_it() -> None:
    # a None entry in sys.modules makes that import fail, as if not installed
    done = _python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import contextstore.otel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'contextstore[otel]'" in done.stdout


_notes_metadata = MetaData()
notes = Table(
    "otel_notes",
    _notes_metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("source_id", String(255), nullable=False, unique=True),
    Column("body", Text, nullable=False),
    mysql_charset="utf8mb4",
)


class Note(BaseModel):
    id: int | None = None
    source_id: str
    body: str


async def test_a_service_table_has_a_span_per_statement(traced: Traced) -> None:
    store = traced.store
    async with store.db.engine.begin() as conn:
        await conn.run_sync(_notes_metadata.create_all)
    traced.reset()
    repo = store.table(notes, Note)
    added = await repo.add(Note(source_id="n1", body=SECRET))
    await repo.add_many([Note(source_id=f"m{n}", body=f"{SECRET} {n}") for n in range(3)])
    assert await repo.get_by(source_id="n1") == added
    async with store.transaction() as tx:
        await tx.table(notes, Note).update(added.id, body="changed")
    page = await repo.list(notes.c.body != SECRET, limit=10)
    texts = assert_span_per_statement(traced)
    for words in (("insert", "otel_notes"), ("select", "otel_notes"), ("update", "otel_notes")):
        assert has(texts, *words), texts
    assert page.items[0].source_id == "n1"


@pytest.mark.replicas
async def test_replica_reads_have_their_spans(postgresql_replicas_empty_url: str) -> None:
    url = postgresql_replicas_empty_url
    settings = Settings(database_url=url, replica_urls=REPLICA_URLS[url])
    async with Store(settings) as store:
        await store.sessions.create(purpose="traced", created_by="a", session_id="s1")
        _primary, *replicas = store.db.engines
        assert len(replicas) == 2
        traced = Traced(store)
        served: list[int] = []
        for engine in replicas:
            event.listen(
                engine.sync_engine, "after_cursor_execute", lambda *_args: served.append(1)
            )
        instrument(store, tracer_provider=traced.provider)
        assert instrumented(store)
        traced.reset()

        async def read() -> None:  # a task of its own: no write of its own to wait for
            assert (await store.sessions.get("s1")) is not None

        for _ in range(6):
            await asyncio.create_task(read())
        uninstrument(store)
        assert not instrumented(store)
    assert served, "no read went to a replica"
    texts = assert_span_per_statement(traced)
    assert has(texts, "select", "sessions")
