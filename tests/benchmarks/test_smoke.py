"""The benchmark harness runs end to end on SQLite and its subjects do the same work.

Numbers are never asserted (speed is reported by ``benchmarks/``, not tested);
what is checked is that every operation was measured on every subject, that the
raw, core, legacy and orm subjects returned the same rows for every read, and
that the JSON, markdown and chart reports hold what BENCHMARKS.md is
regenerated from.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.plan import Plan
from benchmarks.report import MARKDOWN_BEGIN, MARKDOWN_END, write_markdown
from benchmarks.runner import run_benchmarks

from .test_chart import PNG_MAGIC

pytestmark = pytest.mark.sqlite

TINY = Plan(
    mode="tiny",
    session_messages=400,
    far_page=4,
    bulk_small=20,
    bulk_large=60,
    rounds=2,
    large_rounds=1,
    budget=0.01,
    concurrent_tasks=5,
    gets_per_task=2,
)

SUBJECTS = ["raw", "core", "legacy", "orm"]

OPERATIONS = {
    "get",
    "list_newest",
    "page_1",
    "page_far",
    "search",
    "memory_get",
    "concurrent_get",
    "add",
    "add_many_small",
    "add_many_large",
    "memory_set",
    "unit_of_work",
}


async def test_sqlite_run_measures_every_operation_on_every_subject(tmp_path: Path) -> None:
    out = io.StringIO()
    json_path = tmp_path / "bench.json"
    markdown = tmp_path / "BENCHMARKS.md"
    chart = tmp_path / "charts" / "core-vs-raw.png"
    stale = f"{MARKDOWN_BEGIN}\nstale-numbers-7f3\n{MARKDOWN_END}"
    # the prose may quote a marker; only the block after the begin marker is replaced
    prose = f"# Benchmarks\n\nprose quoting {MARKDOWN_END}\n\n"
    markdown.write_text(f"{prose}{stale}\n\nend\n")

    code = await run_benchmarks(
        quick=True,
        dialects=["sqlite"],
        json_path=json_path,
        console=Console(file=out, width=200),
        markdown_path=markdown,
        plan=TINY,
        chart_path=chart,
    )

    assert code == 0, out.getvalue()
    report = json.loads(json_path.read_text())
    sqlite = report["dialects"]["sqlite"]
    assert sqlite["status"] == "ok"
    assert sqlite["subjects"] == SUBJECTS
    assert set(sqlite["operations"]) == OPERATIONS
    for name, entry in sqlite["operations"].items():
        assert set(entry["subjects"]) == set(SUBJECTS), name
        for numbers in entry["subjects"].values():
            assert numbers["calls"] > 0, name
            assert numbers["ops_per_s"] > 0, name
            assert 0 < numbers["p50_ms"] <= numbers["p99_ms"], name
        assert set(entry["ratios"]) == {"core/raw", "core/legacy", "core/orm"}, name
    # every read returned the same rows on raw, core, legacy and orm
    assert sqlite["mismatches"] == []
    # the unit of work ran five calls per transaction on every subject (the smoke run's
    # writes are not compared: tests/benchmarks/test_unit_of_work.py checks them)
    assert sqlite["operations"]["unit_of_work"]["label"] == "unit of work (5 calls)"
    targets = {(t["operation"], t["target"]): t for t in report["targets"]}
    raw_targets = {
        **dict.fromkeys(("get", "add", "memory_get", "memory_set"), "core/raw >= 0.85"),
        **dict.fromkeys(("list_newest", "page_1", "page_far"), "core/raw >= 0.8"),
        "concurrent_get": "core/raw >= 0.9",
        **dict.fromkeys(("add_many_small", "add_many_large"), "core/raw >= 0.85"),
    }
    for op, target in raw_targets.items():
        assert targets[op, target]["value"] == sqlite["operations"][op]["ratios"]["core/raw"]
    unit = targets["unit_of_work", "core unit of work time / raw time <= 1.2"]
    # a time ratio: raw's ops/s over core's
    assert unit["value"] == pytest.approx(
        1 / sqlite["operations"]["unit_of_work"]["ratios"]["core/raw"]
    )
    assert unit["met"] == (unit["value"] <= 1.2)
    assert {(op, "core/legacy >= 3") for op in OPERATIONS} <= set(targets)
    assert {(op, "core/orm >= 2") for op in OPERATIONS} <= set(targets)
    assert ("page_far", "core page_far time / page_1 time <= 1.5") in targets
    # the search latency target is PostgreSQL's; no target is left from another set
    assert not any(t["operation"] == "search" and "p50" in t["target"] for t in targets.values())
    assert len(targets) == len(raw_targets) + 1 + 2 * len(OPERATIONS) + 1
    assert report["machine"]["packages"]["sqlalchemy"]
    # split by default: two CPUs (or, with one, shared and a note saying so)
    placement = report["placement"]
    assert placement["requested"] == "split"
    pinning = hasattr(os, "sched_setaffinity")
    assert placement["mode"] in ({"split", "shared"} if pinning else {"free"})
    assert (placement["client_cpu"] is not None) == pinning
    # the generated section was replaced, the prose around it kept
    text = markdown.read_text()
    assert text.startswith(prose)
    assert text.endswith("end\n")
    assert "stale-numbers-7f3" not in text
    assert "### sqlite" in text
    assert f"* Placement: {placement['description']}" in text
    assert "| orm ops/s |" in text
    assert "| core/raw | core/legacy | core/orm |" in text
    # the chart was drawn, and the markdown embeds it by a path relative to itself
    assert chart.read_bytes().startswith(PNG_MAGIC)
    assert "(charts/core-vs-raw.png)" in text


def test_markdown_without_markers_keeps_the_prose(tmp_path: Path) -> None:
    markdown = tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nprose\n")

    write_markdown(markdown, "numbers")

    assert markdown.read_text() == (
        f"# Benchmarks\n\nprose\n\n{MARKDOWN_BEGIN}\n\nnumbers\n{MARKDOWN_END}\n"
    )
