"""The command line of the benchmark (``benchmarks/bench.py``, ``python -m benchmarks``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from .chart import default_chart_path
from .placement import MODES
from .plan import DIALECTS, PAGE_SIZE, Plan
from .runner import run_benchmarks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description=(
            "Benchmark contextstore (core, legacy) against the raw drivers and the SQLAlchemy ORM."
        ),
    )
    parser.add_argument(
        "--quick", action="store_true", help="short run (about a minute for all dialects)"
    )
    parser.add_argument(
        "--dialect",
        action="append",
        choices=DIALECTS,
        help="benchmark only this dialect (repeatable; default: all three)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every number as JSON")
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="write the numbers as markdown (replaces the generated section of BENCHMARKS.md)",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        metavar="PATH",
        help=(
            "draw core/raw per operation and dialect as a PNG (default with --markdown: "
            "docs/assets/core-vs-raw.png for the repository's BENCHMARKS.md, "
            "else <markdown stem>-core-vs-raw.png beside it)"
        ),
    )
    parser.add_argument(
        "--placement",
        choices=MODES,
        default="split",
        help=(
            "split (default): the event loop on one CPU, the database's work on another; "
            "shared: both on one CPU; free: nothing pinned"
        ),
    )
    parser.add_argument("--messages", type=int, metavar="N", help="override the read-session size")
    parser.add_argument("--rounds", type=int, metavar="N", help="override the rounds")
    parser.add_argument(
        "--budget", type=float, metavar="SECONDS", help="override the seconds per batch"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: parse ``argv`` and run; returns the exit code."""
    args = build_parser().parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    overrides: dict[str, Any] = {}
    if args.messages is not None:
        overrides["session_messages"] = args.messages
        overrides["far_page"] = min(plan.far_page, max(2, args.messages // PAGE_SIZE // 2))
    if args.rounds is not None:
        overrides["rounds"] = args.rounds
    if args.budget is not None:
        overrides["budget"] = args.budget
    if overrides:
        plan = Plan(**{**plan.__dict__, **overrides, "mode": f"{plan.mode}, custom"})
    chart = args.chart
    if chart is None and args.markdown is not None:
        chart = default_chart_path(args.markdown)
    # piped output (a log file, CI) would otherwise wrap the tables at 80 columns
    console = Console() if sys.stdout.isatty() else Console(width=132)
    return asyncio.run(
        run_benchmarks(
            quick=args.quick,
            dialects=args.dialect,
            json_path=args.json,
            console=console,
            markdown_path=args.markdown,
            plan=plan,
            chart_path=chart,
            placement=args.placement,
        )
    )
