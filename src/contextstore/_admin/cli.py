"""The ``contextstore`` command line: builds Settings, calls Store, migrations, data tools.

Every command follows the same rules:

* a command that talks to one database takes ``--database-url`` (else
  ``CONTEXTSTORE_DATABASE_URL``); ``db copy`` and ``db verify`` take their
  two URLs as arguments instead;
* ``--json`` prints one JSON document on stdout, the same facts as the text
  (``health`` always prints JSON); a reported failure is a document too, with
  ``"ok": false`` and ``"error"``;
* exit code 0 on success, 1 on a reported failure, 2 on a usage error.
  Usage errors are click's (an unknown option or command, a missing
  argument, a value out of range or not among the choices); they are
  printed on stderr and produce no JSON document. A URL or setting that
  ``Settings`` refuses is a ``ConfigurationError``: a reported failure,
  exit 1, with its message (and the JSON document under ``--json``);
* a command that needs the contextstore schema and finds none (or an older
  one) says so and names the next step, ``contextstore db upgrade``;
* ``contextstore --version`` prints the version.

Help is click's plain formatter (``rich_markup_mode=None``): typer's rich
panels print a type column for every option, flags included (``--force
<bool>``, even ``--help <bool>``), which reads as if a flag took a value.

Every URL printed goes through ``Settings.safe_url``; errors are printed as
their message (contextstore errors never carry a password), on stderr.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from contextstore.errors import ContextStoreError
from contextstore.legacy import adopt_unversioned
from contextstore.settings import Settings

if TYPE_CHECKING:
    from rich.progress import Progress

    from contextstore.connection import ConnectionManager
    from contextstore.models import HealthReport

    from .datatools import DataReport
    from .demo import DemoReport

T = TypeVar("T")

app = typer.Typer(
    name="contextstore",
    help="The contextstore data layer: health, migrations, demo and data tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(
    help="Schema migrations and data tools.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(db_app, name="db")
memory_app = typer.Typer(
    help="Agent memory maintenance.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(memory_app, name="memory")

err = Console(stderr=True)

UPGRADE_HINT = "run 'contextstore db upgrade' on it first"

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        help="Overrides CONTEXTSTORE_DATABASE_URL.",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout instead of text."),
]


class Backend(enum.StrEnum):
    """The ``--backend`` choices (an unknown one is a usage error)."""

    core = "core"
    legacy = "legacy"


BackendOption = Annotated[
    Backend | None,
    typer.Option(
        help="core or legacy (default: CONTEXTSTORE_BACKEND or core).", show_default=False
    ),
]


def _backend(choice: Backend | None) -> str | None:
    return None if choice is None else choice.value


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contextstore")
    except PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"contextstore {_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """The contextstore data layer: health, migrations, demo and data tools."""


def _emit(document: dict[str, Any]) -> None:
    """The one JSON document of a ``--json`` run."""
    typer.echo(json.dumps(document, indent=2, default=str))


def _failed(
    message: str, *, as_json: bool, markup: bool = True, facts: dict[str, Any] | None = None
) -> NoReturn:
    """Report a failure on stderr (and as a JSON document with ``--json``), exit 1."""
    if markup:
        err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    else:
        err.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        _emit({**(facts or {}), "ok": False, "error": message})
    raise typer.Exit(1)


def _settings(database_url: str | None = None, *, as_json: bool, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url is not None:
        values["database_url"] = database_url
    try:
        return Settings(**values)
    except ContextStoreError as exc:
        message = str(exc)
    _failed(message, as_json=as_json)


async def _schema_problem(settings: Settings) -> str | None:
    """The reason a command that needs the schema failed, when the schema is it.

    Asked after a failure, not before the work: a probe of its own (the
    health check's schema revision, on every dialect and either backend's
    file), so a working database pays nothing and the answer does not depend
    on how each dialect words "no such table".
    """
    from contextstore import _migrations
    from contextstore.connection import ConnectionManager

    db = ConnectionManager(settings)
    try:
        report = await db.health_check()
    finally:
        await db.dispose()
    if not report.ok or report.schema_current:
        return None
    if report.schema_revision is None:
        return f"the database {settings.safe_url} has no contextstore schema; {UPGRADE_HINT}"
    return (
        f"the database {settings.safe_url} has an old contextstore schema (revision "
        f"{report.schema_revision}, newest {_migrations.head_revision()}); {UPGRADE_HINT}"
    )


def _on_store(settings: Settings, work: Callable[[], Awaitable[T]], *, as_json: bool) -> T:
    """Run ``work`` (which opens a Store on ``settings``); errors exit 1 with their message.

    A failure on a database without the contextstore schema (or with an old
    one) is reported as that, with the next step, instead of the database's
    own words.
    """

    async def run() -> T:
        try:
            return await work()
        except ContextStoreError as exc:
            # a missing table is "the database reported an error", the base
            # class; a more specific error (unreachable, timeout, bad input,
            # settings) is its own explanation and is not worth a second probe
            if type(exc) is not ContextStoreError:
                raise
            problem = await _schema_problem(settings)
            if problem is None:
                raise
            raise ContextStoreError(problem) from exc

    try:
        return asyncio.run(run())
    except ContextStoreError as exc:
        message = str(exc) if type(exc) is ContextStoreError else f"{type(exc).__name__}: {exc}"
        _failed(message, as_json=as_json, facts={"url": settings.safe_url})


@app.command()
def health(
    database_url: UrlOption = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for the database.")
    ] = 5.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="The report is always JSON; accepted for uniformity.")
    ] = False,
) -> None:
    """Probe the database and print the health report as JSON (exit 0 ok, 1 not)."""
    del as_json  # the output is JSON with or without it
    from contextstore.store import Store

    settings = _settings(database_url, as_json=True, auto_migrate=False)

    async def probe() -> dict[str, Any]:
        store = Store(settings)
        try:
            await store.connect()
            report = await store.health(timeout=timeout)
        finally:
            await store.close()
        return {"url": settings.safe_url, **report.model_dump()}

    try:
        result = asyncio.run(probe())
    except ContextStoreError as exc:
        result = {"url": settings.safe_url, "ok": False, "error": str(exc)}
    _emit(result)
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def demo(
    database_url: UrlOption = None,
    backend: BackendOption = None,
    agents: Annotated[int, typer.Option(min=2, max=200, help="Agents taking part.")] = 6,
    sessions: Annotated[int, typer.Option(min=1, max=500, help="Concurrent sessions.")] = 4,
    messages: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per session.")] = 25,
    as_json: JsonOption = False,
) -> None:
    """Run a multi-agent collaboration on the configured database and summarise it."""
    from rich.progress import Progress

    from contextstore.store import Store

    from .demo import run_demo, summary_document

    settings = _settings(database_url, as_json=as_json, backend=_backend(backend))
    out = Console()
    where = {"backend": settings.backend, "url": settings.safe_url}
    if not as_json:
        out.print(
            f"contextstore demo: backend [bold]{settings.backend}[/bold] on {settings.safe_url}"
        )

    async def go() -> DemoReport:
        async with Store(settings) as store:
            # with --json stdout carries the document alone: the bar goes to a terminal's stderr
            console, hidden = (err, not err.is_terminal) if as_json else (out, False)
            with Progress(console=console, transient=True, disable=hidden) as bar:
                task = bar.add_task("agents collaborating", total=sessions * messages)
                return await run_demo(
                    store,
                    agents=agents,
                    sessions=sessions,
                    messages=messages,
                    progress=lambda n: bar.advance(task, n),
                )

    report = _on_store(settings, go, as_json=as_json)
    health = report.health
    healthy = health is not None and health.ok
    if as_json:
        document: dict[str, Any] = {**where, "ok": healthy, **summary_document(report)}
        if not healthy:
            document["error"] = _unhealthy(health)
        _emit(document)
    else:
        _print_demo(out, report)
    if not healthy:
        err.print(f"[red]error:[/red] {_unhealthy(health)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _print_demo(out: Console, report: DemoReport) -> None:
    """The demo's text summary: what happened, latency per operation, health."""
    from rich.table import Table

    from .demo import summary_rows

    health = report.health
    done = Table(title="What happened", show_header=False)
    for name, value in summary_rows(report):
        done.add_row(name, str(value))
    out.print(done)
    timing = Table(title="Latency per operation (ms)")
    for heading in ("operation", "count", "p50", "p95", "p99"):
        timing.add_column(heading, justify="left" if heading == "operation" else "right")
    for name, count, p50, p95, p99 in report.percentiles():
        timing.add_row(name, str(count), f"{p50:.2f}", f"{p95:.2f}", f"{p99:.2f}")
    out.print(timing)
    if health is not None:
        status = "[green]ok[/green]" if health.ok else f"[red]failing[/red]: {health.error}"
        out.print(
            f"health: {status}, {health.dialect} {health.server_version}, "
            f"schema {health.schema_revision} (current: {health.schema_current}), "
            f"{health.latency_ms} ms"
        )


def _unhealthy(health: HealthReport | None) -> str:
    if health is None:
        return "the final health check did not run"
    return f"the final health check failed: {health.error}"


def _on_database(
    settings: Settings, work: Callable[[ConnectionManager], Awaitable[T]], *, as_json: bool
) -> T:
    """Run ``work`` on a ConnectionManager for ``settings``; errors exit 1 with their message."""
    from contextstore.connection import ConnectionManager

    async def run() -> T:
        db = ConnectionManager(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except ContextStoreError as exc:
        _failed(f"{type(exc).__name__}: {exc}", as_json=as_json, facts={"url": settings.safe_url})


def _print_revision(settings: Settings, now: str | None, *, as_json: bool) -> None:
    if as_json:
        _emit({"ok": True, "url": settings.safe_url, "revision": now})
    else:
        typer.echo(f"{settings.safe_url}: schema at revision {now or 'none'}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="Target revision.", show_default=True)
    ] = "head",
    database_url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring the schema up to REVISION (default: the newest)."""
    from contextstore import _migrations

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)

    async def work(db: ConnectionManager) -> str | None:
        await _migrations.upgrade(db, revision, adopt=adopt_unversioned)
        return await _migrations.current(db)

    _print_revision(settings, _on_database(settings, work, as_json=as_json), as_json=as_json)


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="Target revision; 'base' drops everything.")
    ],
    database_url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take the schema down to REVISION ('base' removes every contextstore table)."""
    from contextstore import _migrations

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)

    async def work(db: ConnectionManager) -> str | None:
        await _migrations.downgrade(db, revision)
        return await _migrations.current(db)

    _print_revision(settings, _on_database(settings, work, as_json=as_json), as_json=as_json)


@db_app.command("current")
def db_current(database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Print the schema revision of the database ('none' when never migrated)."""
    from contextstore import _migrations

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)
    now = _on_database(settings, _migrations.current, as_json=as_json)
    head = _migrations.head_revision()
    if as_json:
        _emit(
            {
                "ok": True,
                "url": settings.safe_url,
                "revision": now,
                "head": head,
                "newest": now is not None and now == head,
            }
        )
        return
    note = " (newest)" if now is not None and now == head else f" (newest is {head})"
    typer.echo(f"{settings.safe_url}: schema at revision {now or 'none'}{note}")


@db_app.command("check")
def db_check(database_url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Compare the database with the schema; exit 1 listing any drift."""
    from contextstore import _migrations

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)
    drift = _on_database(settings, _migrations.check, as_json=as_json)
    head = _migrations.head_revision()
    if as_json:
        document: dict[str, Any] = {
            "ok": not drift,
            "url": settings.safe_url,
            "head": head,
            "drift": list(drift),
        }
        if drift:
            document["error"] = _drift_error(len(drift))
        _emit(document)
    elif drift:
        typer.echo(f"{settings.safe_url}: schema drift found:")
        for line in drift:
            typer.echo(f"  - {line}")
    else:
        typer.echo(f"{settings.safe_url}: schema matches revision {head}")
    if drift:
        err.print(f"[red]error:[/red] {_drift_error(len(drift))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _drift_error(differences: int) -> str:
    return (
        f"the schema does not match this contextstore's "
        f"({differences} difference{'' if differences == 1 else 's'}); "
        "run 'contextstore db upgrade' if it is behind"
    )


# -- data tools ------------------------------------------------------------

ReadBatchOption = Annotated[
    int,
    typer.Option(
        "--batch-size", metavar="N", min=1, max=100_000, help="Rows per read of each table."
    ),
]
WriteBatchOption = Annotated[
    int,
    typer.Option(
        "--batch-size", metavar="N", min=1, max=100_000, help="Rows per INSERT and per read."
    ),
]


def _tool_settings(url: str, role: str, *, as_json: bool) -> Settings:
    """Settings for a data tool's database; a bad URL exits 1 naming its role."""
    try:
        return Settings(database_url=url, auto_migrate=False)
    except ContextStoreError as exc:
        message = f"{role}: {exc}"
    _failed(message, as_json=as_json)


class _Bar:
    """A rich progress bar as a ``datatools.ProgressSink``: one line per step."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[str, Any] = {}

    def begin(self, label: str, total: int | None) -> None:
        self._tasks[label] = self._bar.add_task(label, total=total)

    def advance(self, label: str, rows: int) -> None:
        self._bar.advance(self._tasks[label], rows)


def _run_tool(
    work: Callable[[_Bar], Coroutine[Any, Any, DataReport]],
    *databases: Settings,
    as_json: bool,
) -> DataReport:
    """Run a data tool with a progress bar on stderr; errors exit 1 with their message.

    An error that escaped the translation to contextstore's errors (a bug) is
    still reported in one line, with the passwords of ``databases`` masked.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        # drawn only on a terminal: redirected stderr gets the messages alone
        with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
            return asyncio.run(work(_Bar(bar)))
    except ContextStoreError as exc:
        message = f"{type(exc).__name__}: {exc}"
        markup = True
    except Exception as exc:
        message = str(exc)
        for settings in databases:
            password = settings.effective_database_url.password
            if password:
                message = message.replace(str(password), "***")
        message = f"unexpected {type(exc).__name__}: {message}"
        markup = False
    _failed(message, as_json=as_json, markup=markup)


def _mismatch_error(report: DataReport) -> str:
    tables = ", ".join(check.table for check in report.mismatches)
    message = f"verification failed: {tables} differ"
    if report.action in ("copy", "restore"):
        message += "; nothing was written: the target was rolled back"
    return message


def _report_document(report: DataReport) -> dict[str, Any]:
    document: dict[str, Any] = {
        "ok": report.ok,
        "action": report.action,
        "source": report.source,
        "target": report.target,
        "revision": report.revision,
        "written": report.written,
        "seconds": round(report.seconds, 3),
        "tables": [
            {
                "table": check.table,
                "ok": check.ok,
                "expected": {"rows": check.expected.rows, "sha256": check.expected.sha256},
                "actual": {"rows": check.actual.rows, "sha256": check.actual.sha256},
            }
            for check in report.tables
        ],
    }
    if not report.ok:
        document["error"] = _mismatch_error(report)
    return document


def _print_report(report: DataReport, done: str, *, as_json: bool) -> None:
    """One line per table on stdout (or the JSON document); a failed verification exits 1."""
    if as_json:
        _emit(_report_document(report))
        if not report.ok:
            err.print(
                f"[red]error:[/red] {_mismatch_error(report)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1)
        return
    typer.echo(f"{done}: {report.source} -> {report.target} (schema {report.revision})")
    for check in report.tables:
        mark = "ok" if check.ok else "MISMATCH"
        typer.echo(
            f"  {check.table:<21} {check.actual.rows:>10} rows  "
            f"sha256 {check.actual.sha256[:16]}  {mark}"
        )
    if report.ok:
        typer.echo(f"verified: row counts and checksums match ({report.seconds:.1f} s)")
        return
    for check in report.mismatches:
        err.print(
            f"[red]mismatch:[/red] {check.table}: expected {check.expected.rows} rows "
            f"(sha256 {check.expected.sha256[:16]}), found {check.actual.rows} rows "
            f"(sha256 {check.actual.sha256[:16]})",
            highlight=False,
            soft_wrap=True,
        )
    err.print(f"[red]error:[/red] {_mismatch_error(report)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@db_app.command("copy")
def db_copy(
    source_url: Annotated[
        str,
        typer.Argument(metavar="SOURCE_URL", help="Database to read (SQLite file, legacy too)."),
    ],
    target_url: Annotated[
        str,
        typer.Argument(metavar="TARGET_URL", help="Database to fill (migrated to the newest)."),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the rows of a non-empty target.")
    ] = False,
    batch_size: WriteBatchOption = 1000,
    as_json: JsonOption = False,
) -> None:
    """Copy every table from SOURCE_URL to TARGET_URL and verify counts and checksums."""
    from .datatools import copy_database

    source = _tool_settings(source_url, "source", as_json=as_json)
    target = _tool_settings(target_url, "target", as_json=as_json)
    report = _run_tool(
        lambda bar: copy_database(source, target, force=force, batch_size=batch_size, progress=bar),
        source,
        target,
        as_json=as_json,
    )
    _print_report(report, "copied", as_json=as_json)


@db_app.command("verify")
def db_verify(
    source_url: Annotated[str, typer.Argument(metavar="URL_A", help="One database.")],
    target_url: Annotated[str, typer.Argument(metavar="URL_B", help="The other database.")],
    batch_size: ReadBatchOption = 1000,
    as_json: JsonOption = False,
) -> None:
    """Compare row counts and checksums of every table of two databases (exit 1 if they differ)."""
    from .datatools import verify_databases

    source = _tool_settings(source_url, "source", as_json=as_json)
    target = _tool_settings(target_url, "target", as_json=as_json)
    report = _run_tool(
        lambda bar: verify_databases(source, target, batch_size=batch_size, progress=bar),
        source,
        target,
        as_json=as_json,
    )
    _print_report(report, "compared", as_json=as_json)


@db_app.command("backup")
def db_backup(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="Dump file to write (gzip-compressed JSON lines)."),
    ],
    database_url: UrlOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    batch_size: ReadBatchOption = 1000,
    as_json: JsonOption = False,
) -> None:
    """Write every table of the database to FILE, a portable versioned dump."""
    from .datatools import backup

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)
    report = _run_tool(
        lambda bar: backup(settings, file, overwrite=force, batch_size=batch_size, progress=bar),
        settings,
        as_json=as_json,
    )
    _print_report(report, "backed up", as_json=as_json)


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Dump file written by 'db backup'.")],
    database_url: UrlOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the rows of a non-empty database.")
    ] = False,
    batch_size: WriteBatchOption = 1000,
    as_json: JsonOption = False,
) -> None:
    """Load FILE into the database (checked whole first; verified against its trailer)."""
    from .datatools import restore

    settings = _settings(database_url, as_json=as_json, auto_migrate=False)
    report = _run_tool(
        lambda bar: restore(settings, file, force=force, batch_size=batch_size, progress=bar),
        settings,
        as_json=as_json,
    )
    _print_report(report, "restored", as_json=as_json)


@memory_app.command("purge-expired")
def memory_purge_expired(
    database_url: UrlOption = None,
    backend: BackendOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every expired memory entry and print how many there were."""
    from contextstore.store import Store

    settings = _settings(
        database_url, as_json=as_json, backend=_backend(backend), auto_migrate=False
    )

    async def purge() -> int:
        async with Store(settings) as store:
            return await store.memory.purge_expired()

    count = _on_store(settings, purge, as_json=as_json)
    if as_json:
        _emit({"ok": True, "url": settings.safe_url, "backend": settings.backend, "purged": count})
        return
    typer.echo(f"{settings.safe_url}: purged {count} expired memory entries")


def main() -> None:
    """Console-script entry point."""
    app()
