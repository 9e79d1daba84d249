"""The scale-out benchmark runs end to end on a private primary with two hot standbys.

Numbers are never asserted (speed is reported by ``benchmarks/scaleout.py``,
not tested); what is checked is that a run at the smallest size produces every
figure: ops/s and the ratio to the primary alone for each read and replica
count, the write-then-read pairs' latencies with 0 and 2 replicas, where the
reads went, the markdown section BENCHMARKS.md is regenerated from and the
chart it embeds. Each
pair's read is also checked to find the message it follows: a stale read is a
broken guarantee, not a slow one.

It needs the PostgreSQL server binaries, as ``tests/topologies`` does: without
them it skips (fails under ``CONTEXTSTORE_REQUIRE_SERVERS=1``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.report import MARKDOWN_BEGIN, MARKDOWN_END
from benchmarks.scaleout import MARKDOWN_BEGIN as SCALEOUT_BEGIN
from benchmarks.scaleout import MARKDOWN_END as SCALEOUT_END
from benchmarks.scaleout import (
    PAIR_REPLICA_COUNTS,
    READS,
    REPLICA_COUNTS,
    ScaleoutPlan,
    run_scaleout,
)
from tests.faults._instances import unavailable

from .test_chart import PNG_MAGIC

pytestmark = pytest.mark.replicas

TINY = ScaleoutPlan(
    mode="tiny",
    messages=60,
    rounds=2,
    budget=0.01,
    pairs=5,
    readers=5,
    reads_per_task=2,
    count_reads=20,
)


async def test_scaleout_run_produces_every_figure(tmp_path: Path) -> None:
    out = io.StringIO()
    json_path = tmp_path / "scaleout.json"
    markdown = tmp_path / "BENCHMARKS.md"
    chart = tmp_path / "charts" / "scale-out.png"
    # the main benchmark's section and the prose stay as they are
    other = f"{MARKDOWN_BEGIN}\nmain-numbers-5c1\n{MARKDOWN_END}"
    markdown.write_text(
        f"# Benchmarks\n\n{other}\n\n## Scale-out\n\n"
        f"{SCALEOUT_BEGIN}\nstale-numbers-9d2\n{SCALEOUT_END}\n\nend\n"
    )

    code = await run_scaleout(
        plan=TINY,
        console=Console(file=out, width=200),
        json_path=json_path,
        markdown_path=markdown,
        chart_path=chart,
    )

    report = json.loads(json_path.read_text())
    if report["status"] == "skipped":
        unavailable(report["reason"])
    assert code == 0, out.getvalue()
    assert report["status"] == "ok", report["reason"]
    assert set(report["reads"]) == set(READS)
    for key, entry in report["reads"].items():
        assert entry["label"] == READS[key]
        assert set(entry["replicas"]) == {str(count) for count in REPLICA_COUNTS}
        for replicas, data in entry["replicas"].items():
            where = f"{key} with {replicas} replicas"
            assert data["ops_per_s"] > 0, where
            assert len(data["round_ops_per_s"]) == TINY.rounds, where
            assert len(data["round_ratios"]) == TINY.rounds, where
            assert data["ratio"] > 0, where
            assert 0 < data["p50_ms"] <= data["p99_ms"], where
            assert data["calls"] > 0, where
            # one count per server of that Store: the primary, then each replica
            assert len(data["reads_per_server"]) == 1 + int(replicas), where
            assert sum(data["reads_per_server"]) > 0, where
            assert 0 <= data["on_replica"] <= 1, where
        # the primary alone is the reference of every ratio, and never reads on a replica
        assert entry["replicas"]["0"]["ratio"] == 1.0
        assert entry["replicas"]["0"]["on_replica"] == 0
    assert set(report["pairs"]) == {str(count) for count in PAIR_REPLICA_COUNTS}
    for replicas, data in report["pairs"].items():
        where = f"pairs with {replicas} replicas"
        assert data["pairs"] == TINY.rounds * TINY.pairs, where
        assert 0 < data["p50_ms"] <= data["p95_ms"], where
        assert 0 < data["read_p50_ms"] <= data["read_p95_ms"], where
        # a read is part of its pair
        assert data["read_p50_ms"] < data["p50_ms"], where
        assert len(data["reads_per_server"]) == 1 + int(replicas), where
        assert 0 <= data["on_replica"] <= 1, where
        # read your writes: every pair's read found the message it follows
        assert data["stale"] == 0, where
    assert report["machine"]["servers"]["postgresql"].startswith("PostgreSQL")
    # the scale-out section was replaced, the rest of the file kept
    text = markdown.read_text()
    assert "stale-numbers-9d2" not in text
    assert "main-numbers-5c1" in text
    assert text.startswith(f"# Benchmarks\n\n{other}\n\n## Scale-out\n\n{SCALEOUT_BEGIN}")
    assert text.endswith(f"{SCALEOUT_END}\n\nend\n")
    assert "#### Reads, 5 concurrent tasks" in text
    assert "#### Write-then-read pairs, one task" in text
    assert "| read | replicas | ops/s (median) | ratio to primary alone (range) |" in text
    # the chart was drawn, and the markdown embeds it by a path relative to itself
    assert chart.read_bytes().startswith(PNG_MAGIC)
    assert "(charts/scale-out.png)" in text
