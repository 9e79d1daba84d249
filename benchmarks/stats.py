"""Measuring: timed batches of calls or concurrent bursts, and their statistics."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Samples:
    """Latencies (seconds) and batch timings of one subject on one operation."""

    latencies: list[float] = field(default_factory=list)
    batch_ops: list[float] = field(default_factory=list)  # ops/s of each round
    calls: int = 0
    elapsed: float = 0.0

    def add_batch(self, latencies: list[float], elapsed: float, calls: int) -> None:
        self.latencies.extend(latencies)
        self.calls += calls
        self.elapsed += elapsed
        self.batch_ops.append(calls / elapsed if elapsed > 0 else 0.0)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        ops = self.calls / self.elapsed if self.elapsed > 0 else 0.0
        spread = 0.0
        if len(self.batch_ops) >= 2 and ops > 0:
            spread = statistics.pstdev(self.batch_ops) / statistics.fmean(self.batch_ops)
        return {
            "ops_per_s": ops,
            "p50_ms": percentile(ordered, 50) * 1000,
            "p99_ms": percentile(ordered, 99) * 1000,
            "mean_ms": statistics.fmean(ordered) * 1000 if ordered else 0.0,
            "calls": self.calls,
            "elapsed_s": self.elapsed,
            "round_ops_per_s": self.batch_ops,
            "spread": spread,
        }


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted samples (0 for none)."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def timed_calls(
    call: Callable[[int], Awaitable[object]], start: int, budget: float, max_calls: int
) -> tuple[list[float], float, int]:
    """Run ``call(start), call(start + 1), ...`` until ``budget`` seconds or ``max_calls``."""
    latencies: list[float] = []
    clock = time.perf_counter
    began = clock()
    index = start
    while True:
        before = clock()
        await call(index)
        after = clock()
        latencies.append(after - before)
        index += 1
        if len(latencies) >= max_calls or after - began >= budget:
            break
    return latencies, clock() - began, len(latencies)


async def timed_bursts(
    call: Callable[[int], Awaitable[object]],
    start: int,
    budget: float,
    tasks: int,
    per_task: int,
) -> tuple[list[float], float, int]:
    """Bursts of ``tasks`` concurrent tasks, each running ``per_task`` calls, for ``budget``."""
    latencies: list[float] = []
    clock = time.perf_counter
    began = clock()
    index = start

    async def worker(first: int) -> None:
        for n in range(per_task):
            before = clock()
            await call(first + n)
            latencies.append(clock() - before)

    while True:
        await asyncio.gather(*(worker(index + t * per_task) for t in range(tasks)))
        index += tasks * per_task
        if clock() - began >= budget:
            break
    return latencies, clock() - began, len(latencies)
