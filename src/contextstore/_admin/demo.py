"""The demo workload behind ``contextstore demo``: agents collaborating in sessions.

Every operation goes through the public Store API, so the demo doubles as a
smoke test of whichever backend and database it is pointed at.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contextstore.models import HealthReport, NewMessage, Viewer, Visibility
from contextstore.store import Store

T = TypeVar("T")

_AGENT_TYPES = ("planner", "coder", "reviewer")
_VISIBILITIES: tuple[Visibility, ...] = (
    "public",
    "public",
    "public",
    "private",
    "agent_only",
    "admin_only",
)
_TOPICS = (
    "database migration plan",
    "latency budget for search",
    "retry policy review",
    "schema drift report",
    "benchmark results summary",
    "pagination cursor design",
)
_WORDS = (
    "analysis",
    "proposal",
    "benchmark",
    "rollback",
    "deadline",
    "throughput",
    "checklist",
    "incident",
    "snapshot",
    "priority",
)


@dataclass
class DemoReport:
    """What the demo did and how long each kind of operation took."""

    sessions: int = 0
    participants: int = 0
    messages: int = 0
    memory_writes: int = 0
    searches: int = 0
    search_hits: int = 0
    feed_pages: int = 0
    audit_events: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    health: HealthReport | None = None
    elapsed: float = 0.0

    def percentiles(self) -> list[tuple[str, int, float, float, float]]:
        """(operation, count, p50, p95, p99) in milliseconds."""
        rows = []
        for name, samples in sorted(self.latencies.items()):
            ordered = sorted(samples)
            if len(ordered) >= 2:
                cuts = statistics.quantiles(ordered, n=100, method="inclusive")
                p50, p95, p99 = cuts[49], cuts[94], cuts[98]
            else:
                p50 = p95 = p99 = ordered[0]
            rows.append((name, len(ordered), p50, p95, p99))
        return rows


async def run_demo(
    store: Store,
    *,
    agents: int,
    sessions: int,
    messages: int,
    progress: Callable[[int], None] | None = None,
    seed: int = 7,
) -> DemoReport:
    """Run the collaboration workload; ``progress(n)`` is called as steps finish."""
    rng = random.Random(seed)
    report = DemoReport()
    started = time.perf_counter()
    roster = [(f"agent-{i:02d}", _AGENT_TYPES[i % len(_AGENT_TYPES)]) for i in range(agents)]

    async def timed(name: str, call: Awaitable[T]) -> T:
        begin = time.perf_counter()
        result = await call
        report.latencies[name].append((time.perf_counter() - begin) * 1000)
        return result

    async def one_session(index: int) -> None:
        owner, _ = roster[index % len(roster)]
        session = await timed(
            "sessions.create",
            store.sessions.create(
                purpose=_TOPICS[index % len(_TOPICS)],
                created_by=owner,
                metadata={"demo": True, "index": index},
            ),
        )
        report.sessions += 1
        members = rng.sample(roster, k=min(len(roster), max(2, len(roster) // 2)))
        for agent_id, agent_type in members:
            await timed(
                "participants.join",
                store.participants.join(session.id, agent_id, agent_type=agent_type),
            )
            report.participants += 1
        # (id, sender, visibility) of what was posted: a reply goes to a
        # message its sender may read (a hidden parent is refused as missing)
        posted: list[tuple[int, str, str]] = []
        for n in range(messages):
            agent_id, agent_type = members[n % len(members)]
            words = " ".join(rng.sample(_WORDS, 3))
            readable = [
                row_id
                for row_id, sender, visibility in posted
                if visibility == "public" or sender == agent_id
            ]
            parent = rng.choice(readable) if readable and rng.random() < 0.3 else None
            message = await timed(
                "messages.add",
                store.messages.add(
                    session.id,
                    sender=agent_id,
                    sender_type=agent_type,
                    content=f"{_TOPICS[index % len(_TOPICS)]}: {words} (step {n})",
                    visibility=rng.choice(_VISIBILITIES),
                    parent_message_id=parent,
                ),
            )
            posted.append((message.id, agent_id, message.visibility))
            report.messages += 1
            if n % 5 == 0:
                await timed(
                    "memory.set",
                    store.memory.set(
                        agent_id,
                        f"notes/{session.id}/{n}",
                        {"step": n, "words": words.split()},
                        session_id=session.id,
                        ttl=3600,
                    ),
                )
                report.memory_writes += 1
                await timed(
                    "memory.get",
                    store.memory.get(agent_id, f"notes/{session.id}/{n}", session_id=session.id),
                )
            if progress:
                progress(1)
        batch = [
            NewMessage(
                sender=members[0][0],
                sender_type=members[0][1],
                content=f"summary {i}: {' '.join(rng.sample(_WORDS, 2))}",
            )
            for i in range(5)
        ]
        await timed("messages.add_many", store.messages.add_many(session.id, batch))
        report.messages += len(batch)
        agent_id, agent_type = members[-1]
        viewer = Viewer(agent_id=agent_id, agent_type=agent_type)
        await timed("messages.list", store.messages.list(session.id, viewer=viewer, limit=20))
        hits = await timed(
            "messages.search",
            store.messages.search(rng.choice(_WORDS), viewer=viewer, session_id=session.id),
        )
        report.searches += 1
        report.search_hits += len(hits)
        await timed(
            "audit.record",
            store.audit.record(
                "session.reviewed",
                agent_id=agent_id,
                session_id=session.id,
                resource="session",
                action="review",
                result="ok",
            ),
        )
        report.audit_events += 1
        await timed(
            "sessions.activity",
            store.sessions.activity(session.id, viewer=viewer),
        )

    # a TaskGroup, not gather: on the first failure gather returns with the
    # other sessions still running, the Store closes under them and their
    # checked-out connections are abandoned; the group cancels and awaits them
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(sessions):
                group.create_task(one_session(i))
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None

    for agent_id, agent_type in roster:
        viewer = Viewer(agent_id=agent_id, agent_type=agent_type)
        cursor: str | None = None
        for _ in range(3):
            page = await timed(
                "messages.feed", store.messages.feed(viewer=viewer, limit=25, cursor=cursor)
            )
            report.feed_pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
    await timed("audit.activity", store.audit.activity(bucket="minute"))
    report.health = await store.health()
    report.elapsed = time.perf_counter() - started
    return report


def summary_rows(report: DemoReport) -> list[tuple[str, Any]]:
    """The headline numbers of a demo run, for printing."""
    return [
        ("sessions", report.sessions),
        ("participants", report.participants),
        ("messages", report.messages),
        ("memory writes", report.memory_writes),
        ("searches (hits)", f"{report.searches} ({report.search_hits})"),
        ("feed pages", report.feed_pages),
        ("audit events", report.audit_events),
        ("elapsed", f"{report.elapsed:.2f} s"),
    ]


def summary_document(report: DemoReport) -> dict[str, Any]:
    """The same facts as :func:`summary_rows` and the latency table, for ``--json``."""
    return {
        "sessions": report.sessions,
        "participants": report.participants,
        "messages": report.messages,
        "memory_writes": report.memory_writes,
        "searches": report.searches,
        "search_hits": report.search_hits,
        "feed_pages": report.feed_pages,
        "audit_events": report.audit_events,
        "elapsed_seconds": round(report.elapsed, 3),
        "latency_ms": [
            {
                "operation": name,
                "count": count,
                "p50": round(p50, 3),
                "p95": round(p95, 3),
                "p99": round(p99, 3),
            }
            for name, count, p50, p95, p99 in report.percentiles()
        ],
        "health": None if report.health is None else report.health.model_dump(mode="json"),
    }
