"""Baseline: sessions, messages, agent memory, audit log, participants, full-text search.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-01-01 00:00:00

Frozen history: this revision imports nothing from ``contextstore`` (only
alembic, SQLAlchemy's public API and the standard library), because the
library's column types and dialect recipes change over time and a revision
that imported them would silently change what it creates. Every column type,
collation, server default, constraint name and full-text statement below is
spelled out as revision 0001 created it; later changes to the schema belong
in new revisions, never here.

The tables are spelled out (not ``metadata.create_all``) for the same reason.
The full-text objects (FTS5 table and triggers on SQLite, generated
``tsvector`` column and GIN index on PostgreSQL, FULLTEXT index on
MySQL/MariaDB) are kept in sync by the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Dialect

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBILITIES = ("public", "private", "agent_only", "admin_only")
TABLE_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

#: binary NO PAD collations on MySQL/MariaDB: exact, case- and trailing-space-sensitive.
EXACT_COLLATION_MARIADB = "utf8mb4_nopad_bin"
EXACT_COLLATION_MYSQL = "utf8mb4_0900_bin"

#: full-text objects over messages.content, per dialect family: (create, drop).
_SQLITE_FTS_REMOVE = (
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);"
)
_SQLITE_FTS_ADD = "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
FULLTEXT_DDL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # FTS5 external-content table, rowid = messages.id, kept in sync by triggers
    # (https://www.sqlite.org/fts5.html#external_content_tables)
    "sqlite": (
        (
            "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
            f"CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN {_SQLITE_FTS_ADD} END",
            "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
            f"{_SQLITE_FTS_REMOVE} END",
            "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
            f"{_SQLITE_FTS_REMOVE} {_SQLITE_FTS_ADD} END",
            # index rows that existed before the table did
            "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
        ),
        (
            "DROP TRIGGER IF EXISTS messages_fts_ai",
            "DROP TRIGGER IF EXISTS messages_fts_ad",
            "DROP TRIGGER IF EXISTS messages_fts_au",
            "DROP TABLE IF EXISTS messages_fts",
        ),
    ),
    # STORED generated tsvector ('simple': lowercased, no stemming) and its GIN index
    "postgresql": (
        (
            "ALTER TABLE messages ADD COLUMN search_vector tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED",
            "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
        ),
        (
            "DROP INDEX IF EXISTS ix_messages_search_vector",
            "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
        ),
    ),
    "mysql": (
        ("CREATE FULLTEXT INDEX ix_messages_content_fulltext ON messages (content)",),
        ("DROP INDEX ix_messages_content_fulltext ON messages",),
    ),
}


class _Types(NamedTuple):
    """The column types revision 0001 creates on one database."""

    family: str
    #: surrogate keys; INTEGER PRIMARY KEY is SQLite's rowid alias (FTS5 content_rowid)
    row_id: sa.types.TypeEngine[int]
    #: a point in time, microseconds kept
    datetime: sa.types.TypeEngine[Any]
    #: any JSON document
    json: sa.types.TypeEngine[Any]
    #: message bodies (16 MiB on MySQL/MariaDB, where TEXT holds 64 KiB)
    long_text: sa.types.TypeEngine[str]
    #: VARCHAR collation with exact equality and code-point order (None: the default)
    collation: str | None

    def exact(self, length: int) -> sa.types.TypeEngine[str]:
        """A VARCHAR for ids, keys and names whose comparisons are exact."""
        if self.family == "postgresql":
            return postgresql.VARCHAR(length, collation=self.collation)
        if self.family == "mysql":
            return mysql.VARCHAR(length, charset="utf8mb4", collation=self.collation)
        return sa.String(length)


def _types(dialect: Dialect) -> _Types:
    # the migration context knows the dialect online and offline (--sql)
    name = dialect.name
    if name == "sqlite":
        # datetimes as SQLAlchemy's DATETIME text; JSON declared TEXT (a column
        # declared JSON would have NUMERIC affinity and round big numbers)
        return _Types("sqlite", sa.Integer(), sa.DateTime(), sa.Text(), sa.Text(), None)
    if name == "postgresql":
        return _Types(
            "postgresql",
            sa.BigInteger(),
            postgresql.TIMESTAMP(timezone=True),
            postgresql.JSONB(),
            sa.Text(),
            "C",
        )
    if name in ("mysql", "mariadb"):
        # DATETIME(6) holds UTC wall time; is_mariadb is known once connected
        mariadb = getattr(dialect, "is_mariadb", True)
        return _Types(
            "mysql",
            sa.BigInteger(),
            mysql.DATETIME(fsp=6),
            mysql.JSON(),
            mysql.MEDIUMTEXT(),
            EXACT_COLLATION_MARIADB if mariadb else EXACT_COLLATION_MYSQL,
        )
    raise NotImplementedError(f"revision 0001_baseline does not support the {name!r} dialect")


def _not_empty(table: str, column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        sa.func.length(sa.column(column)) > 0, name=op.f(f"ck_{table}_{column}_not_empty")
    )


def upgrade() -> None:
    t = _types(op.get_context().dialect)

    op.create_table(
        "sessions",
        sa.Column("id", t.exact(255), nullable=False),
        sa.Column("purpose", t.exact(255), nullable=False),
        sa.Column("created_by", t.exact(255), nullable=False),
        sa.Column("metadata", t.json, nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", t.datetime, nullable=False),
        sa.Column("updated_at", t.datetime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        _not_empty("sessions", "id"),
        _not_empty("sessions", "purpose"),
        _not_empty("sessions", "created_by"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_sessions_created_by_created_at_id"),
        "sessions",
        ["created_by", "created_at", "id"],
    )
    op.create_index(op.f("ix_sessions_is_active"), "sessions", ["is_active"])

    op.create_table(
        "messages",
        sa.Column("id", t.row_id, autoincrement=True, nullable=False),
        sa.Column("session_id", t.exact(255), nullable=False),
        sa.Column("sender", t.exact(255), nullable=False),
        sa.Column("sender_type", t.exact(255), nullable=False),
        sa.Column("content", t.long_text, nullable=False),
        sa.Column("visibility", t.exact(20), nullable=False),
        sa.Column("message_type", t.exact(255), nullable=False),
        sa.Column("metadata", t.json, nullable=False),
        sa.Column("parent_message_id", t.row_id, nullable=True),
        sa.Column("timestamp", t.datetime, nullable=False),
        sa.Column("client_token", t.exact(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_messages_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_message_id"],
            ["messages.id"],
            name=op.f("fk_messages_parent_message_id_messages"),
            ondelete="SET NULL",
        ),
        _not_empty("messages", "sender"),
        sa.CheckConstraint(
            sa.column("visibility").in_(VISIBILITIES), name=op.f("ck_messages_visibility_known")
        ),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_messages_session_id_timestamp_id"), "messages", ["session_id", "timestamp", "id"]
    )
    op.create_index(op.f("ix_messages_sender_timestamp"), "messages", ["sender", "timestamp"])
    op.create_index(op.f("ix_messages_parent_message_id"), "messages", ["parent_message_id"])
    op.create_index(op.f("ix_messages_client_token"), "messages", ["client_token"], unique=True)

    op.create_table(
        "agent_memory",
        sa.Column("id", t.row_id, autoincrement=True, nullable=False),
        sa.Column("agent_id", t.exact(255), nullable=False),
        sa.Column("session_id", t.exact(255), nullable=True),
        sa.Column("key", t.exact(255), nullable=False),
        sa.Column("value", t.json, nullable=False),
        sa.Column("metadata", t.json, nullable=False),
        sa.Column("created_at", t.datetime, nullable=False),
        sa.Column("updated_at", t.datetime, nullable=False),
        sa.Column("expires_at", t.datetime, nullable=True),
        # global memory has session_id NULL; scope makes it '' so that the
        # UNIQUE key below also holds for it (NULLs are distinct in a key)
        sa.Column(
            "scope",
            t.exact(255),
            sa.Computed("coalesce(session_id, '')", persisted=True),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_memory")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_agent_memory_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "agent_id", "scope", "key", name=op.f("uq_agent_memory_agent_id_scope_key")
        ),
        _not_empty("agent_memory", "agent_id"),
        _not_empty("agent_memory", "key"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_agent_memory_expires_at"), "agent_memory", ["expires_at"])
    op.create_index(op.f("ix_agent_memory_session_id"), "agent_memory", ["session_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", t.row_id, autoincrement=True, nullable=False),
        sa.Column("timestamp", t.datetime, nullable=False),
        sa.Column("event_type", t.exact(255), nullable=False),
        sa.Column("agent_id", t.exact(255), nullable=False),
        sa.Column("session_id", t.exact(255), nullable=True),
        sa.Column("resource", t.exact(255), nullable=True),
        sa.Column("action", t.exact(255), nullable=True),
        sa.Column("result", t.exact(255), nullable=True),
        sa.Column("metadata", t.json, nullable=False),
        sa.Column("client_token", t.exact(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_audit_log_session_id_sessions"),
            ondelete="SET NULL",
        ),
        _not_empty("audit_log", "event_type"),
        _not_empty("audit_log", "agent_id"),
        sqlite_autoincrement=True,
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_audit_log_timestamp_id"), "audit_log", ["timestamp", "id"])
    op.create_index(op.f("ix_audit_log_agent_id_timestamp"), "audit_log", ["agent_id", "timestamp"])
    op.create_index(
        op.f("ix_audit_log_event_type_timestamp"), "audit_log", ["event_type", "timestamp"]
    )
    op.create_index(op.f("ix_audit_log_session_id"), "audit_log", ["session_id"])
    op.create_index(op.f("ix_audit_log_client_token"), "audit_log", ["client_token"], unique=True)

    op.create_table(
        "session_participants",
        sa.Column("session_id", t.exact(255), nullable=False),
        sa.Column("agent_id", t.exact(255), nullable=False),
        sa.Column("agent_type", t.exact(255), nullable=False),
        sa.Column("role", t.exact(255), nullable=False),
        sa.Column("joined_at", t.datetime, nullable=False),
        sa.PrimaryKeyConstraint("session_id", "agent_id", name=op.f("pk_session_participants")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_session_participants_session_id_sessions"),
            ondelete="CASCADE",
        ),
        _not_empty("session_participants", "agent_id"),
        _not_empty("session_participants", "agent_type"),
        _not_empty("session_participants", "role"),
        **TABLE_OPTIONS,
    )
    op.create_index(
        op.f("ix_session_participants_agent_id_session_id"),
        "session_participants",
        ["agent_id", "session_id"],
    )

    create, _drop = FULLTEXT_DDL[t.family]
    for statement in create:
        op.execute(statement)


def downgrade() -> None:
    _create, drop = FULLTEXT_DDL[_types(op.get_context().dialect).family]
    for statement in drop:
        op.execute(statement)
    op.drop_table("session_participants")
    op.drop_table("audit_log")
    op.drop_table("agent_memory")
    op.drop_table("messages")
    op.drop_table("sessions")
