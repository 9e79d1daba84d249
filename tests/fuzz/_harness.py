"""The fuzz harness: one Store per test, driven by many Hypothesis examples.

Hypothesis calls the example function synchronously and many times, and the
``store`` fixture's event loop is not ours to re-enter, so a :class:`Fuzz`
owns an ``asyncio.Runner``: it opens the Store, seeds it, runs every example's
call and closes it, all on that one loop.

Per call (a repository method and tagged arguments, see ``_values``):

* only ``ContextStoreError`` subclasses may escape;
* an argument tagged invalid -> ``ValidationError``;
* every argument valid -> success, ``NotFoundError`` or ``ConflictError``
  (never a ``ValidationError``: the database must not refuse what the limits allow);
* a ``ValidationError`` is never the database's (raised before any SQL);
* any error -> nothing written: every table's row count and checksum are
  the same before and after, read through a separate connection.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import literal_column, select, table

from contextstore import (
    ConflictError,
    ConnectionManager,
    ContextStoreError,
    NewMessage,
    NotFoundError,
    Page,
    Settings,
    Store,
    ValidationError,
    Viewer,
)
from contextstore.errors import REFUSALS

from ._values import OMIT, Tagged, materialise, verdict

#: examples per repository method and backend; raise it for a deeper run.
EXAMPLES = int(os.environ.get("CONTEXTSTORE_TEST_FUZZ_EXAMPLES", "16"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
    ],
)
TABLES = ("sessions", "messages", "agent_memory", "audit_log", "session_participants")
#: sessions the seed creates; fuzzed deletes never target them.
SEED_SESSIONS = ("fuzz-a", "fuzz-b")
AGENTS = ("alice", "bob")
ALICE = Viewer(agent_id="alice", agent_type="writer")


@dataclass
class Call:
    """One repository call with tagged arguments."""

    method: str
    args: list[Tagged]
    kwargs: dict[str, Tagged]

    @property
    def valid(self) -> bool | None:
        return verdict(v for _, v in [*self.args, *self.kwargs.values()])

    def describe(self) -> str:
        def short(tagged: Tagged) -> str:
            value, valid = tagged
            try:
                text = repr(value)
            except ValueError:  # holds an int with more digits than int-to-text allows
                text = f"<{type(value).__name__} holding a huge int>"
            text = text if len(text) <= 80 else f"{text[:60]}...({len(text)} chars)"
            return f"{text}[{ {True: 'ok', False: 'BAD', None: '?'}[valid] }]"

        parts = [short(a) for a in self.args]
        parts += [f"{k}={short(v)}" for k, v in self.kwargs.items() if v[0] is not OMIT]
        return f"{self.method}({', '.join(parts)})"

    async def run(self, store: Store) -> Any:
        repository, method = self.method.split(".")
        function = getattr(getattr(store, repository), method)
        args = [materialise(value) for value, _ in self.args]
        kwargs = {
            k: materialise(value) for k, (value, _) in self.kwargs.items() if value is not OMIT
        }
        return await function(*args, **kwargs)


def call(method: str, *args: Any, **kwargs: Any) -> st.SearchStrategy[Call]:
    """A Call strategy from tagged-value strategies for each argument."""
    return st.tuples(st.tuples(*args), st.fixed_dictionaries(kwargs)).map(
        lambda drawn: Call(method, list(drawn[0]), dict(drawn[1]))
    )


@dataclass
class State:
    """Ids and cursors the seed created, to aim valid arguments at.

    Fixed once seeded: Hypothesis replays examples while it shrinks, and a
    strategy must draw the same way every time.
    """

    sessions: list[str] = field(default_factory=lambda: list(SEED_SESSIONS))
    #: ids fuzzed creates may take and fuzzed deletes may remove
    disposable: list[str] = field(default_factory=lambda: [f"fuzz-tmp-{i}" for i in range(4)])
    messages: list[int] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)


Strategies = dict[str, Callable[[State], st.SearchStrategy[Call]]]


class Fuzz:
    """A seeded Store on one backend plus an inspector connection for table snapshots."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        self.state = State()
        self.outcomes: collections.Counter[tuple[str, str]] = collections.Counter()
        self._runner = asyncio.Runner()
        self._store: Store | None = None
        self._inspector: ConnectionManager | None = None

    def __enter__(self) -> Fuzz:
        try:
            self._runner.run(self._open())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._runner.run(self._close())
        finally:
            self._runner.close()

    @property
    def store(self) -> Store:
        assert self._store is not None
        return self._store

    async def _open(self) -> None:
        self._store = await Store(Settings(database_url=self.url, backend=self.backend)).connect()
        self._inspector = ConnectionManager(Settings(database_url=self.url, auto_migrate=False))
        await self._seed(self._store)

    async def _close(self) -> None:
        if self._store is not None:
            await self._store.close()
        if self._inspector is not None:
            await self._inspector.dispose()

    async def _seed(self, store: Store) -> None:
        """Sessions, participants, messages, memory and audit rows, and a cursor per listing."""
        for session_id in SEED_SESSIONS:
            await store.sessions.create(purpose="fuzz", created_by="alice", session_id=session_id)
            for agent in AGENTS:
                await store.participants.join(session_id, agent, agent_type="writer")
            added = await store.messages.add_many(
                session_id,
                [
                    NewMessage(sender=agent, content=f"seed {visibility} words", visibility=v)
                    for agent in AGENTS
                    for visibility, v in (("open", "public"), ("mine", "private"))
                ],
            )
            self.state.messages.extend(m.id for m in added)
            await store.memory.set("alice", f"key-{session_id}", {"n": 1}, session_id=session_id)
            await store.audit.record("seed", agent_id="alice", session_id=session_id)
        await store.memory.set("alice", "global", [1, 2, 3])
        pages: list[Page[Any]] = [
            await store.sessions.list(limit=1),
            await store.messages.list("fuzz-a", viewer=ALICE, limit=1),
            await store.messages.list("fuzz-a", viewer=ALICE, limit=1, order="desc"),
            await store.messages.feed(viewer=ALICE, limit=1),
            await store.audit.list(limit=1),
        ]
        self.state.cursors = [page.next_cursor for page in pages if page.next_cursor is not None]
        assert len(self.state.cursors) == len(pages)

    async def snapshot(self) -> dict[str, tuple[int, str]]:
        """Row count and checksum of every table."""
        assert self._inspector is not None
        found = {}
        for name in TABLES:
            rows = await self._inspector.fetch_all(
                select(literal_column("*")).select_from(table(name))
            )
            text = sorted(repr(tuple(row.values())) for row in rows)
            found[name] = (len(rows), hashlib.sha256(repr(text).encode()).hexdigest())
        return found

    def check(self, drawn: Call) -> ContextStoreError | None:
        """Run one call and assert the properties in the module docstring."""
        return self._runner.run(self._check(drawn))

    async def _check(self, drawn: Call) -> ContextStoreError | None:
        before = await self.snapshot()
        error: ContextStoreError | None = None
        where = f"{self.backend} {drawn.describe()}"
        try:
            await drawn.run(self.store)
        except ContextStoreError as exc:
            error = exc
        except Exception as exc:
            raise AssertionError(
                f"{where} let {type(exc).__module__}.{type(exc).__name__} escape: {exc}"
            ) from exc
        valid = drawn.valid
        kind = type(error).__name__ if error is not None else "ok"
        self.outcomes[(drawn.method, kind)] += 1
        if valid is False:
            assert isinstance(error, ValidationError), f"{where} gave {kind}: {error}"
        if valid is True:
            assert error is None or isinstance(error, NotFoundError | ConflictError), (
                f"{where} refused valid input with {kind}: {error}"
            )
        if isinstance(error, ValidationError):
            assert str(error) != REFUSALS["invalid"], (
                f"{where}: the database, not the limits, refused it: {error}"
            )
        if error is not None:
            assert await self.snapshot() == before, f"{where} raised {kind} but wrote something"
        return error

    def summary(self) -> str:
        by_method: dict[str, dict[str, int]] = collections.defaultdict(dict)
        for (method, kind), count in sorted(self.outcomes.items()):
            by_method[method][kind] = count
        return f"{self.backend}: " + "; ".join(f"{m} {dict(k)}" for m, k in by_method.items())


def fuzz_repository(backend_url: tuple[str, str], strategies: Strategies) -> Fuzz:
    """Run FUZZ examples of each of the repository's methods on one backend, on one Store."""
    backend, url = backend_url
    with Fuzz(backend, url) as fuzz:
        for method in sorted(strategies):
            calls = strategies[method](fuzz.state)

            @FUZZ
            @given(calls)
            def example(drawn: Call) -> None:
                fuzz.check(drawn)

            example()
    print(f"\n{fuzz.summary()}")
    called = {method for method, _ in fuzz.outcomes}
    assert called == set(strategies), f"never called: {set(strategies) - called}"
    kinds = {kind for _, kind in fuzz.outcomes}
    assert {"ok", "ValidationError"} <= kinds, fuzz.outcomes
    return fuzz
