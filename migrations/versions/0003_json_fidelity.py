"""JSON fidelity: PostgreSQL's JSON columns become ``json`` (the text as written).

Revision ID: 0003_json_fidelity
Revises: 0001_baseline
Create Date: 2026-12-04 00:00:00

Revision 0001 made every JSON column ``jsonb`` on PostgreSQL. jsonb keeps
numbers as ``numeric``: the float ``1e16`` came back as the int
``10000000000000000``, ``1e308`` as a 309-digit int, and ``-0.0`` as ``0.0``
(numeric has no negative zero), while SQLite and MySQL/MariaDB kept the
floats. ``json`` stores the document's text as written, so a value reads back
with the same Python types on every dialect.

Nothing of contextstore relies on jsonb: no index, operator or comparison
touches these columns (``json`` has no equality operator, and none is needed).

Existing rows are converted in place (``USING column::json``, one table
rewrite per table under an exclusive lock); a number jsonb already rewrote
stays as jsonb wrote it (the original text is gone). SQLite (TEXT) and
MySQL/MariaDB (``JSON``) keep their columns: nothing to do there. The
downgrade turns the columns back into ``jsonb``.

Frozen history: like every revision, this one imports nothing from
``contextstore`` and spells out its DDL.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003_json_fidelity"
down_revision: str | Sequence[str] | None = "0002_search_text"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the JSON columns of revision 0001, by table
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "sessions": ("metadata",),
    "messages": ("metadata",),
    "agent_memory": ("value", "metadata"),
    "audit_log": ("metadata",),
}


def _retype(to: str) -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, columns in JSON_COLUMNS.items():
        changes = ", ".join(
            f'ALTER COLUMN "{column}" TYPE {to} USING "{column}"::{to}' for column in columns
        )
        op.execute(f'ALTER TABLE "{table}" {changes}')


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
