"""The ``contextstore`` command line: builds Settings, calls Store / migrations, prints.

Every URL printed goes through ``Settings.safe_url``; errors are printed as
their message (contextstore errors never carry a password), with exit code 1.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from .errors import ContextStoreError
from .settings import Settings

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


def main() -> None:
    """Console-script entry point."""
    app()
