"""Programmatic Alembic: upgrade, downgrade, stamp, inspect and check the schema.

Every command runs on a connection of the caller's ``AsyncEngine`` (the
ConnectionManager's pool, normally), handed to ``migrations/env.py`` through
``config.attributes["connection"]`` and driven with ``run_sync``, so it works
inside a running event loop and shares the application's connect hooks.

Invariants:

* one migration run at a time per database: ``env.py`` takes the recipe's
  migration lock (advisory lock, ``GET_LOCK``; SQLite's ``BEGIN IMMEDIATE``
  already serialises writers), so services starting together with
  ``auto_migrate`` do not race each other's DDL;
* the full-text objects are created by the migrations but are not in
  ``schema.metadata``; the comparison behind :func:`check` skips them
  (``include_name``/``include_object``, asked of the dialect recipe);
* errors leave as contextstore errors (SQLAlchemy ones through
  ``_translate``; Alembic's as :class:`ContextStoreError`), never with a URL.
"""

from __future__ import annotations

import asyncio
import io
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from ._dialects import WRITE_INTENT, dialect_for
from ._translate import translating
from .errors import ContextStoreError

#: ``run(sql, params)`` executes one raw statement and returns its rows.
RunSQL = Callable[[str, "dict[str, Any] | None"], "Sequence[Sequence[Any]]"]
#: a step run before an upgrade on a file database; returns the revision it
#: stamped, or None when it had nothing to do.
Adopt = Callable[[RunSQL], "str | None"]

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

    from ._dialects import Dialect
    from .connection import ConnectionManager
    from .settings import Settings

__all__ = [
    "Adopt",
    "RunSQL",
    "check",
    "context_options",
    "current",
    "downgrade",
    "head_revision",
    "make_config",
    "migration_lock",
    "script_location",
    "stamp",
    "standalone_engine",
    "upgrade",
]

T = TypeVar("T")


def script_location() -> Path:
    """The ``migrations`` folder: packaged beside the code, or at the repository root."""
    packaged = Path(__file__).parent / "_migration_scripts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "migrations"


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The newest revision of the migration scripts (None when there are none)."""
    from alembic.script import ScriptDirectory

    try:
        return ScriptDirectory.from_config(make_config()).get_current_head()
    except Exception:
        return None


def make_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` needing no ``alembic.ini``.

    Args:
        connection: run the commands on this connection instead of opening one.
    """
    from alembic.config import Config

    # Alembic's own stdout chatter ("No new upgrade operations detected.") is dropped
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def context_options(recipe: Dialect) -> dict[str, Any]:
    """The ``context.configure`` options ``env.py`` uses for ``recipe``'s dialect.

    The full-text objects the migrations create per dialect are not in
    ``schema.metadata`` (a PostgreSQL-only column cannot be), so the schema
    comparison is told to ignore them; tables by name before reflection (the
    FTS5 virtual and shadow tables), columns and indexes after.
    """
    from .schema import metadata

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return name is None or type_ != "table" or not recipe.is_fulltext_object(name)

    def include_object(
        _obj: Any, name: str | None, _type: str, _reflected: bool, _compare_to: Any
    ) -> bool:
        return name is None or not recipe.is_fulltext_object(name)

    return {
        "target_metadata": metadata,
        "compare_type": True,
        "render_as_batch": recipe.alter_by_rebuild,
        "include_name": include_name,
        "include_object": include_object,
    }


@contextmanager
def migration_lock(connection: Connection) -> Iterator[None]:
    """Hold the recipe's per-database migration lock on ``connection``."""
    acquire, release = dialect_for(connection.engine.url).migration_lock_sql()
    if acquire is not None and not connection.exec_driver_sql(acquire).scalar():
        raise ContextStoreError("another migration run holds the migration lock; try again")
    try:
        yield
    finally:
        if release is not None:
            connection.exec_driver_sql(release)


def standalone_engine(settings: Settings) -> AsyncEngine:
    """A pool-less engine for the ``alembic`` command line, with the dialect's hooks."""
    from .engine import create_engine

    return create_engine(settings, pooled=False)


# -- commands ------------------------------------------------------------


async def upgrade(
    target: AsyncEngine | ConnectionManager,
    revision: str = "head",
    *,
    adopt: Adopt | None = None,
) -> None:
    """Bring the schema up to ``revision`` (the newest by default).

    Args:
        target: the engine, or the ConnectionManager whose engine, to run on.
        revision: an Alembic revision id, ``head`` or a relative ``+1``.
        adopt: run first on an embedded (file) database, in the same
            transaction, with a callable that executes raw SQL; the legacy
            backend's ``adopt_unversioned`` stamps a file it created before it
            stamped its schema. Passed in by the caller so that this module
            never imports the legacy package.

    Raises:
        ContextStoreError: the revision is unknown or a migration failed
            (database errors keep their specific class).
    """
    from alembic import command

    def adopt_then_upgrade(config: Config) -> None:
        if adopt is not None:
            _adopt_unstamped(config, adopt)
        command.upgrade(config, revision)

    await _run(target, adopt_then_upgrade)


def _adopt_unstamped(config: Config, adopt: Adopt) -> str | None:
    """Give ``adopt`` raw SQL access to the migration's connection (file databases only)."""
    connection: Connection = config.attributes["connection"]
    if dialect_for(connection.engine.url).is_server:
        return None  # only an embedded file can have been created by the legacy backend

    def run(sql: str, params: dict[str, Any] | None) -> list[Any]:
        result = connection.exec_driver_sql(sql, params or {})
        return list(result.all()) if result.returns_rows else []

    return adopt(run)


async def downgrade(target: AsyncEngine | ConnectionManager, revision: str) -> None:
    """Take the schema down to ``revision`` (``base`` drops everything).

    Raises:
        ContextStoreError: as for :func:`upgrade`.
    """
    from alembic import command

    await _run(target, lambda config: command.downgrade(config, revision))


async def stamp(target: AsyncEngine | ConnectionManager, revision: str) -> None:
    """Record ``revision`` as current without running any migration.

    Raises:
        ContextStoreError: as for :func:`upgrade`.
    """
    from alembic import command

    await _run(target, lambda config: command.stamp(config, revision))


async def current(target: AsyncEngine | ConnectionManager) -> str | None:
    """The revision the database is at; None for a database never migrated.

    Raises:
        ContextStoreError: the database cannot be read.
    """
    return await _run(target, _current_revision, write=False)


async def check(target: AsyncEngine | ConnectionManager) -> list[str]:
    """Compare the database with ``schema.metadata``.

    Returns:
        One line per difference; empty when the database is at the newest
        revision and matches the tables exactly.

    Raises:
        ContextStoreError: the database cannot be read.
    """
    return await _run(target, _differences, write=False)


def _current_revision(config: Config) -> str | None:
    from alembic.runtime.migration import MigrationContext

    connection: Connection = config.attributes["connection"]
    return MigrationContext.configure(connection).get_current_revision()


def _differences(config: Config) -> list[str]:
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    at, head = _current_revision(config), head_revision()
    if at != head:
        return [f"schema is at revision {at or 'none'}, newest is {head}: run 'db upgrade'"]
    try:
        command.check(config)
    except AutogenerateDiffsDetected as exc:
        return [_describe_difference(diff) for diff in exc.diffs]
    return []


def _describe_difference(diff: Any) -> str:
    """One line for one entry of Alembic's ``UpgradeOps.as_diffs()``."""
    if isinstance(diff, list):
        return "; ".join(_describe_difference(item) for item in diff)
    kind, *rest = diff
    if kind.startswith("modify_"):
        _schema, table, column, _existing, old, new = rest
        return f"{kind} {table}.{column}: database has {old!r}, schema wants {new!r}"
    if kind in ("add_column", "remove_column"):
        _schema, table, column = rest
        return f"{kind} {table}.{column.name}"
    obj = rest[-1]
    table = getattr(obj, "table", None)
    where = f" on {table.name}" if table is not None and table is not obj else ""
    name = getattr(obj, "name", None)
    return f"{kind} {name if name else repr(obj)}{where}"


async def _run(
    target: AsyncEngine | ConnectionManager,
    action: Callable[[Config], T],
    *,
    write: bool = True,
) -> T:
    """Run ``action`` with a Config bound to one connection of ``target``'s engine.

    Writes run in one transaction (all of a PostgreSQL or SQLite upgrade
    commits or none does; MySQL commits each DDL statement by itself).
    """
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    engine = target if isinstance(target, AsyncEngine) else target.engine
    recipe = dialect_for(engine.url)

    def in_alembic(connection: Connection) -> T:
        return action(make_config(connection))

    try:
        async with _one_command_at_a_time():
            with translating(recipe):
                async with engine.connect() as conn:
                    await conn.execution_options(**{WRITE_INTENT: write})
                    if not write:
                        return await conn.run_sync(in_alembic)
                    async with conn.begin():
                        return await conn.run_sync(in_alembic)
    except (CommandError, RevisionError) as exc:
        raise ContextStoreError(f"migration failed: {exc}") from exc


_COMMAND_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def _one_command_at_a_time() -> AsyncIterator[None]:
    """Serialise Alembic commands on this event loop.

    Alembic keeps the running command in module globals (the ``alembic.context``
    and ``alembic.op`` proxies); ``run_sync`` yields to the loop at every
    statement, so two commands on one loop would overwrite each other's.
    Other processes are kept apart by the database lock (:func:`migration_lock`).
    """
    loop = asyncio.get_running_loop()
    lock = _COMMAND_LOCKS.get(loop)
    if lock is None:
        lock = _COMMAND_LOCKS[loop] = asyncio.Lock()
    async with lock:
        yield
