"""What a run found: the numbers of each dialect, and the targets they meet or miss.

The targets, on every dialect unless said otherwise:

* core/raw ops/s at least 0.85 on ``get``, ``add``, ``memory_get``,
  ``memory_set`` and both ``add_many``; at least 0.8 on ``list_newest``,
  ``page_1`` and ``page_far``; at least 0.9 on ``concurrent_get``;
* a core ``unit_of_work`` at most 1.2x the time of raw's transaction (core's
  time per call divided by raw's, that is raw ops/s / core ops/s, <= 1.2;
  on the core/raw ops/s ratio that is >= 1/1.2);
* core/legacy at least 3 on every SQLite operation;
* core/orm at least 2 on every operation;
* core's far page at most 1.5x the time of its first page;
* core's ``search`` p50 under 20 ms on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DialectResult:
    """Everything measured on one dialect."""

    dialect: str
    status: str = "ok"  # ok | skipped | error
    reason: str | None = None
    server_version: str | None = None
    url: str | None = None
    notes: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    setup_s: float = 0.0

    def ops(self, op: str, subject: str) -> dict[str, Any] | None:
        entry = self.operations.get(op)
        if entry is None:
            return None
        found: dict[str, Any] | None = entry["subjects"].get(subject)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "server_version": self.server_version,
            "url": self.url,
            "notes": self.notes,
            "mismatches": self.mismatches,
            "subjects": self.subjects,
            "setup_s": round(self.setup_s, 3),
            "operations": self.operations,
        }


# -- targets ---------------------------------------------------------------------

#: core/raw ops/s must be at least this, per operation, on every dialect.
RAW_TARGETS: dict[str, float] = {
    "get": 0.85,
    "add": 0.85,
    "memory_get": 0.85,
    "memory_set": 0.85,
    "list_newest": 0.8,
    "page_1": 0.8,
    "page_far": 0.8,
    "concurrent_get": 0.9,
    "add_many_small": 0.85,
    "add_many_large": 0.85,
}
#: a core unit_of_work may take at most this many times raw's (the time per call).
UNIT_OF_WORK_TIME_TARGET = 1.2
#: core/legacy must be at least this on every SQLite operation.
LEGACY_TARGET = 3.0
#: core/orm must be at least this on every operation of every dialect.
ORM_TARGET = 2.0
#: core's far page may take at most this many times its first page.
PAGE_FAR_TIME_TARGET = 1.5
#: core's search p50 on PostgreSQL must stay under this many milliseconds.
SEARCH_P50_TARGET_MS = 20.0


@dataclass
class Target:
    name: str
    dialect: str
    operation: str
    value: float | None
    threshold: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    def describe(self) -> str:
        if self.unit == "ms":
            return f"{self.name} < {self.threshold:g} ms"
        relation = ">=" if self.higher_is_better else "<="
        return f"{self.name} {relation} {self.threshold:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.describe(),
            "dialect": self.dialect,
            "operation": self.operation,
            "value": self.value,
            "threshold": self.threshold,
            "met": self.met,
        }


def check_targets(results: Sequence[DialectResult]) -> list[Target]:
    """The targets that this run measured, with their values."""
    targets: list[Target] = []
    for result in results:
        if result.status != "ok":
            continue
        d = result.dialect
        for op, threshold in RAW_TARGETS.items():
            ratio = result.operations.get(op, {}).get("ratios", {}).get("core/raw")
            targets.append(Target("core/raw", d, op, ratio, threshold, True))
        unit = result.operations.get("unit_of_work", {}).get("ratios", {}).get("core/raw")
        targets.append(
            Target(
                "core unit of work time / raw time",
                d,
                "unit_of_work",
                # time per call is 1 / ops/s: core's time / raw's = 1 / (core/raw ops/s)
                None if not unit else 1.0 / unit,
                UNIT_OF_WORK_TIME_TARGET,
                False,
            )
        )
        if "legacy" in result.subjects:
            for op, entry in result.operations.items():
                ratio = entry["ratios"].get("core/legacy")
                targets.append(Target("core/legacy", d, op, ratio, LEGACY_TARGET, True))
        if "orm" in result.subjects:
            for op, entry in result.operations.items():
                targets.append(
                    Target("core/orm", d, op, entry["ratios"].get("core/orm"), ORM_TARGET, True)
                )
        first, far = result.ops("page_1", "core"), result.ops("page_far", "core")
        if first and far and far["ops_per_s"] > 0:
            targets.append(
                Target(
                    "core page_far time / page_1 time",
                    d,
                    "page_far",
                    first["ops_per_s"] / far["ops_per_s"],
                    PAGE_FAR_TIME_TARGET,
                    False,
                )
            )
        search = result.ops("search", "core")
        if d == "postgresql" and search:
            targets.append(
                Target(
                    "core search p50",
                    d,
                    "search",
                    search["p50_ms"],
                    SEARCH_P50_TARGET_MS,
                    False,
                    unit="ms",
                )
            )
    return targets


def ratio_threshold(op: str, base: str) -> float | None:
    """The target a ``core/<base>`` ops/s ratio of ``op`` is held to, if any.

    Reports colour the ratio with it and the chart draws it. The unit of
    work's time target (at most 1.2x raw's time) is here as its ops/s form,
    core/raw >= 1/1.2.
    """
    if base == "legacy":
        return LEGACY_TARGET
    if base == "orm":
        return ORM_TARGET
    if base != "raw":
        return None
    if op == "unit_of_work":
        return 1.0 / UNIT_OF_WORK_TIME_TARGET
    return RAW_TARGETS.get(op)
