"""Run the benchmark: every operation on every subject, dialect by dialect.

Fairness rules (BENCHMARKS.md explains each one):

* rounds are interleaved: every round runs a timed batch of each subject, in
  a rotating order, so machine drift and background load hit all of them;
* reads run before writes, so the searched and listed data is exactly the
  seeded data; every read is checked once to return the same rows on every
  subject before it is timed (a mismatch is reported, never hidden);
* the raw SQL is what a careful hand-written implementation would run for the
  same semantics: the visibility predicate on every read, keyset pages that
  fetch ``limit + 1`` rows, a single-row insert as one autocommit statement
  (its own transaction), bulk paths at the driver's best (COPY on asyncpg);
* the event loop and the database's work (server processes, SQLite's worker
  threads) are pinned to two CPUs before every batch (``placement.py``), so
  that no subject's connections are placed by the kernel on a faster or
  slower path than another's;
* garbage is collected between batches so one subject's garbage is never
  charged to another; before each batch of a write, the raw subject settles
  the database (SQLite: the full-text index merged into one segment, the WAL
  checkpointed and emptied), so no batch pays for what an earlier one wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from .chart import chart_markdown, write_chart
from .corpus import utcnow
from .machine import load_average, machine_info
from .placement import Placement
from .plan import DIALECTS, POOL_SIZE, OpSpec, Plan, operations
from .report import (
    JSON_FORMAT_VERSION,
    progress_line,
    render_markdown,
    render_tables,
    render_targets,
    write_json,
    write_markdown,
)
from .results import DialectResult, check_targets
from .scratch import Scratch
from .stats import Samples, timed_bursts, timed_calls
from .subjects import RawSubject, StoreSubject, Subject, orm_subject, raw_subject
from .workload import Context, call_for, prepare


async def _bench_dialect(
    dialect: str, plan: Plan, console: Console, placement: Placement, *, require_server: bool
) -> DialectResult:
    result = DialectResult(dialect=dialect)
    scratch = Scratch(dialect)
    subjects: list[Subject] = []
    try:
        reason = await scratch.create()
        if reason is not None:
            result.status = "error" if require_server else "skipped"
            result.reason = reason
            console.print(f"[yellow]{dialect}: skipped[/yellow] - {reason}", highlight=False)
            return result
        result.url = scratch.safe_url()
        began = time.perf_counter()
        core = StoreSubject("core", scratch.store_url(), backend="core")
        await core.open()  # migrates the scratch database to head
        subjects.append(core)
        raw = raw_subject(dialect, scratch)
        await raw.open()
        subjects.insert(0, raw)
        if dialect == "sqlite":
            legacy = StoreSubject("legacy", scratch.store_url(), backend="legacy")
            await legacy.open()
            subjects.append(legacy)
        orm = orm_subject(scratch)
        await orm.open()
        subjects.append(orm)
        result.server_version = raw.server_version
        result.subjects = [subject.name for subject in subjects]
        context = await prepare(plan, core, raw, console, dialect, orm=orm)
        await placement.attach(dialect, scratch.admin_url, scratch.name)
        result.setup_s = time.perf_counter() - began
        console.print(
            f"[bold]{dialect}[/bold]: {raw.server_version.split(' on ')[0]}; seeded "
            f"{plan.session_messages:,} messages in {result.setup_s:.1f} s",
            highlight=False,
        )
        for spec in operations(plan):
            entry = await _bench_operation(spec, plan, subjects, context, result, placement)
            result.operations[spec.key] = entry
            console.print(f"  {progress_line(spec, entry)}", highlight=False)
    except Exception as exc:
        result.status = "error"
        result.reason = f"{type(exc).__name__}: {exc}"
        console.print(f"[red]{dialect}: failed[/red] - {result.reason}", highlight=False)
    finally:
        for subject in reversed(subjects):
            with contextlib.suppress(Exception):
                await subject.close()
        try:
            await placement.detach()
        except Exception as exc:
            result.notes.append(f"could not close the placement's admin connection: {exc}")
        try:
            await scratch.drop()
        except Exception as exc:
            result.notes.append(f"could not drop the scratch database: {exc}")
    return result


async def _bench_operation(
    spec: OpSpec,
    plan: Plan,
    subjects: list[Subject],
    ctx: Context,
    result: DialectResult,
    placement: Placement,
) -> dict[str, Any]:
    began = time.perf_counter()
    calls = {subject.name: call_for(spec, subject, ctx, plan) for subject in subjects}
    samples = {subject.name: Samples() for subject in subjects}
    # warm-up (untimed), and for reads a check that every subject returns the same rows
    if spec.key != "add_many_large":
        answers = {}
        for subject in subjects:
            answers[subject.name] = await calls[subject.name](0)
            warm = 1 if spec.key.startswith("add_many") else 3 if spec.write else 20
            for n in range(1, warm):
                await calls[subject.name](n)
            if spec.kind == "burst":
                # the pools open their connections now, so the batches' pinning
                # places every one (a connection opened during a timed burst
                # would run that batch wherever the kernel put it)
                call = calls[subject.name]
                await asyncio.gather(*(call(n) for n in range(plan.concurrent_tasks)))
        if not spec.write:
            reference = answers[subjects[0].name]
            if spec.key == "search" and not reference:
                result.mismatches.append("search: found nothing, so it measures nothing")
            for name, answer in answers.items():
                if answer != reference:
                    result.mismatches.append(
                        f"{spec.key}: {name} returned {_short(answer)}, "
                        f"{subjects[0].name} returned {_short(reference)}"
                    )
    rounds = plan.large_rounds if spec.key == "add_many_large" else plan.rounds
    raw = next((subject for subject in subjects if isinstance(subject, RawSubject)), None)
    index = 1000
    for round_number in range(rounds):
        shift = round_number % len(subjects)
        for subject in subjects[shift:] + subjects[:shift]:
            if spec.write and raw is not None:
                await raw.settle()
            gc.collect()
            await placement.pin()
            call = calls[subject.name]
            if spec.kind == "burst":
                latencies, elapsed, count = await timed_bursts(
                    call, index, plan.budget, plan.concurrent_tasks, plan.gets_per_task
                )
            else:
                limit = 1 if spec.key == "add_many_large" else 1_000_000
                latencies, elapsed, count = await timed_calls(call, index, plan.budget, limit)
            index += count
            samples[subject.name].add_batch(latencies, elapsed, count)
    summaries = {name: sample.summary() for name, sample in samples.items()}
    ratios: dict[str, float] = {}
    core_ops = summaries.get("core", {}).get("ops_per_s", 0.0)
    for other in (subject.name for subject in subjects if subject.name != "core"):
        base = summaries[other]["ops_per_s"]
        if base > 0 and core_ops > 0:
            ratios[f"core/{other}"] = core_ops / base
    return {
        "label": spec.label,
        "subjects": summaries,
        "ratios": ratios,
        "wall_s": round(time.perf_counter() - began, 3),
    }


def _short(answer: object) -> str:
    text = repr(answer)
    return text if len(text) <= 80 else text[:77] + "..."


async def run_benchmarks(
    *,
    quick: bool,
    dialects: Sequence[str] | None,
    json_path: Path | None,
    console: Console,
    markdown_path: Path | None = None,
    plan: Plan | None = None,
    chart_path: Path | None = None,
    placement: str = "split",
) -> int:
    """Run the benchmarks; print tables and targets; write JSON / markdown.

    Args:
        quick: the short plan (about a minute for all three dialects).
        dialects: subset of ``DIALECTS`` (default: all; unreachable servers are skipped).
        json_path: where to write every number and the machine info.
        console: where tables and progress go.
        markdown_path: file whose generated section (see ``report.MARKDOWN_BEGIN``) is replaced.
        plan: explicit sizes (overrides ``quick``; for tests and experiments).
        chart_path: where to draw the core/raw chart (PNG); embedded in the
            markdown section, by a relative path, when both are written.
        placement: where the client and the database's work run (see
            ``placement.MODES``): ``split`` pins them to two CPUs.

    Returns:
        0 when every selected dialect ran (or was skipped for an unreachable
        server), 1 when one failed, or a server was unreachable while
        ``CONTEXTSTORE_REQUIRE_SERVERS=1``. Missed targets do not change it.
    """
    chosen = list(dict.fromkeys(dialects or DIALECTS))
    unknown = [name for name in chosen if name not in DIALECTS]
    if unknown:
        console.print(f"[red]error:[/red] unknown dialect(s) {', '.join(unknown)}")
        return 2
    plan = plan or (Plan.quick() if quick else Plan.full())
    require = os.environ.get("CONTEXTSTORE_REQUIRE_SERVERS", "") in {"1", "true", "yes"}
    started = utcnow()
    load_start = load_average()
    console.print(f"contextstore benchmark - {plan.describe()}", highlight=False)
    console.print(f"load average: {load_start}", highlight=False)
    placed = Placement(placement)
    placed.start()
    console.print(f"placement: {placed.describe()}", highlight=False)
    began = time.perf_counter()
    results = []
    try:
        for dialect in chosen:
            results.append(
                await _bench_dialect(dialect, plan, console, placed, require_server=require)
            )
    finally:
        placed.stop()
    duration = time.perf_counter() - began
    targets = check_targets(results)
    render_tables(results, console)
    render_targets(targets, console)
    report = {
        "format": JSON_FORMAT_VERSION,
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(duration, 1),
        "load_start": load_start,
        "load_end": load_average(),
        "plan": {**plan.__dict__, "pool_size": POOL_SIZE, "description": plan.describe()},
        "machine": machine_info(results),
        "placement": {**placed.to_json(), "description": placed.describe()},
        "dialects": {r.dialect: r.to_json() for r in results},
        "targets": [t.to_json() for t in targets],
    }
    console.print(
        f"done in {duration:.0f} s; load average at end: {report['load_end']}", highlight=False
    )
    if json_path is not None:
        await asyncio.to_thread(write_json, json_path, report)
        console.print(f"wrote {json_path}", highlight=False)
    embed = None
    if chart_path is not None:
        await asyncio.to_thread(write_chart, report, chart_path)
        console.print(f"wrote {chart_path}", highlight=False)
        if markdown_path is not None:
            embed = chart_markdown(chart_path, markdown_path)
    if markdown_path is not None:
        await asyncio.to_thread(write_markdown, markdown_path, render_markdown(report, embed))
        console.print(f"wrote {markdown_path}", highlight=False)
    if any(r.status == "error" for r in results) or not any(r.status == "ok" for r in results):
        return 1
    return 0
