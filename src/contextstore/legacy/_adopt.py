"""Adoption: hand a legacy-created SQLite file that was never stamped to Alembic.

Older legacy releases created the baseline schema but recorded no revision,
so Alembic would try to create the tables again. Before upgrading a SQLite
database, ``contextstore._migrations.upgrade`` calls :func:`adopt_unversioned`
(handed in by its caller) on the same connection and transaction: when the
file has the contextstore tables but no recorded revision (none in
``contextstore_version``, and no older release's stamp in
``alembic_version``: see :func:`recorded_revision`), their schema is compared
with the legacy baseline (``_sql.SCHEMA``, which a test keeps equal to the
Alembic baseline) and, if it matches, stamped at the baseline revision in
``contextstore_version``; the upgrade then proceeds from there and every row
stays intact. A schema that does not match is refused, with the differences
named, and nothing is written. An ``alembic_version`` holding a service's
own revision is no stamp of contextstore's: such a file is adopted too, and
that table is left as it is.

It runs raw SQL through a callable, so it needs no SQLAlchemy and no
particular driver.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .._facts import FIRST_TABLE, OLD_VERSION_TABLE, VERSION_TABLE, old_release_stamp
from ..errors import ContextStoreError
from . import _sql

__all__ = ["Run", "adopt_unversioned", "recorded_revision", "revision_from", "schema_objects"]

#: ``_sql.TABLE_EXISTS`` parameters of the tables the revision is read from
VERSION = {"name": VERSION_TABLE}
OLD_VERSION = {"name": OLD_VERSION_TABLE}
FIRST = {"name": FIRST_TABLE}

#: ``run(sql, params)`` executes one statement and returns its rows.
Run = Callable[[str, dict[str, Any] | None], Sequence[Sequence[Any]]]

#: the objects the baseline creates, minus its version table: everything
#: whose table is one of these belongs to contextstore.
_TABLES = frozenset(
    {"sessions", "messages", "agent_memory", "audit_log", "session_participants", "messages_fts"}
)

_LIST_OBJECTS = "SELECT type, name, tbl_name, sql FROM sqlite_master"

SchemaObject = tuple[str, str, str, str]


def _normalise(sql: str) -> str:
    """DDL text with whitespace runs collapsed and none around ``(``, ``)`` and ``,``."""
    text = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r" ?([(),]) ?", r"\1", text)


def schema_objects(rows: Sequence[Sequence[Any]]) -> set[SchemaObject]:
    """The contextstore objects among ``sqlite_master`` rows, DDL normalised.

    SQLite's own objects (``sqlite_sequence``, automatic indexes) and the FTS5
    shadow tables (their DDL is FTS5's, not ours) are left out, and so are
    both version tables; objects of tables that are not contextstore's are
    not our business.
    """
    found: set[SchemaObject] = set()
    for kind, name, table, sql in rows:
        # automatic indexes have no DDL; shadow tables are their own tbl_name
        if sql is None or str(name).startswith("sqlite_") or str(table) not in _TABLES:
            continue
        found.add((str(kind), str(name), str(table), _normalise(str(sql))))
    return found


def _baseline_objects() -> set[SchemaObject]:
    """The objects ``_sql.SCHEMA`` creates, read back from an in-memory database."""
    reference = sqlite3.connect(":memory:")
    try:
        for statement in _sql.SCHEMA:
            reference.execute(statement)
        return schema_objects(reference.execute(_LIST_OBJECTS).fetchall())
    finally:
        reference.close()


def revision_from(
    own: Sequence[Sequence[Any]] | None,
    old: Sequence[Sequence[Any]] | None,
    *,
    has_tables: bool,
) -> str | None:
    """The revision contextstore's schema is at, from what the file's version tables hold.

    ``contextstore_version``'s; or else the stamp an older release left in
    ``alembic_version`` (``_facts.old_release_stamp``: core reads it by the
    same rule); None when neither holds contextstore's revision.

    Args:
        own: the rows of ``contextstore_version`` (None: no such table).
        old: the rows of ``alembic_version`` (None: no such table).
        has_tables: whether contextstore's tables are there.
    """
    if own:
        return str(own[0][0])
    if old is None:
        return None
    return old_release_stamp(old, has_tables=has_tables)


def recorded_revision(run: Run) -> str | None:
    """:func:`revision_from` this file, read through ``run``."""
    own = run(_sql.SCHEMA_REVISION, None) if run(_sql.TABLE_EXISTS, VERSION) else None
    old = run(_sql.OLD_SCHEMA_REVISIONS, None) if run(_sql.TABLE_EXISTS, OLD_VERSION) else None
    return revision_from(own, old, has_tables=bool(run(_sql.TABLE_EXISTS, FIRST)))


def adopt_unversioned(run: Run) -> str | None:
    """Stamp a never-stamped legacy schema at the baseline revision, after checking it.

    Args:
        run: executes one statement on the connection the upgrade will use,
            inside its transaction, and returns the rows.

    Returns:
        The revision stamped, or None when there was nothing to adopt (the
        database is empty, or its revision is recorded).

    Raises:
        ContextStoreError: the contextstore tables exist but their schema is
            not the baseline one; nothing was written.
    """
    if recorded_revision(run) is not None:
        return None
    present = schema_objects(run(_LIST_OBJECTS, None))
    if not present:
        return None
    expected = _baseline_objects()
    if present != expected:
        missing = sorted(name for _, name, _, _ in expected - present)
        unexpected = sorted(name for _, name, _, _ in present - expected)
        raise ContextStoreError(
            "cannot adopt this database: it has contextstore tables but no "
            "recorded schema revision, and its schema is not the legacy baseline "
            f"{_sql.BASELINE_REVISION} (missing or different: {', '.join(missing) or '-'}; "
            f"unexpected or different: {', '.join(unexpected) or '-'})"
        )
    if not run(_sql.TABLE_EXISTS, VERSION):
        run(_sql.CREATE_VERSION_TABLE, None)
    run(_sql.STAMP_BASELINE, {"revision": _sql.BASELINE_REVISION})
    return _sql.BASELINE_REVISION
