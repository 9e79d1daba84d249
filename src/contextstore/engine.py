"""Engine factory: a tuned ``AsyncEngine`` per dialect.

``engine_options`` is pure (no I/O, no engine) so the recipe can be tested per
dialect without a server; all dialect knowledge comes from ``_dialects``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ._dialects import dialect_for

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .settings import Settings

__all__ = ["create_engine", "engine_options"]


def engine_options(url: URL, settings: Settings) -> dict[str, Any]:
    """Return the ``create_async_engine`` keyword arguments for ``url``.

    Only arguments the chosen pool class accepts are emitted (a ``StaticPool``
    gets no sizes).

    Args:
        url: a normalised URL (``settings.effective_database_url``).
        settings: the pool and timeout knobs; ``None`` knobs take the dialect default.

    Returns:
        Keyword arguments for ``sqlalchemy.ext.asyncio.create_async_engine``.
    """
    options = dialect_for(url).engine_options(url, settings)
    if settings.echo_sql:
        options["echo"] = True
    return options


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the ``AsyncEngine`` for ``settings`` with the dialect's hooks attached."""
    url = settings.effective_database_url
    engine = create_async_engine(url, **engine_options(url, settings))
    dialect_for(url).install_hooks(engine.sync_engine, settings)
    return engine
