"""Every table of contextstore: the single source for Core statements and Alembic.

Invariants the repositories (both backends) rely on:

* ids, keys and names are :class:`~contextstore._dialects.types.ExactString`: compared
  exactly (case and trailing spaces count) on every dialect;
* ``agent_memory.scope`` is a STORED generated column,
  ``coalesce(session_id, '')``, so ``UNIQUE (agent_id, scope, key)`` also
  holds for global memory (``session_id`` NULL, since NULLs are distinct in a
  plain UNIQUE key) and is the one upsert target on every dialect;
* ``client_token`` columns are optional idempotency keys: unique when given,
  NULL any number of times;
* ``messages.search_text`` holds the message's words as search sees them,
  encoded as index terms (``contextstore._facts.search_text``: case- and
  accent-folded, split at every non-letter, no minimum length, no stop
  words); every writer of contextstore (core, legacy, the data tools)
  computes it from ``content`` in Python, so every dialect searches the same
  words. It is never part of a record;
* the full-text objects over it (SQLite FTS5 table and triggers, PostgreSQL
  ``search_vector`` column and GIN index, MariaDB FULLTEXT index) are created
  by the migrations and are deliberately not declared here; ``contextstore
  db check`` ignores them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
    column,
    func,
    true,
)

from ._dialects.types import LongText
from .models import VISIBILITIES
from .types import ExactString, JSONDocument, UTCDateTime

__all__ = [
    "NAMING_CONVENTION",
    "TABLE_OPTIONS",
    "agent_memory",
    "audit_log",
    "messages",
    "metadata",
    "session_participants",
    "sessions",
]

#: deterministic constraint and index names, the same on every dialect.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: utf8mb4 whatever the MySQL/MariaDB database's default character set is.
TABLE_OPTIONS: dict[str, Any] = {"mysql_charset": "utf8mb4", "mariadb_charset": "utf8mb4"}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id_type() -> BigInteger:
    # INTEGER PRIMARY KEY is SQLite's rowid alias (FTS5 content_rowid relies on it)
    return BigInteger().with_variant(Integer(), "sqlite")


def _not_empty(name: str) -> CheckConstraint:
    return CheckConstraint(func.length(column(name)) > 0, name=f"{name}_not_empty")


sessions = Table(
    "sessions",
    metadata,
    Column("id", ExactString(255), primary_key=True),
    Column("purpose", ExactString(255), nullable=False),
    Column("created_by", ExactString(255), nullable=False),
    Column("metadata", JSONDocument, nullable=False),
    Column("is_active", Boolean(), nullable=False, default=True, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    _not_empty("id"),
    _not_empty("purpose"),
    _not_empty("created_by"),
    Index(None, "created_by", "created_at", "id"),
    Index(None, "is_active"),
    **TABLE_OPTIONS,
)

messages = Table(
    "messages",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column(
        "session_id",
        ExactString(255),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sender", ExactString(255), nullable=False),
    Column("sender_type", ExactString(255), nullable=False),
    Column("content", LongText, nullable=False),
    Column("visibility", ExactString(20), nullable=False),
    Column("message_type", ExactString(255), nullable=False),
    Column("metadata", JSONDocument, nullable=False),
    Column(
        "parent_message_id",
        _id_type(),
        ForeignKey("messages.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("client_token", ExactString(64), nullable=True),
    # the words of content as search sees them (_facts.search_text), written
    # by every writer of contextstore; NULL only for rows written by others
    Column("search_text", LongText, nullable=True),
    _not_empty("sender"),
    CheckConstraint(column("visibility").in_(VISIBILITIES), name="visibility_known"),
    Index(None, "session_id", "timestamp", "id"),
    Index(None, "sender", "timestamp"),
    Index(None, "parent_message_id"),
    Index(None, "client_token", unique=True),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

agent_memory = Table(
    "agent_memory",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("agent_id", ExactString(255), nullable=False),
    Column(
        "session_id",
        ExactString(255),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("key", ExactString(255), nullable=False),
    Column("value", JSONDocument, nullable=False),
    Column("metadata", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("scope", ExactString(255), Computed("coalesce(session_id, '')", persisted=True)),
    _not_empty("agent_id"),
    _not_empty("key"),
    UniqueConstraint("agent_id", "scope", "key"),
    Index(None, "expires_at"),
    # session deletes cascade here; without it they scan the table
    Index(None, "session_id"),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", _id_type(), primary_key=True, autoincrement=True),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("event_type", ExactString(255), nullable=False),
    Column("agent_id", ExactString(255), nullable=False),
    Column(
        "session_id",
        ExactString(255),
        ForeignKey("sessions.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column("resource", ExactString(255), nullable=True),
    Column("action", ExactString(255), nullable=True),
    Column("result", ExactString(255), nullable=True),
    Column("metadata", JSONDocument, nullable=False),
    Column("client_token", ExactString(64), nullable=True),
    _not_empty("event_type"),
    _not_empty("agent_id"),
    Index(None, "timestamp", "id"),
    Index(None, "agent_id", "timestamp"),
    Index(None, "event_type", "timestamp"),
    Index(None, "session_id"),
    Index(None, "client_token", unique=True),
    sqlite_autoincrement=True,
    **TABLE_OPTIONS,
)

session_participants = Table(
    "session_participants",
    metadata,
    Column(
        "session_id",
        ExactString(255),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("agent_id", ExactString(255), nullable=False),
    Column("agent_type", ExactString(255), nullable=False),
    Column("role", ExactString(255), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("session_id", "agent_id"),
    _not_empty("agent_id"),
    _not_empty("agent_type"),
    _not_empty("role"),
    Index(None, "agent_id", "session_id"),
    **TABLE_OPTIONS,
)
