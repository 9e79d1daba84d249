"""The targets a run is checked against, from made-up numbers (no database, no timing)."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.chart import target_legend
from benchmarks.plan import Plan, operations
from benchmarks.results import DialectResult, Target, check_targets, ratio_threshold

OPS = [spec.key for spec in operations(Plan.quick())]


def _result(dialect: str, ratios: dict[str, dict[str, float]], **core: Any) -> DialectResult:
    """A measured dialect whose core/<subject> ratios are ``ratios[op]`` (1.0 when not given)."""
    subjects = ["raw", "core", *(["legacy"] if dialect == "sqlite" else []), "orm"]
    operations: dict[str, dict[str, Any]] = {}
    for op in OPS:
        given = ratios.get(op, {})
        operations[op] = {
            "label": op,
            "subjects": {name: {"ops_per_s": 100.0, "p50_ms": 1.0} for name in subjects},
            "ratios": {f"core/{name}": given.get(name, 1.0) for name in subjects if name != "core"},
        }
    for op, numbers in core.items():
        operations[op]["subjects"]["core"].update(numbers)
    return DialectResult(dialect=dialect, subjects=subjects, operations=operations)


def _by_key(targets: list[Target]) -> dict[tuple[str, str, str], Target]:
    return {(t.dialect, t.operation, t.describe()): t for t in targets}


def _operations(targets: dict[tuple[str, str, str], Target], dialect: str, name: str) -> set[str]:
    return {op for d, op, described in targets if d == dialect and described == name}


def test_core_against_raw_per_operation() -> None:
    ratios = {
        "get": {"raw": 0.85},
        "add": {"raw": 0.84},
        "memory_get": {"raw": 0.9},
        "memory_set": {"raw": 0.5},
        "list_newest": {"raw": 0.8},
        "page_1": {"raw": 0.79},
        "page_far": {"raw": 1.3},
        "concurrent_get": {"raw": 0.89},
        "add_many_small": {"raw": 0.85},
        "add_many_large": {"raw": 0.7},
    }
    targets = _by_key(check_targets([_result("mysql", ratios)]))

    met = {
        op: targets["mysql", op, f"core/raw >= {threshold}"].met
        for op, threshold in [
            ("get", 0.85),
            ("add", 0.85),
            ("memory_get", 0.85),
            ("memory_set", 0.85),
            ("list_newest", 0.8),
            ("page_1", 0.8),
            ("page_far", 0.8),
            ("concurrent_get", 0.9),
            ("add_many_small", 0.85),
            ("add_many_large", 0.85),
        ]
    }
    assert met == {
        "get": True,
        "add": False,
        "memory_get": True,
        "memory_set": False,
        "list_newest": True,
        "page_1": False,
        "page_far": True,
        "concurrent_get": False,
        "add_many_small": True,
        "add_many_large": False,
    }
    # search has no core/raw target
    assert not [key for key in targets if key[1] == "search" and "core/raw" in key[2]]


@pytest.mark.parametrize(
    ("core_over_raw", "time_ratio", "met"),
    [(1 / 1.2, 1.2, True), (0.84, 1 / 0.84, True), (0.8, 1.25, False), (1.1, 1 / 1.1, True)],
)
def test_the_unit_of_work_may_take_at_most_1_2x_raw_time(
    core_over_raw: float, time_ratio: float, met: bool
) -> None:
    result = _result("postgresql", {"unit_of_work": {"raw": core_over_raw}})

    target = _by_key(check_targets([result]))[
        "postgresql", "unit_of_work", "core unit of work time / raw time <= 1.2"
    ]

    assert target.value == pytest.approx(time_ratio)
    assert target.met is met
    # the reports colour core/raw (ops/s) with the same target, as 1/1.2
    threshold = ratio_threshold("unit_of_work", "raw")
    assert threshold is not None
    assert threshold == pytest.approx(1 / 1.2)
    assert (core_over_raw >= threshold - 1e-12) is met


def test_legacy_orm_pages_and_search() -> None:
    sqlite = _result(
        "sqlite",
        {"get": {"legacy": 3.0, "orm": 1.9}, "add": {"legacy": 2.9, "orm": 2.0}},
        page_far={"ops_per_s": 50.0},
    )
    postgresql = _result(
        "postgresql",
        {},
        search={"p50_ms": 19.9},
        page_1={"ops_per_s": 150.0},
        page_far={"ops_per_s": 100.0},
    )
    slow = _result("postgresql", {}, search={"p50_ms": 25.0})

    targets = _by_key(check_targets([sqlite, postgresql]))

    assert targets["sqlite", "get", "core/legacy >= 3"].met is True
    assert targets["sqlite", "add", "core/legacy >= 3"].met is False
    assert _operations(targets, "sqlite", "core/legacy >= 3") == set(OPS)
    assert targets["sqlite", "get", "core/orm >= 2"].met is False
    assert targets["sqlite", "add", "core/orm >= 2"].met is True
    assert _operations(targets, "sqlite", "core/orm >= 2") == set(OPS)
    assert _operations(targets, "postgresql", "core/orm >= 2") == set(OPS)
    # legacy runs on SQLite only, the search latency target is PostgreSQL's
    assert not [key for key in targets if key[0] == "postgresql" and "legacy" in key[2]]
    assert not [key for key in targets if key[0] == "sqlite" and "p50" in key[2]]
    assert targets["postgresql", "search", "core search p50 < 20 ms"].met is True
    assert (
        _by_key(check_targets([slow]))["postgresql", "search", "core search p50 < 20 ms"].met
        is False
    )
    far = "core page_far time / page_1 time <= 1.5"
    assert targets["sqlite", "page_far", far].value == pytest.approx(2.0)
    assert targets["sqlite", "page_far", far].met is False
    assert targets["postgresql", "page_far", far].met is True


def test_a_dialect_that_did_not_run_has_no_targets() -> None:
    skipped = DialectResult(dialect="mysql", status="skipped", reason="unreachable")

    assert check_targets([skipped]) == []


def test_the_reports_colour_each_ratio_with_its_target() -> None:
    expected_raw = {
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
        "unit_of_work": pytest.approx(1 / 1.2),
        "search": None,
    }
    assert {op: ratio_threshold(op, "raw") for op in OPS} == expected_raw
    assert {ratio_threshold(op, "legacy") for op in OPS} == {3.0}
    assert {ratio_threshold(op, "orm") for op in OPS} == {2.0}
    assert ratio_threshold("get", "other") is None
    # the chart's legend names the thresholds it draws
    assert target_legend() == "target: 0.8-0.9; unit of work 1/1.2 (at most 1.2x raw's time)"
