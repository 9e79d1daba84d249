"""The chart of a run: core/raw per operation and dialect, as a PNG.

Drawn with matplotlib's Agg canvas (no display, no pyplot state), from the
report dictionary the JSON file holds, so a chart can also be redrawn from a
saved run::

    uv run python -m benchmarks.chart bench.json docs/assets/core-vs-raw.png
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .results import RAW_TARGETS, UNIT_OF_WORK_TIME_TARGET, ratio_threshold

CHART_NAME = "core-vs-raw.png"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: the chart of the repository's BENCHMARKS.md: under docs/, so the docs site has it too.
DOCS_DIR = REPO_ROOT / "docs"
DOCS_CHART = DOCS_DIR / "assets" / CHART_NAME
#: where docs/benchmarks.md (which includes BENCHMARKS.md) is served: <site>/benchmarks/
DOCS_PAGE_DEPTH = 1

_COLOURS = {"sqlite": "#4c72b0", "postgresql": "#dd8452", "mysql": "#55a868"}
_ALT = "core/raw ops/s per operation and dialect"


def default_chart_path(markdown: Path) -> Path:
    """Where the chart goes when only ``--markdown`` is given.

    For the repository's BENCHMARKS.md that is ``docs/assets/core-vs-raw.png``
    (the docs include BENCHMARKS.md and publish what is under ``docs/``);
    for any other file, beside it: ``<stem>-core-vs-raw.png``.
    """
    if markdown.resolve() == (REPO_ROOT / "BENCHMARKS.md").resolve():
        return DOCS_CHART
    return markdown.with_name(f"{markdown.stem}-{CHART_NAME}")


def chart_markdown(chart: Path, markdown: Path, alt: str = _ALT) -> str:
    """The embed of ``chart`` in ``markdown``, by a path relative to the markdown file.

    ``alt`` is the image's text (by default the core/raw chart's; the scale-out
    benchmark passes its own).

    A chart under the ``docs/`` folder beside the markdown file (the
    repository's BENCHMARKS.md and ``docs/assets/``) must also show where
    the docs include the file: ``docs/benchmarks.md`` pulls BENCHMARKS.md in
    verbatim (pymdownx.snippets), so the same link is read from two folders
    and no relative path resolves from both (``docs/assets/x.png`` is
    ``docs/docs/assets/x.png`` for MkDocs, which fails ``--strict``). The
    embed is then an ``<img>`` whose ``src`` is the repository path (what
    GitHub and editors show) and which, where that path does not load (the
    docs page, served at ``<site>/benchmarks/``), falls back to the published
    copy under the site root. MkDocs leaves raw HTML alone, so ``--strict``
    passes; ``tests/benchmarks/test_chart.py`` checks both paths.
    """
    base = markdown.resolve().parent
    target = chart.resolve()
    relative = Path(os.path.relpath(target, base)).as_posix()
    docs = base / "docs"
    if target.is_relative_to(docs):
        site = "../" * DOCS_PAGE_DEPTH + target.relative_to(docs).as_posix()
        return f'<img src="{relative}" alt="{alt}" onerror="this.onerror=null;this.src=\'{site}\'">'
    return f"![{alt}]({relative})"


def target_legend() -> str:
    """The legend of the dashed target segments, from the targets themselves."""
    values = sorted(set(RAW_TARGETS.values()))
    span = f"{values[0]:g}-{values[-1]:g}" if len(values) > 1 else f"{values[0]:g}"
    unit = UNIT_OF_WORK_TIME_TARGET
    return f"target: {span}; unit of work 1/{unit:g} (at most {unit:g}x raw's time)"


def _series(report: dict[str, Any]) -> tuple[list[str], list[str], dict[str, list[float | None]]]:
    """Operation keys and labels (in run order), and each measured dialect's core/raw."""
    keys: list[str] = []
    labels: dict[str, str] = {}
    measured = {
        name: data for name, data in report.get("dialects", {}).items() if data["status"] == "ok"
    }
    for data in measured.values():
        for key, entry in data["operations"].items():
            if key not in labels:
                keys.append(key)
                labels[key] = entry["label"]
    ratios = {
        name: [data["operations"].get(key, {}).get("ratios", {}).get("core/raw") for key in keys]
        for name, data in measured.items()
    }
    return keys, [labels[key] for key in keys], ratios


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Draw core/raw of every operation and dialect of ``report`` into the PNG ``path``.

    One group of bars per operation, one bar per dialect; a line at 1.0 (as
    fast as the raw driver) and, over each operation that has one, its
    core/raw target (``results.ratio_threshold``: 0.85 for ``get``, ``add``,
    ``memory.get``, ``memory.set`` and ``add_many``, 0.8 for the list and the
    pages, 0.9 for the concurrent ``get``, 1/1.2 for the unit of work, whose
    target is at most 1.2x raw's time).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    keys, labels, ratios = _series(report)
    figure = Figure(figsize=(12, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    plan = report.get("plan", {}).get("mode", "")
    axes.set_title(
        f"core / raw ops/s (higher is better) - run of {report.get('started_at', '?')}"
        + (f", {plan}" if plan else ""),
        fontsize=11,
    )
    axes.set_ylabel("core ops/s ÷ raw ops/s")
    handles: list[Any] = []
    if not keys:
        axes.text(0.5, 0.5, "no dialect was measured", ha="center", va="center")
        axes.set_xticks([])
    else:
        width = 0.8 / len(ratios)
        top = 1.0
        for number, (dialect, values) in enumerate(ratios.items()):
            offset = (number - (len(ratios) - 1) / 2) * width
            xs = [n + offset for n, value in enumerate(values) if value is not None]
            ys = [value for value in values if value is not None]
            colour = _COLOURS.get(dialect, f"C{number}")
            bars = axes.bar(xs, ys, width * 0.95, color=colour, zorder=2)
            axes.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=2)
            handles.append(Patch(color=colour, label=dialect))
            top = max(top, *ys) if ys else top
        for n, key in enumerate(keys):
            threshold = ratio_threshold(key, "raw")
            if threshold is not None:
                axes.hlines(
                    threshold, n - 0.45, n + 0.45, colors="#c0392b", linestyles="--", zorder=3
                )
        axes.axhline(1.0, color="black", linewidth=1, zorder=1)
        axes.set_xticks(range(len(keys)), labels, rotation=30, ha="right")
        axes.set_xlim(-0.6, len(keys) - 0.4)
        axes.set_ylim(0, top * 1.15)
        axes.grid(axis="y", alpha=0.3, zorder=0)
        handles += [
            Line2D([], [], color="black", linewidth=1, label="1.0: as fast as raw"),
            Line2D([], [], color="#c0392b", linestyle="--", label=target_legend()),
        ]
        axes.legend(handles=handles, loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.chart REPORT.json OUT.png``: redraw the chart of a saved run."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m benchmarks.chart REPORT.json OUT.png", file=sys.stderr)
        return 2
    report = json.loads(Path(args[0]).read_text())
    write_chart(report, Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
