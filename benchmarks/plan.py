"""What one run does: the dialects, the sizes and budgets, the operations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

DIALECTS = ("sqlite", "postgresql", "mysql")
#: connections in every pool of the concurrent case (raw pools and core pool_size).
POOL_SIZE = 10

READ_SESSION = "bench-read"
WRITE_SESSION = "bench-write"
MEMORY_AGENT = "bench-agent"
MEMORY_KEYS = 100
PAGE_SIZE = 50
SEARCH_LIMIT = 20
#: calls in one ``unit_of_work`` transaction: add, get of the new message,
#: memory.set, memory.get, get of a read-session message.
UNIT_CALLS = 5


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one run.

    Attributes:
        mode: ``"full"``, ``"quick"`` or ``"custom"`` (printed and stored in the JSON).
        session_messages: messages seeded into the read session (list, pages, search).
        far_page: the page number compared with page 1 (reached by a cursor walk).
        bulk_small, bulk_large: rows per ``add_many`` call in the two bulk operations.
        rounds: interleaved rounds per operation.
        large_rounds: rounds of the large bulk insert (one call per subject and round).
        budget: seconds one subject's timed batch runs for in one round.
        concurrent_tasks: tasks sharing the pool of ``POOL_SIZE`` in the concurrent case.
        gets_per_task: gets each of those tasks runs per burst.
    """

    mode: str
    session_messages: int
    far_page: int
    bulk_small: int
    bulk_large: int
    rounds: int
    large_rounds: int
    budget: float
    concurrent_tasks: int = 50
    gets_per_task: int = 10

    @classmethod
    def full(cls) -> Plan:
        return cls(
            mode="full",
            session_messages=100_000,
            far_page=1_000,
            bulk_small=1_000,
            bulk_large=20_000,
            rounds=5,
            large_rounds=5,
            budget=0.5,
            gets_per_task=20,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            mode="quick",
            session_messages=10_000,
            far_page=100,
            bulk_small=1_000,
            bulk_large=5_000,
            rounds=3,
            large_rounds=1,
            budget=0.1,
            gets_per_task=4,
        )

    def describe(self) -> str:
        return (
            f"{self.mode}: read session of {self.session_messages:,} messages, "
            f"far page {self.far_page:,}, add_many of {self.bulk_small:,} and "
            f"{self.bulk_large:,}, {self.rounds} interleaved rounds of ~{self.budget:g} s "
            f"per subject ({self.large_rounds} for the large bulk), "
            f"{self.concurrent_tasks} tasks on a pool of {POOL_SIZE}"
        )


class OpSpec(NamedTuple):
    """One benchmarked operation."""

    key: str
    label: str
    kind: str  # "call" (one call per sample) or "burst" (concurrent tasks)
    write: bool


def operations(plan: Plan) -> list[OpSpec]:
    # reads first: searched and listed data is then exactly the seeded data
    return [
        OpSpec("get", "get", "call", False),
        OpSpec("list_newest", f"list {PAGE_SIZE} newest", "call", False),
        OpSpec("page_1", "page 1", "call", False),
        OpSpec("page_far", f"page {plan.far_page:,}", "call", False),
        OpSpec("search", f"search {_count(plan.session_messages)}", "call", False),
        OpSpec("memory_get", "memory.get", "call", False),
        OpSpec("concurrent_get", f"get x{plan.concurrent_tasks} tasks", "burst", False),
        OpSpec("add", "add", "call", True),
        OpSpec("add_many_small", f"add_many {_count(plan.bulk_small)}", "call", True),
        OpSpec("add_many_large", f"add_many {_count(plan.bulk_large)}", "call", True),
        OpSpec("memory_set", "memory.set", "call", True),
        OpSpec("unit_of_work", f"unit of work ({UNIT_CALLS} calls)", "call", True),
    ]


def _count(number: int) -> str:
    """1000 -> "1k", 100000 -> "100k"."""
    return f"{number // 1000}k" if number >= 1000 and number % 1000 == 0 else f"{number:,}"
