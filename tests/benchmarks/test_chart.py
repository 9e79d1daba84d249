"""The chart of a run: a PNG of core/raw, and how BENCHMARKS.md embeds it.

The embed must show both where BENCHMARKS.md is read at the repository root
(GitHub, editors) and on the docs page that includes it (``docs/benchmarks.md``,
served at ``<site>/benchmarks/``); only paths are checked, no browser is run.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from benchmarks.chart import (
    DOCS_CHART,
    DOCS_DIR,
    REPO_ROOT,
    chart_markdown,
    default_chart_path,
    write_chart,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _report(dialects: dict[str, Any]) -> dict[str, Any]:
    return {
        "started_at": "2026-12-01T19:29:46+00:00",
        "plan": {"mode": "quick"},
        "dialects": dialects,
    }


def test_the_chart_is_a_png_with_and_without_measured_dialects(tmp_path: Path) -> None:
    measured = {
        "status": "ok",
        "operations": {
            "get": {"label": "get", "ratios": {"core/raw": 0.4, "core/orm": 2.5}},
            "add_many_small": {"label": "add_many 1k", "ratios": {"core/raw": 0.9}},
            "unit_of_work": {"label": "unit of work (5 calls)", "ratios": {"core/raw": 0.7}},
        },
    }
    report = _report(
        {
            "sqlite": measured,
            # an operation without a ratio, and a dialect that did not run: no bar
            "postgresql": {"status": "ok", "operations": {"get": {"label": "get", "ratios": {}}}},
            "mysql": {"status": "skipped", "reason": "unreachable", "operations": {}},
        }
    )
    chart = tmp_path / "nested" / "chart.png"
    empty = tmp_path / "empty.png"

    write_chart(report, chart)
    write_chart(_report({}), empty)

    assert chart.read_bytes().startswith(PNG_MAGIC)
    assert empty.read_bytes().startswith(PNG_MAGIC)


def test_a_chart_beside_the_markdown_is_a_relative_markdown_image(tmp_path: Path) -> None:
    markdown = tmp_path / "b.md"

    assert default_chart_path(markdown) == tmp_path / "b-core-vs-raw.png"
    embed = chart_markdown(tmp_path / "img" / "c.png", markdown)
    assert embed == "![core/raw ops/s per operation and dialect](img/c.png)"


def test_the_repository_chart_shows_from_the_root_and_from_the_docs_page() -> None:
    markdown = REPO_ROOT / "BENCHMARKS.md"
    # the docs page includes BENCHMARKS.md verbatim: the embed is read from docs/ too
    assert '--8<-- "BENCHMARKS.md"' in (DOCS_DIR / "benchmarks.md").read_text()

    chart = default_chart_path(markdown)
    embed = chart_markdown(chart, markdown)

    assert chart == DOCS_CHART
    found = re.fullmatch(r"<img src=\"([^\"]+)\" alt=\"[^\"]+\" onerror=\"(.+)\">", embed)
    assert found is not None, embed
    source, fallback = found.groups()
    # from the repository root (GitHub, editors): the file itself
    assert (REPO_ROOT / source).resolve() == DOCS_CHART
    # on the site, docs/benchmarks.md is <site>/benchmarks/ and docs/ is the site root
    site_url = re.fullmatch(r"this\.onerror=null;this\.src='([^']+)'", fallback)
    assert site_url is not None, fallback
    published = posixpath.normpath(posixpath.join("benchmarks/", site_url.group(1)))
    assert DOCS_DIR / published == DOCS_CHART
    # the primary source does not exist under docs/, so the browser falls back
    assert not (DOCS_DIR / "benchmarks" / source).exists()
