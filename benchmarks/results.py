"""What a run found: the numbers of each dialect, and the targets they meet or miss.

The targets are issue #6's (core against raw and legacy, keyset pages,
search latency) and core >= 2x the SQLAlchemy ORM subject on every operation.
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


# -- targets (issue #6, item 3; core against the ORM) ------------------------------

#: core/orm must be at least this on every operation of every dialect.
ORM_TARGET = 2.0


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
        for op in ("add", "get", "list_newest", "concurrent_get"):
            ratio = result.operations.get(op, {}).get("ratios", {}).get("core/raw")
            targets.append(Target("core/raw", d, op, ratio, 0.5, True))
        for op in ("add_many_small", "add_many_large"):
            ratio = result.operations.get(op, {}).get("ratios", {}).get("core/raw")
            targets.append(Target("core/raw", d, op, ratio, 0.85, True))
        if "legacy" in result.subjects:
            for op, entry in result.operations.items():
                targets.append(
                    Target("core/legacy", d, op, entry["ratios"].get("core/legacy"), 1.0, True)
                )
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
                    1.5,
                    False,
                )
            )
        search = result.ops("search", "core")
        if d == "postgresql" and search:
            targets.append(
                Target("core search p50", d, "search", search["p50_ms"], 50.0, False, unit="ms")
            )
    return targets


def ratio_threshold(op: str, base: str) -> float | None:
    """The target a ``core/<base>`` ratio of ``op`` is held to, if any (reports colour it)."""
    if base == "legacy":
        return 1.0
    if base == "orm":
        return ORM_TARGET
    if base != "raw":
        return None
    if op in ("add", "get", "list_newest", "concurrent_get"):
        return 0.5
    if op in ("add_many_small", "add_many_large"):
        return 0.85
    return None
