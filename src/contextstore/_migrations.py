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
* contextstore's revision lives in its own version table,
  ``contextstore_version`` (``VERSION_TABLE``), never in Alembic's default
  ``alembic_version``, which is left to a service's own Alembic history in
  the same database. A database an older release stamped in
  ``alembic_version`` is moved over by the first upgrade, downgrade or stamp
  (:func:`carry_version`, run by ``env.py`` under the migration lock; reading
  commands never move it); until
  then :func:`current` and ``health()`` read the revision where that release
  left it (:func:`old_release_revision`);
* the comparison behind :func:`check` judges contextstore's own tables only:
  a table that is not in ``schema.metadata`` (a service's, either version
  table, the full-text tables) is skipped with everything on it, and so are
  the full-text columns and indexes the migrations add to ``messages``
  (``include_name``/``include_object``, asked of the dialect recipe);
* after a run that leaves ``contextstore_version`` empty (a downgrade to
  ``base``, a stamp at ``base``) the table is dropped, so nothing of
  contextstore is left behind (:func:`drop_empty_version_table`);
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

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from ._dialects import WRITE_INTENT, dialect_for
from ._facts import FIRST_TABLE, OLD_VERSION_TABLE, VERSION_TABLE, old_release_stamp
from ._translate import translating
from .errors import ContextStoreError

#: ``run(sql, params)`` executes one raw statement and returns its rows.
RunSQL = Callable[[str, "dict[str, Any] | None"], "Sequence[Sequence[Any]]"]
#: a step run before an upgrade on a file database; returns the revision it
#: stamped, or None when it had nothing to do.
Adopt = Callable[[RunSQL], "str | None"]

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from ._dialects import Dialect
    from .connection import ConnectionManager
    from .settings import Settings

__all__ = [
    "VERSION_TABLE",
    "WRITES_REVISION",
    "Adopt",
    "RunSQL",
    "carry_version",
    "check",
    "context_options",
    "current",
    "downgrade",
    "drop_empty_version_table",
    "head_revision",
    "make_config",
    "migration_lock",
    "old_release_revision",
    "own_revision",
    "recorded_revision",
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


#: ``config.attributes`` key telling ``env.py`` whether the command writes a
#: revision (and so may move an older release's stamp, see :func:`carry_version`)
WRITES_REVISION = "contextstore.writes_revision"


def make_config(connection: Connection | None = None, *, write: bool = False) -> Config:
    """An Alembic ``Config`` needing no ``alembic.ini``.

    Args:
        connection: run the commands on this connection instead of opening one.
        write: the command writes a revision (upgrade, downgrade, stamp).
    """
    from alembic.config import Config

    # Alembic's own stdout chatter ("No new upgrade operations detected.") is dropped
    config = Config(stdout=io.StringIO())
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
        config.attributes[WRITES_REVISION] = write
    return config


def context_options(recipe: Dialect) -> dict[str, Any]:
    """The ``context.configure`` options ``env.py`` uses for ``recipe``'s dialect.

    The revision is recorded in ``contextstore_version``. The schema
    comparison judges contextstore's own tables only: a reflected table that
    is not in ``schema.metadata`` is skipped by name before reflection, with
    its columns and indexes (a service's tables, Alembic's default
    ``alembic_version``, the FTS5 virtual and shadow tables; Alembic itself
    skips the configured version table). The full-text columns and indexes
    the migrations add to contextstore's own ``messages`` cannot be in
    ``schema.metadata`` (a PostgreSQL-only column), so they are skipped too.
    """
    from .schema import metadata

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        if name is None:
            return True
        if type_ == "table":
            return name in metadata.tables
        return not recipe.is_fulltext_object(name)

    def include_object(
        obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any
    ) -> bool:
        if name is None:
            return True
        if type_ == "table":
            return name in metadata.tables
        table = getattr(obj, "table", None)
        if table is not None and getattr(table, "name", None) not in metadata.tables:
            return False
        return not recipe.is_fulltext_object(name)

    return {
        "target_metadata": metadata,
        "version_table": VERSION_TABLE,
        "compare_type": True,
        "render_as_batch": recipe.alter_by_rebuild,
        "include_name": include_name,
        "include_object": include_object,
    }


# -- where the revision is recorded -------------------------------------------


def _old_version_table() -> Table:
    """Alembic's default version table, as far as reading and deleting go."""
    return Table(OLD_VERSION_TABLE, MetaData(), Column("version_num", String(32)))


def _own_context(connection: Connection) -> MigrationContext:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})


def own_revision(connection: Connection) -> str | None:
    """The revision recorded in ``contextstore_version`` (None: none there)."""
    return _own_context(connection).get_current_revision()


def old_release_revision(connection: Connection) -> str | None:
    """contextstore's revision as a release before ``contextstore_version`` recorded it.

    That is the value of ``alembic_version`` when all of these hold, and None
    otherwise (the rule is ``_facts.old_release_stamp``, which the legacy
    backend follows too):

    * ``contextstore_version`` holds no revision (it is absent, or empty
      because a move on MariaDB was interrupted after creating it);
    * ``alembic_version`` holds exactly one row (contextstore's history is
      linear: a branched history with several heads is a service's);
    * that row is one of the revisions those releases knew
      (``OLD_RELEASE_REVISIONS``, a frozen set);
    * contextstore's tables are there (``sessions``): a service whose own first
      revision happens to be called ``0001_baseline`` keeps it.

    Args:
        connection: a connection to the database (read only).
    """
    if own_revision(connection) is not None:
        return None
    return _old_stamp(connection)


def _old_stamp(connection: Connection) -> str | None:
    """:func:`old_release_revision`'s rules but the first (``contextstore_version`` is empty)."""
    from sqlalchemy import inspect, select

    inspector = inspect(connection)
    if not inspector.has_table(OLD_VERSION_TABLE):
        return None
    old = _old_version_table()
    rows = connection.execute(select(old.c.version_num)).all()
    return old_release_stamp(rows, has_tables=inspector.has_table(FIRST_TABLE))


def recorded_revision(connection: Connection) -> str | None:
    """The revision contextstore's schema is at, wherever it is recorded.

    ``contextstore_version``'s, or else an older release's stamp in
    ``alembic_version`` (:func:`old_release_revision`); None for a database
    contextstore never migrated.
    """
    own = own_revision(connection)
    return own if own is not None else _old_stamp(connection)


def carry_version(connection: Connection) -> str | None:
    """Move an older release's stamp from ``alembic_version`` to ``contextstore_version``.

    Run by ``env.py`` on its connection, under the migration lock, before an
    upgrade, downgrade or stamp (never before a reading command: an older
    release still running against the database must keep finding its stamp).
    Only a stamp :func:`old_release_revision` recognises is moved; an
    ``alembic_version`` holding a service's revision is never read further,
    written or dropped.

    The steps, in this order: create ``contextstore_version`` (if absent) and
    record the revision there; delete contextstore's row from
    ``alembic_version``; drop ``alembic_version`` if it is then empty. It
    was contextstore's alone (it held that one row, nothing else), so nothing
    of a service's goes with it. On SQLite and PostgreSQL all three are one
    transaction: the move happens whole or not at all. MariaDB commits at
    each DDL statement, so the order is chosen for interruptions: stopped
    after the CREATE, the new table is empty and the stamp is still where it
    was (read from there and moved by the next run); the INSERT and the
    DELETE are one transaction, committed together by the DROP (or the
    migration's first DDL statement), so the revision is never in both tables
    or in neither; stopped before the DROP, an empty ``alembic_version``
    stays, which Alembic reads as "no revision", as if it were absent, and
    which is left to a service's history from then on.

    Args:
        connection: the migration's connection, inside its transaction.

    Returns:
        The revision moved, or None when there was nothing to move.
    """
    from alembic.script import ScriptDirectory
    from sqlalchemy import delete, func, select

    revision = old_release_revision(connection)
    if revision is None:
        return None
    _own_context(connection).stamp(ScriptDirectory.from_config(make_config()), revision)
    old = _old_version_table()
    connection.execute(delete(old).where(old.c.version_num == revision))
    if not connection.execute(select(func.count()).select_from(old)).scalar():
        old.drop(connection)
    return revision


def drop_empty_version_table(connection: Connection) -> bool:
    """Drop ``contextstore_version`` when it holds no revision (after a run to ``base``).

    Returns:
        True when the table was dropped.
    """
    from sqlalchemy import inspect

    if not inspect(connection).has_table(VERSION_TABLE) or own_revision(connection) is not None:
        return False
    Table(VERSION_TABLE, MetaData()).drop(connection)
    return True


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
    # an older release's stamp is contextstore's revision: nothing to adopt
    # (SQLite's write lock, taken by BEGIN IMMEDIATE, serialises this run)
    carry_version(connection)

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

    Read from ``contextstore_version``, or, on a database an older release
    stamped and no upgrade has moved yet, from ``alembic_version``
    (:func:`recorded_revision`). A service's own revision is never returned.

    Raises:
        ContextStoreError: the database cannot be read.
    """
    return await _run(target, _current_revision, write=False)


async def check(target: AsyncEngine | ConnectionManager) -> list[str]:
    """Compare contextstore's tables in the database with ``schema.metadata``.

    Only contextstore's own tables are judged: a service's tables (and its
    ``alembic_version``) are never reported.

    Returns:
        One line per difference; empty when contextstore's revision is the
        newest, is recorded in ``contextstore_version``, and its tables match
        exactly. A revision still where an older release recorded it is one
        line (``db upgrade`` moves it).

    Raises:
        ContextStoreError: the database cannot be read.
    """
    return await _run(target, _differences, write=False)


def _current_revision(config: Config) -> str | None:
    return recorded_revision(config.attributes["connection"])


def _differences(config: Config) -> list[str]:
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    connection: Connection = config.attributes["connection"]
    at, head = own_revision(connection), head_revision()
    old = None if at is not None else _old_stamp(connection)
    if old is not None:
        return [
            f"schema revision {old} is recorded in {OLD_VERSION_TABLE}, where releases "
            f"before {VERSION_TABLE} kept it: run 'db upgrade' to move it"
        ]
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
        return action(make_config(connection, write=write))

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
