"""Alembic environment for contextstore (async; shares the caller's connection).

* ``config.attributes["connection"]`` holds a sync ``Connection`` when
  contextstore runs a command itself (``Store.connect()`` with
  ``auto_migrate``, ``contextstore db ...``): the migrations run on it, inside
  the caller's transaction, and the caller commits;
* otherwise (plain ``alembic upgrade head``) the URL comes from
  ``contextstore.Settings()`` (``CONTEXTSTORE_DATABASE_URL`` or ``.env``) and
  a pool-less engine with the dialect's connect hooks is used once;
* the options (the version table ``contextstore_version``, compare types,
  batch mode on SQLite, judging contextstore's own tables only) come from
  ``contextstore._migrations.context_options``, so ``alembic check`` and
  ``contextstore db check`` judge drift the same way;
* online, under the migration lock, for the commands that write a revision
  (upgrade, downgrade, stamp; see ``_writes_revision``): before the run, a
  stamp an older release left in ``alembic_version`` is moved to
  ``contextstore_version`` (``carry_version``; a service's
  ``alembic_version`` is left alone); after it, an empty
  ``contextstore_version`` (a downgrade or stamp to ``base``) is dropped.
  Reading commands (``current``, ``check``) never write: an older release
  still running against the database must keep finding its stamp.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from contextstore import _migrations
from contextstore._dialects import dialect_for
from contextstore.settings import Settings

config = context.config

if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: emit the SQL for the configured dialect."""
    url = Settings().effective_database_url
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **_migrations.context_options(dialect_for(url)),
    )
    with context.begin_transaction():
        context.run_migrations()


#: the ``alembic`` commands that write a revision
_WRITING_COMMANDS = frozenset({"upgrade", "downgrade", "stamp"})


def _writes_revision() -> bool:
    """Whether this run writes a revision: told by ``contextstore._migrations``,
    or the ``alembic`` command line's command."""
    told = config.attributes.get(_migrations.WRITES_REVISION)
    if told is not None:
        return bool(told)
    command = getattr(config.cmd_opts, "cmd", None)
    return command is not None and getattr(command[0], "__name__", "") in _WRITING_COMMANDS


def run_migrations(connection: Connection) -> None:
    writes = _writes_revision()
    with _migrations.migration_lock(connection):
        context.configure(
            connection=connection,
            **_migrations.context_options(dialect_for(connection.engine.url)),
        )
        if writes:
            _migrations.carry_version(connection)
        with context.begin_transaction():
            context.run_migrations()
        if writes:
            _migrations.drop_empty_version_table(connection)


async def run_standalone() -> None:
    engine = _migrations.standalone_engine(Settings())
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_migrations(shared)
else:
    asyncio.run(run_standalone())
