"""Baseline: sessions, messages, agent memory, audit log, participants, full-text search.

Revision ID: 0001_baseline
Revises:
Create Date: 2025-01-01 00:00:00

The tables are spelled out (not ``metadata.create_all``) so this revision
stays what it was when later revisions change ``contextstore.schema``. The
full-text objects come from the dialect recipe of the database being
migrated (FTS5 table and triggers, generated ``tsvector`` column and GIN
index, or FULLTEXT index); they are kept in sync by the database itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import URL

from contextstore._dialects import Dialect, dialect_for
from contextstore._types import ExactString, JSONDocument, LongText, UTCDateTime

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBILITIES = ("public", "private", "agent_only", "admin_only")
TABLE_OPTIONS = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}


def _recipe() -> Dialect:
    # the migration context knows the dialect online and offline (--sql)
    return dialect_for(URL.create(op.get_context().dialect.name))


def _row_id() -> sa.types.TypeEngine[int]:
    # INTEGER PRIMARY KEY is SQLite's rowid alias (FTS5 content_rowid relies on it)
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _not_empty(table: str, column: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(
        sa.func.length(sa.column(column)) > 0, name=op.f(f"ck_{table}_{column}_not_empty")
    )


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", ExactString(255), nullable=False),
        sa.Column("purpose", ExactString(255), nullable=False),
        sa.Column("created_by", ExactString(255), nullable=False),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
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
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("session_id", ExactString(255), nullable=False),
        sa.Column("sender", ExactString(255), nullable=False),
        sa.Column("sender_type", ExactString(255), nullable=False),
        sa.Column("content", LongText, nullable=False),
        sa.Column("visibility", ExactString(20), nullable=False),
        sa.Column("message_type", ExactString(255), nullable=False),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.Column("parent_message_id", _row_id(), nullable=True),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("client_token", ExactString(64), nullable=True),
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
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("agent_id", ExactString(255), nullable=False),
        sa.Column("session_id", ExactString(255), nullable=True),
        sa.Column("key", ExactString(255), nullable=False),
        sa.Column("value", JSONDocument, nullable=False),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        # global memory has session_id NULL; scope makes it '' so that the
        # UNIQUE key below also holds for it (NULLs are distinct in a key)
        sa.Column(
            "scope",
            ExactString(255),
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
        sa.Column("id", _row_id(), autoincrement=True, nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.Column("event_type", ExactString(255), nullable=False),
        sa.Column("agent_id", ExactString(255), nullable=False),
        sa.Column("session_id", ExactString(255), nullable=True),
        sa.Column("resource", ExactString(255), nullable=True),
        sa.Column("action", ExactString(255), nullable=True),
        sa.Column("result", ExactString(255), nullable=True),
        sa.Column("metadata", JSONDocument, nullable=False),
        sa.Column("client_token", ExactString(64), nullable=True),
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
        sa.Column("session_id", ExactString(255), nullable=False),
        sa.Column("agent_id", ExactString(255), nullable=False),
        sa.Column("agent_type", ExactString(255), nullable=False),
        sa.Column("role", ExactString(255), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
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

    for statement in _recipe().fulltext_ddl():
        op.execute(statement)


def downgrade() -> None:
    for statement in _recipe().fulltext_drop_ddl():
        op.execute(statement)
    op.drop_table("session_participants")
    op.drop_table("audit_log")
    op.drop_table("agent_memory")
    op.drop_table("messages")
    op.drop_table("sessions")
