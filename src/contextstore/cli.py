"""The ``contextstore`` command line: builds Settings, calls Store / migrations, prints.

Every URL printed goes through ``Settings.safe_url``; errors are printed as
their message (contextstore errors never carry a password), with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from .errors import ContextStoreError
from .settings import Settings

if TYPE_CHECKING:
    from .connection import ConnectionManager

T = TypeVar("T")

app = typer.Typer(
    name="contextstore",
    help="The contextstore data layer: health, migrations, demo and data tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Schema migrations and data tools.", no_args_is_help=True)
app.add_typer(db_app, name="db")

err = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--database-url", help="Overrides CONTEXTSTORE_DATABASE_URL.", show_default=False),
]


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url is not None:
        values["database_url"] = database_url
    try:
        return Settings(**values)
    except ContextStoreError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def health(
    database_url: UrlOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the database.")] = 5.0,
) -> None:
    """Probe the database and print the health report as JSON (exit 0 ok, 1 not)."""
    from .store import Store

    settings = _settings(database_url, auto_migrate=False)

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
    typer.echo(json.dumps(result, indent=2, default=str))
    raise typer.Exit(0 if result["ok"] else 1)


@app.command()
def demo(
    database_url: UrlOption = None,
    backend: Annotated[
        str | None, typer.Option(help="core or legacy (default: CONTEXTSTORE_BACKEND or core).")
    ] = None,
    agents: Annotated[int, typer.Option(min=2, max=200, help="Agents taking part.")] = 6,
    sessions: Annotated[int, typer.Option(min=1, max=500, help="Concurrent sessions.")] = 4,
    messages: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per session.")] = 25,
) -> None:
    """Run a multi-agent collaboration on the configured database and summarise it."""
    from rich.progress import Progress
    from rich.table import Table

    from ._demo import run_demo, summary_rows
    from .store import Store

    settings = _settings(database_url, backend=backend)
    out = Console()
    out.print(f"contextstore demo: backend [bold]{settings.backend}[/bold] on {settings.safe_url}")

    async def go() -> Any:
        async with Store(settings) as store:
            with Progress(console=out, transient=True) as bar:
                task = bar.add_task("agents collaborating", total=sessions * messages)
                return await run_demo(
                    store,
                    agents=agents,
                    sessions=sessions,
                    messages=messages,
                    progress=lambda n: bar.advance(task, n),
                )

    try:
        report = asyncio.run(go())
    except ContextStoreError as exc:
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None

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
    health = report.health
    if health is not None:
        status = "[green]ok[/green]" if health.ok else f"[red]failing[/red]: {health.error}"
        out.print(
            f"health: {status}, {health.dialect} {health.server_version}, "
            f"schema {health.schema_revision} (current: {health.schema_current}), "
            f"{health.latency_ms} ms"
        )
    raise typer.Exit(0 if health is not None and health.ok else 1)


def _on_database(settings: Settings, work: Callable[[ConnectionManager], Awaitable[T]]) -> T:
    """Run ``work`` on a ConnectionManager for ``settings``; errors exit 1 with their message."""
    from .connection import ConnectionManager

    async def run() -> T:
        db = ConnectionManager(settings)
        try:
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except ContextStoreError as exc:
        err.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False)
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    database_url: UrlOption = None,
) -> None:
    """Bring the schema up to REVISION (default: the newest)."""
    from . import _migrations

    settings = _settings(database_url, auto_migrate=False)

    async def work(db: ConnectionManager) -> str | None:
        await _migrations.upgrade(db, revision)
        return await _migrations.current(db)

    now = _on_database(settings, work)
    typer.echo(f"{settings.safe_url}: schema at revision {now or 'none'}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' drops everything.")],
    database_url: UrlOption = None,
) -> None:
    """Take the schema down to REVISION ('base' removes every contextstore table)."""
    from . import _migrations

    settings = _settings(database_url, auto_migrate=False)

    async def work(db: ConnectionManager) -> str | None:
        await _migrations.downgrade(db, revision)
        return await _migrations.current(db)

    now = _on_database(settings, work)
    typer.echo(f"{settings.safe_url}: schema at revision {now or 'none'}")


@db_app.command("current")
def db_current(database_url: UrlOption = None) -> None:
    """Print the schema revision of the database ('none' when never migrated)."""
    from . import _migrations

    settings = _settings(database_url, auto_migrate=False)
    now = _on_database(settings, _migrations.current)
    head = _migrations.head_revision()
    note = " (newest)" if now is not None and now == head else f" (newest is {head})"
    typer.echo(f"{settings.safe_url}: schema at revision {now or 'none'}{note}")


@db_app.command("check")
def db_check(database_url: UrlOption = None) -> None:
    """Compare the database with the schema; exit 1 listing any drift."""
    from . import _migrations

    settings = _settings(database_url, auto_migrate=False)
    drift = _on_database(settings, _migrations.check)
    if drift:
        typer.echo(f"{settings.safe_url}: schema drift found:")
        for line in drift:
            typer.echo(f"  - {line}")
        raise typer.Exit(1)
    typer.echo(f"{settings.safe_url}: schema matches revision {_migrations.head_revision()}")


def main() -> None:
    """Console-script entry point."""
    app()
