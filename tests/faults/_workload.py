"""A mixed workload over the public Store API, and the verifier that judges it after a fault.

Every write carries markers unique to it (message contents, memory keys, audit
resources), so the rows it left behind can be found again and counted. Each
operation ends in one of:

* ``ok``: acknowledged; its rows must be there exactly once;
* ``failed``: a contextstore error that says nothing was written
  (``may_have_committed`` False, or any other typed error): its rows must be absent;
* ``unknown``: ``DatabaseUnavailableError(may_have_committed=True)``: present or
  absent, but never twice and never half a batch;
* ``untyped``: anything that is not a ``ContextStoreError`` escaped: always a failure.

A ``session`` write (``sessions.create``) carries its marker as the purpose.

The verifier reads back through a fresh Store (its own pool and connections)
after the fault has been healed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from contextstore import (
    ConflictError,
    ContextStoreError,
    DatabaseUnavailableError,
    NewMessage,
    Settings,
    Store,
    Viewer,
)
from contextstore.connection import RETRY_WINDOW
from contextstore.schema import agent_memory, audit_log, messages, sessions

OK = "ok"
FAILED = "failed"
UNKNOWN = "unknown"
UNTYPED = "untyped"

#: ``raw_insert`` is ``store.db.execute(insert(...))``: a write the store cannot know
#: to be idempotent, so a lost acknowledgement must surface, never be retried.
WRITES = ("add", "add_many", "memory", "memory_new", "audit", "raw_insert", "session")
READS = ("list", "count", "memory_get", "audit_list")
#: relative weights of the default mix: mostly writes, some reads.
DEFAULT_MIX: dict[str, int] = {
    "add": 4,
    "add_many": 2,
    "memory": 2,
    "memory_new": 1,
    "audit": 2,
    "raw_insert": 1,
    "list": 1,
    "count": 1,
    "memory_get": 1,
    "audit_list": 1,
}
BATCH_SIZE = 5
#: seconds an operation may take beyond the retry window and its own timeouts.
DEADLINE_MARGIN = 5.0


def operation_deadline(settings: Settings) -> float:
    """How long one operation may take at most: every retry fits in the retry window,
    and the last attempt may still need a connect and a statement."""
    statement = settings.statement_timeout or 0.0
    return RETRY_WINDOW + settings.connect_timeout + statement + DEADLINE_MARGIN


@dataclass
class Op:
    """One call and how it ended."""

    id: int
    kind: str
    #: what the call wrote (contents, keys, resources); empty for reads.
    markers: tuple[str, ...]
    started: float = 0.0
    ended: float = 0.0
    status: str = ""
    error: BaseException | None = None
    #: ids the call returned (messages, audit events), to compare with the rows.
    ids: tuple[int, ...] = ()

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def is_write(self) -> bool:
        return self.kind in WRITES

    def describe(self) -> str:
        error = f" {type(self.error).__name__}: {self.error}" if self.error else ""
        return f"#{self.id} {self.kind} {self.status} {self.duration:.2f}s{error}"


class Workload:
    """Runs mixed operations on ``store`` and records every outcome in ``ops``.

    Args:
        store: a connected Store (core backend).
        session_id: an existing session the messages go to.
        mix: operation kinds and their weights.
        seed: for a reproducible choice of operations.
        batch_size: messages per ``add_many`` call.
    """

    def __init__(
        self,
        store: Store,
        *,
        session_id: str,
        mix: dict[str, int] | None = None,
        seed: int = 0,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.tag = f"wl{uuid.uuid4().hex[:10]}"
        self.agent = f"{self.tag}-agent"
        self.viewer = Viewer(agent_id=self.agent, is_admin=True)
        self.mix = dict(mix or DEFAULT_MIX)
        self.batch_size = batch_size
        self.ops: list[Op] = []
        self._random = random.Random(seed)
        self._next = 0

    @classmethod
    async def prepare(cls, store: Store, **kwargs: Any) -> Workload:
        """A workload with its own fresh session (created before any fault)."""
        session = await store.sessions.create(purpose="fault workload", created_by="faults")
        return cls(store, session_id=session.id, **kwargs)

    def _new_op(self, kind: str) -> Op:
        self._next += 1
        n = self._next
        marker = f"{self.tag}:{n}"
        markers: tuple[str, ...]
        if kind == "add_many":
            markers = tuple(f"{marker}:{i}" for i in range(self.batch_size))
        elif kind in WRITES:
            markers = (marker,)
        else:
            markers = ()
        op = Op(id=n, kind=kind, markers=markers)
        self.ops.append(op)
        return op

    async def step(self, kind: str | None = None) -> Op:
        """Run one operation (``kind`` or a random one from the mix) and record it."""
        if kind is None:
            kinds = list(self.mix)
            kind = self._random.choices(kinds, weights=[self.mix[k] for k in kinds])[0]
        op = self._new_op(kind)
        op.started = time.monotonic()
        try:
            await self._perform(op)
        except DatabaseUnavailableError as exc:
            op.status = UNKNOWN if exc.may_have_committed else FAILED
            op.error = exc
        except ContextStoreError as exc:
            op.status = FAILED
            op.error = exc
        except Exception as exc:  # anything else escaping the public API is a bug
            op.status = UNTYPED
            op.error = exc
        else:
            op.status = OK
        finally:
            op.ended = time.monotonic()
        return op

    async def _perform(self, op: Op) -> None:
        store, sid = self.store, self.session_id
        if op.kind == "add":
            message = await store.messages.add(sid, sender=self.agent, content=op.markers[0])
            assert message.content == op.markers[0]
            op.ids = (message.id,)
        elif op.kind == "add_many":
            batch = [NewMessage(sender=self.agent, content=text) for text in op.markers]
            added = await store.messages.add_many(sid, batch)
            assert [m.content for m in added] == list(op.markers)
            op.ids = tuple(m.id for m in added)
        elif op.kind == "memory":
            entry = await store.memory.set(self.agent, op.markers[0], {"op": op.id})
            assert entry.value == {"op": op.id}
        elif op.kind == "memory_new":
            entry = await store.memory.set(
                self.agent, op.markers[0], {"op": op.id}, overwrite=False
            )
            assert entry.value == {"op": op.id}
        elif op.kind == "audit":
            event = await store.audit.record(
                "fault.write", agent_id=self.agent, resource=op.markers[0]
            )
            op.ids = (event.id,)
        elif op.kind == "session":
            session = await store.sessions.create(purpose=op.markers[0], created_by=self.agent)
            assert session.purpose == op.markers[0]
        elif op.kind == "raw_insert":
            await store.db.execute(
                insert(audit_log).values(
                    event_type="fault.raw",
                    agent_id=self.agent,
                    resource=op.markers[0],
                    metadata={},
                    timestamp=datetime.now(UTC),
                )
            )
        elif op.kind == "list":
            await store.messages.list(sid, viewer=self.viewer, limit=20, order="desc")
        elif op.kind == "count":
            await store.messages.count(sid, viewer=self.viewer)
        elif op.kind == "memory_get":
            await store.memory.get(self.agent, f"{self.tag}:{max(1, self._next - 3)}")
        elif op.kind == "audit_list":
            await store.audit.list(agent_id=self.agent, limit=10)
        else:
            raise ValueError(f"unknown operation kind {op.kind!r}")

    async def run(
        self,
        *,
        seconds: float | None = None,
        stop: asyncio.Event | None = None,
        workers: int = 4,
        pause: float = 0.0,
        pause_after_error: float = 0.05,
    ) -> None:
        """Run ``workers`` concurrent loops of random operations until ``seconds``
        pass or ``stop`` is set."""
        if seconds is None and stop is None:
            raise ValueError("give seconds or stop")
        end = None if seconds is None else time.monotonic() + seconds

        def done() -> bool:
            return (stop is not None and stop.is_set()) or (
                end is not None and time.monotonic() >= end
            )

        async def worker() -> None:
            while not done():
                op = await self.step()
                delay = pause if op.status == OK else pause_after_error
                if delay:
                    await asyncio.sleep(delay)
                else:
                    await asyncio.sleep(0)

        await asyncio.gather(*(worker() for _ in range(workers)))

    def not_ok(self, limit: int = 10) -> list[str]:
        """The first calls that did not end ``ok``, described (for reports)."""
        return [op.describe() for op in self.ops if op.status != OK][:limit]

    def summary(self) -> dict[str, Any]:
        return summarize(self.ops)


def summarize(ops: Sequence[Op]) -> dict[str, Any]:
    """How many operations ended how, and the slowest."""
    statuses = Counter(op.status for op in ops)
    return {
        "ops": len(ops),
        "writes": sum(1 for op in ops if op.is_write),
        "ok": statuses[OK],
        "failed": statuses[FAILED],
        "unknown": statuses[UNKNOWN],
        "untyped": statuses[UNTYPED],
        "max_duration_s": round(max((op.duration for op in ops), default=0.0), 3),
    }


@dataclass
class Verdict:
    """What the read-back found; :meth:`check` turns every problem into an assertion."""

    summary: dict[str, Any]
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    partial_batches: list[str] = field(default_factory=list)
    failed_but_written: list[str] = field(default_factory=list)
    false_conflicts: list[str] = field(default_factory=list)
    id_mismatches: list[str] = field(default_factory=list)
    untyped: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    #: unknown outcomes that did / did not land.
    unknown_present: int = 0
    unknown_absent: int = 0

    def problems(self) -> dict[str, list[str]]:
        found = {
            "lost acknowledged writes": self.lost,
            "duplicates": self.duplicates,
            "partial batches": self.partial_batches,
            "failed (may_have_committed=False) but written": self.failed_but_written,
            "false ConflictError on a fresh key": self.false_conflicts,
            "returned id differs from the stored row": self.id_mismatches,
            "untyped errors escaped": self.untyped,
            "operations past their deadline": self.late,
        }
        return {name: items for name, items in found.items() if items}

    def check(self) -> None:
        problems = self.problems()
        assert not problems, "\n".join(
            f"{len(items)} {name}: {items[:5]}" for name, items in problems.items()
        )

    def figures(self) -> dict[str, Any]:
        return {
            **self.summary,
            "lost": len(self.lost),
            "duplicates": len(self.duplicates),
            "partial_batches": len(self.partial_batches),
            "failed_but_written": len(self.failed_but_written),
            "unknown_landed": self.unknown_present,
            "unknown_absent": self.unknown_absent,
        }


async def verify(
    url: str, workloads: Sequence[Workload], *, deadline: float | None = None
) -> Verdict:
    """Read every workload's rows back through a fresh Store and judge each outcome.

    Args:
        url: the database, reached directly (not through a proxy).
        workloads: what ran; their markers say which rows belong to which call.
        deadline: seconds any single operation may have taken.
    """
    return await judge(
        url,
        [op for workload in workloads for op in workload.ops],
        agents=[workload.agent for workload in workloads],
        session_ids=[workload.session_id for workload in workloads],
        deadline=deadline,
    )


async def judge(
    url: str,
    ops: Sequence[Op],
    *,
    agents: Sequence[str],
    session_ids: Sequence[str],
    deadline: float | None = None,
) -> Verdict:
    """:func:`verify` for operations recorded elsewhere (another process, say).

    Args:
        url: the database.
        ops: every call and how it ended; their markers say which rows are theirs.
        agents: the senders, memory owners, audit agents and session creators they used.
        session_ids: the sessions their messages went to.
        deadline: seconds any single operation may have taken.
    """
    verdict = Verdict(summary=summarize(ops))
    async with Store(Settings(database_url=url, auto_migrate=False)) as fresh:
        message_rows = await fresh.db.fetch_all(
            select(messages.c.id, messages.c.content).where(messages.c.session_id.in_(session_ids))
        )
        memory_rows = await fresh.db.fetch_all(
            select(agent_memory.c.key, agent_memory.c.value).where(
                agent_memory.c.agent_id.in_(agents)
            )
        )
        audit_rows = await fresh.db.fetch_all(
            select(audit_log.c.id, audit_log.c.resource).where(audit_log.c.agent_id.in_(agents))
        )
        session_rows = await fresh.db.fetch_all(
            select(sessions.c.purpose).where(sessions.c.created_by.in_(agents))
        )

    # marker -> ids of the rows carrying it
    stored: dict[str, list[int]] = {}
    for row in message_rows:
        stored.setdefault(row["content"], []).append(row["id"])
    for row in audit_rows:
        stored.setdefault(row["resource"], []).append(row["id"])
    for row in memory_rows:
        stored.setdefault(row["key"], []).append(0)
    for row in session_rows:
        stored.setdefault(row["purpose"], []).append(0)

    for op in ops:
        if op.status == UNTYPED:
            verdict.untyped.append(op.describe())
        if deadline is not None and op.duration > deadline:
            verdict.late.append(op.describe())
        if not op.is_write:
            continue
        counts = [len(stored.get(marker, [])) for marker in op.markers]
        present = sum(1 for count in counts if count)
        if any(count > 1 for count in counts):
            verdict.duplicates.append(f"{op.describe()} counts={counts}")
        if 0 < present < len(op.markers):
            verdict.partial_batches.append(f"{op.describe()} present={present}/{len(op.markers)}")
        if isinstance(op.error, ConflictError) and op.kind == "memory_new":
            verdict.false_conflicts.append(op.describe())
        if op.status == OK:
            if present < len(op.markers):
                verdict.lost.append(op.describe())
            elif op.ids:
                found = tuple(stored[marker][0] for marker in op.markers)
                if found != op.ids:
                    verdict.id_mismatches.append(f"{op.describe()} returned={op.ids} {found=}")
        elif op.status == FAILED and present:
            verdict.failed_but_written.append(op.describe())
        elif op.status == UNKNOWN:
            if present:
                verdict.unknown_present += 1
            else:
                verdict.unknown_absent += 1
    return verdict


class EngineWatch:
    """Counts what the engine under a Store went through: attempts and driver errors.

    Every repository call runs ``ConnectionManager.run`` once, and each attempt
    checks a connection out once, so ``checkouts - calls`` is a lower bound of
    the attempts that were repeated (an attempt that failed to connect checks
    nothing out).
    """

    def __init__(self, store: Store) -> None:
        from sqlalchemy import event

        self.checkouts = 0
        self.driver_errors = 0
        self.disconnects = 0
        self.pre_ping_failures = 0
        engine = store.db.engine.sync_engine
        event.listen(engine.pool, "checkout", self._checkout)
        event.listen(engine, "handle_error", self._error)

    def _checkout(self, *_args: Any) -> None:
        self.checkouts += 1

    def _error(self, context: Any) -> None:
        self.driver_errors += 1
        if context.is_disconnect:
            self.disconnects += 1
        if getattr(context, "is_pre_ping", False):
            self.pre_ping_failures += 1

    def figures(self, calls: int) -> dict[str, int]:
        return {
            "retries_at_least": max(0, self.checkouts - calls),
            "driver_errors": self.driver_errors,
            "disconnects_seen": self.disconnects,
            "pre_ping_failures": self.pre_ping_failures,
        }


#: (test id, figures) a fault test measured, moved onto its report when it ends.
FIGURES: list[tuple[str, dict[str, Any]]] = []
#: the report's user property that carries them to the terminal summary
FIGURES_PROPERTY = "fault figures"


def report(test_id: str, figures: dict[str, Any]) -> None:
    """Keep a test's figures for the terminal summary (and print them for ``-s``)."""
    FIGURES.append((test_id, figures))
    print(f"\n[faults] {test_id}: {figures}")
