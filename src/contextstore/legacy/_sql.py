"""Every SQL string of the legacy backend, in one place.

Statements use named parameters. Optional filters are written as
``(:x IS NULL OR col = :x)`` so each listing is one fixed statement. The
visibility rule and the keyset predicates are shared fragments, composed
here and nowhere else. ``SCHEMA`` is the baseline schema exactly as the
Alembic baseline revision creates it on SQLite (a test compares the two).
"""

from __future__ import annotations

from .._facts import OLD_VERSION_TABLE, VERSION_TABLE

# -- connection and transactions -------------------------------------------

PRAGMA_BUSY_TIMEOUT = "PRAGMA busy_timeout={ms:d}"
PRAGMA_JOURNAL_WAL = "PRAGMA journal_mode=WAL"
PRAGMA_FOREIGN_KEYS = "PRAGMA foreign_keys=ON"
PRAGMA_SYNCHRONOUS = "PRAGMA synchronous=NORMAL"
BEGIN_IMMEDIATE = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
#: savepoints of a unit of work; ``{name}`` is generated, never user input
SAVEPOINT = "SAVEPOINT {name}"
RELEASE_SAVEPOINT = "RELEASE SAVEPOINT {name}"
ROLLBACK_TO_SAVEPOINT = "ROLLBACK TO SAVEPOINT {name}"

SERVER_VERSION = "SELECT sqlite_version()"
#: contextstore's revision, in its own version table
SCHEMA_REVISION = f"SELECT version_num FROM {VERSION_TABLE}"
#: the rows of Alembic's default version table: contextstore's revision on a
#: file an older release stamped, or a service's own history
OLD_SCHEMA_REVISIONS = f"SELECT version_num FROM {OLD_VERSION_TABLE}"
TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"
STAMP_BASELINE = f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:revision)"

# -- shared fragments ----------------------------------------------------------

#: the visibility rule (see ``contextstore.repositories._visibility``) over ``m``.
_VISIBLE = """(
    :is_admin = 1
    OR m.visibility = 'public'
    OR m.sender = :viewer_id
    OR (m.visibility = 'agent_only' AND m.sender_type = :viewer_type)
)"""

_SESSION_COLUMNS = (
    "s.id, s.purpose, s.created_by, s.metadata, s.is_active, s.created_at, s.updated_at"
)
_MESSAGE_COLUMNS = (
    "m.id, m.session_id, m.sender, m.sender_type, m.content, m.visibility, "
    "m.message_type, m.metadata, m.parent_message_id, m.timestamp"
)
_MEMORY_COLUMNS = "agent_id, session_id, key, value, metadata, created_at, updated_at, expires_at"
_AUDIT_COLUMNS = (
    "id, timestamp, event_type, agent_id, session_id, resource, action, result, metadata"
)
_PARTICIPANT_COLUMNS = "session_id, agent_id, agent_type, role, joined_at"

#: a live memory entry: no expiry, or one still in the future.
_LIVE = "(expires_at IS NULL OR expires_at > :now)"

# -- sessions --------------------------------------------------------------------

SESSION_INSERT = """
INSERT INTO sessions (id, purpose, created_by, metadata, is_active, created_at, updated_at)
VALUES (:id, :purpose, :created_by, :metadata, :is_active, :created_at, :updated_at)
"""

SESSION_GET = f"SELECT {_SESSION_COLUMNS} FROM sessions AS s WHERE s.id = :id"

SESSION_PAGE = f"""
SELECT {_SESSION_COLUMNS} FROM sessions AS s
WHERE (:created_by IS NULL OR s.created_by = :created_by)
  AND (:active IS NULL OR s.is_active = :active)
  AND (:after_time IS NULL
       OR s.created_at < :after_time
       OR (s.created_at = :after_time AND s.id < :after_id))
ORDER BY s.created_at DESC, s.id DESC
LIMIT :limit
"""

SESSION_UPDATE = """
UPDATE sessions
SET purpose = coalesce(:purpose, purpose),
    metadata = coalesce(:metadata, metadata),
    is_active = coalesce(:is_active, is_active),
    updated_at = :updated_at
WHERE id = :id
"""

SESSION_DELETE = "DELETE FROM sessions WHERE id = :id"

SESSION_ACTIVITY = f"""
SELECT s.id,
       count(m.id) AS message_count,
       count(DISTINCT m.sender) AS unique_senders,
       max(m.timestamp) AS last_message_at
FROM sessions AS s LEFT OUTER JOIN messages AS m ON m.session_id = s.id AND {_VISIBLE}
WHERE s.id = :id
GROUP BY s.id
"""

# -- messages ------------------------------------------------------------------

MESSAGE_INSERT = """
INSERT INTO messages (session_id, sender, sender_type, content, visibility, message_type,
                      metadata, parent_message_id, timestamp, search_text)
VALUES (:session_id, :sender, :sender_type, :content, :visibility, :message_type,
        :metadata, :parent_message_id, :timestamp, :search_text)
"""

#: a parent the replying sender (the viewer, never an admin) may read
MESSAGE_PARENT = (
    f"SELECT id FROM messages AS m WHERE m.id = :id AND m.session_id = :session_id AND {_VISIBLE}"
)

MESSAGE_GET = f"SELECT {_MESSAGE_COLUMNS} FROM messages AS m WHERE m.id = :id AND {_VISIBLE}"

_MESSAGE_PAGE = f"""
SELECT {_MESSAGE_COLUMNS} FROM messages AS m
WHERE m.session_id = :session_id
  AND (:sender IS NULL OR m.sender = :sender)
  AND {_VISIBLE}
  AND (:after_time IS NULL
       OR m.timestamp {{op}} :after_time
       OR (m.timestamp = :after_time AND m.id {{op}} :after_id))
ORDER BY m.timestamp {{direction}}, m.id {{direction}}
LIMIT :limit
"""
MESSAGE_PAGE_ASC = _MESSAGE_PAGE.format(op=">", direction="ASC")
MESSAGE_PAGE_DESC = _MESSAGE_PAGE.format(op="<", direction="DESC")

MESSAGE_COUNT = f"""
SELECT count(*) FROM messages AS m WHERE m.session_id = :session_id AND {_VISIBLE}
"""

#: ``-bm25`` so that a higher score is a better match; ties newest first.
MESSAGE_SEARCH = f"""
SELECT {_MESSAGE_COLUMNS}, -bm25(messages_fts) AS score
FROM messages AS m JOIN messages_fts ON messages_fts.rowid = m.id
WHERE messages_fts MATCH :match
  AND (:session_id IS NULL OR m.session_id = :session_id)
  AND {_VISIBLE}
ORDER BY score DESC, m.id DESC
LIMIT :limit
"""

MESSAGE_FEED = f"""
SELECT {_MESSAGE_COLUMNS}
FROM messages AS m
JOIN session_participants AS p ON p.session_id = m.session_id AND p.agent_id = :viewer_id
WHERE {_VISIBLE}
  AND (:after_time IS NULL
       OR m.timestamp < :after_time
       OR (m.timestamp = :after_time AND m.id < :after_id))
ORDER BY m.timestamp DESC, m.id DESC
LIMIT :limit
"""

# -- memory ----------------------------------------------------------------------

#: ``scope`` is the generated column ``coalesce(session_id, '')``: global
#: memory has scope ''. With ``:overwrite = 1`` an existing entry is updated
#: in place (created_at kept, as core does); with ``:overwrite = 0`` a live
#: entry is left untouched (no row changed: the caller reports a conflict)
#: and an expired one, which counts as absent, is replaced whole.
MEMORY_UPSERT = """
INSERT INTO agent_memory (agent_id, session_id, key, value, metadata,
                          created_at, updated_at, expires_at)
VALUES (:agent_id, :session_id, :key, :value, :metadata, :now, :now, :expires_at)
ON CONFLICT (agent_id, scope, key) DO UPDATE
SET value = excluded.value,
    metadata = excluded.metadata,
    created_at = CASE WHEN :overwrite = 1
        THEN agent_memory.created_at ELSE excluded.created_at END,
    updated_at = excluded.updated_at,
    expires_at = excluded.expires_at
WHERE :overwrite = 1
   OR (agent_memory.expires_at IS NOT NULL AND agent_memory.expires_at <= :now)
"""

MEMORY_GET = f"""
SELECT {_MEMORY_COLUMNS} FROM agent_memory
WHERE agent_id = :agent_id AND scope = :scope AND key = :key AND {_LIVE}
"""

#: the prefix is compared with ``substr`` so ``%``, ``_`` and ``\\`` are plain
#: characters and the match is case-sensitive (LIKE would be neither).
MEMORY_LIST = f"""
SELECT {_MEMORY_COLUMNS} FROM agent_memory
WHERE agent_id = :agent_id AND scope = :scope
  AND (:prefix IS NULL OR substr(key, 1, length(:prefix)) = :prefix)
  AND {_LIVE}
ORDER BY key
LIMIT :limit
"""

MEMORY_DELETE = f"""
DELETE FROM agent_memory
WHERE agent_id = :agent_id AND scope = :scope AND key = :key AND {_LIVE}
"""

MEMORY_PURGE = "DELETE FROM agent_memory WHERE expires_at IS NOT NULL AND expires_at <= :now"

# -- audit -------------------------------------------------------------------------

AUDIT_INSERT = """
INSERT INTO audit_log (timestamp, event_type, agent_id, session_id, resource, action,
                       result, metadata)
VALUES (:timestamp, :event_type, :agent_id, :session_id, :resource, :action,
        :result, :metadata)
"""

_AUDIT_FILTERS = """
(:agent_id IS NULL OR agent_id = :agent_id)
  AND (:session_id IS NULL OR session_id = :session_id)
  AND (:event_type IS NULL OR event_type = :event_type)
  AND (:since IS NULL OR timestamp >= :since)
  AND (:until IS NULL OR timestamp < :until)
"""

AUDIT_PAGE = f"""
SELECT {_AUDIT_COLUMNS} FROM audit_log
WHERE {_AUDIT_FILTERS}
  AND (:after_time IS NULL
       OR timestamp < :after_time
       OR (timestamp = :after_time AND id < :after_id))
ORDER BY timestamp DESC, id DESC
LIMIT :limit
"""

#: ``:layout`` is a strftime layout truncating to the bucket, in the stored
#: DATETIME text layout (e.g. ``%Y-%m-%d %H:00:00.000000``).
AUDIT_ACTIVITY = """
SELECT strftime(:layout, timestamp) AS start, event_type, count(*) AS count
FROM audit_log
WHERE (:agent_id IS NULL OR agent_id = :agent_id)
  AND (:since IS NULL OR timestamp >= :since)
  AND (:until IS NULL OR timestamp < :until)
GROUP BY start, event_type
ORDER BY start, event_type
"""

# -- participants --------------------------------------------------------------------

PARTICIPANT_JOIN = """
INSERT INTO session_participants (session_id, agent_id, agent_type, role, joined_at)
VALUES (:session_id, :agent_id, :agent_type, :role, :joined_at)
ON CONFLICT (session_id, agent_id) DO NOTHING
"""

PARTICIPANT_GET = f"""
SELECT {_PARTICIPANT_COLUMNS} FROM session_participants
WHERE session_id = :session_id AND agent_id = :agent_id
"""

PARTICIPANT_LEAVE = """
DELETE FROM session_participants WHERE session_id = :session_id AND agent_id = :agent_id
"""

PARTICIPANT_LIST = f"""
SELECT {_PARTICIPANT_COLUMNS} FROM session_participants
WHERE session_id = :session_id
ORDER BY joined_at, agent_id
"""

PARTICIPANT_SESSIONS = f"""
SELECT {_SESSION_COLUMNS}
FROM sessions AS s JOIN session_participants AS p ON p.session_id = s.id
WHERE p.agent_id = :agent_id AND (:active IS NULL OR s.is_active = :active)
ORDER BY s.created_at DESC, s.id DESC
"""

# -- schema ------------------------------------------------------------------------

#: the Alembic baseline revision whose schema ``SCHEMA`` reproduces. Frozen:
#: later revisions are core's business; core upgrades a legacy-created file
#: from here like any other database.
BASELINE_REVISION = "0001_baseline"

#: contextstore's version table, as Alembic creates it (``version_table`` =
#: ``contextstore_version``; older releases used Alembic's ``alembic_version``).
CREATE_VERSION_TABLE = f"""CREATE TABLE {VERSION_TABLE} (
    version_num VARCHAR(32) NOT NULL,
    CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num)
)"""

#: the baseline schema, statement by statement, exactly as the Alembic
#: baseline revision creates it on SQLite (``tests/legacy/test_schema.py``
#: compares ``sqlite_master`` of both, whitespace normalised), stamped at
#: ``BASELINE_REVISION`` afterwards (``STAMP_BASELINE``).
SCHEMA: tuple[str, ...] = (
    CREATE_VERSION_TABLE,
    """CREATE TABLE sessions (
    id VARCHAR(255) NOT NULL,
    purpose VARCHAR(255) NOT NULL,
    created_by VARCHAR(255) NOT NULL,
    metadata TEXT NOT NULL,
    is_active BOOLEAN DEFAULT 1 NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    CONSTRAINT pk_sessions PRIMARY KEY (id),
    CONSTRAINT ck_sessions_id_not_empty CHECK (length(id) > 0),
    CONSTRAINT ck_sessions_purpose_not_empty CHECK (length(purpose) > 0),
    CONSTRAINT ck_sessions_created_by_not_empty CHECK (length(created_by) > 0)
)""",
    "CREATE INDEX ix_sessions_created_by_created_at_id ON sessions (created_by, created_at, id)",
    "CREATE INDEX ix_sessions_is_active ON sessions (is_active)",
    """CREATE TABLE messages (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    session_id VARCHAR(255) NOT NULL,
    sender VARCHAR(255) NOT NULL,
    sender_type VARCHAR(255) NOT NULL,
    content TEXT NOT NULL,
    visibility VARCHAR(20) NOT NULL,
    message_type VARCHAR(255) NOT NULL,
    metadata TEXT NOT NULL,
    parent_message_id INTEGER,
    timestamp DATETIME NOT NULL,
    client_token VARCHAR(64),
    CONSTRAINT fk_messages_session_id_sessions FOREIGN KEY(session_id)
        REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT fk_messages_parent_message_id_messages FOREIGN KEY(parent_message_id)
        REFERENCES messages (id) ON DELETE SET NULL,
    CONSTRAINT ck_messages_sender_not_empty CHECK (length(sender) > 0),
    CONSTRAINT ck_messages_visibility_known
        CHECK (visibility IN ('public', 'private', 'agent_only', 'admin_only'))
)""",
    "CREATE INDEX ix_messages_session_id_timestamp_id ON messages (session_id, timestamp, id)",
    "CREATE INDEX ix_messages_sender_timestamp ON messages (sender, timestamp)",
    "CREATE INDEX ix_messages_parent_message_id ON messages (parent_message_id)",
    "CREATE UNIQUE INDEX ix_messages_client_token ON messages (client_token)",
    """CREATE TABLE agent_memory (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    agent_id VARCHAR(255) NOT NULL,
    session_id VARCHAR(255),
    "key" VARCHAR(255) NOT NULL,
    value TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    expires_at DATETIME,
    scope VARCHAR(255) GENERATED ALWAYS AS (coalesce(session_id, '')) STORED,
    CONSTRAINT fk_agent_memory_session_id_sessions FOREIGN KEY(session_id)
        REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT uq_agent_memory_agent_id_scope_key UNIQUE (agent_id, scope, "key"),
    CONSTRAINT ck_agent_memory_agent_id_not_empty CHECK (length(agent_id) > 0),
    CONSTRAINT ck_agent_memory_key_not_empty CHECK (length("key") > 0)
)""",
    "CREATE INDEX ix_agent_memory_expires_at ON agent_memory (expires_at)",
    "CREATE INDEX ix_agent_memory_session_id ON agent_memory (session_id)",
    """CREATE TABLE audit_log (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    timestamp DATETIME NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    agent_id VARCHAR(255) NOT NULL,
    session_id VARCHAR(255),
    resource VARCHAR(255),
    action VARCHAR(255),
    result VARCHAR(255),
    metadata TEXT NOT NULL,
    client_token VARCHAR(64),
    CONSTRAINT fk_audit_log_session_id_sessions FOREIGN KEY(session_id)
        REFERENCES sessions (id) ON DELETE SET NULL,
    CONSTRAINT ck_audit_log_event_type_not_empty CHECK (length(event_type) > 0),
    CONSTRAINT ck_audit_log_agent_id_not_empty CHECK (length(agent_id) > 0)
)""",
    "CREATE INDEX ix_audit_log_timestamp_id ON audit_log (timestamp, id)",
    "CREATE INDEX ix_audit_log_agent_id_timestamp ON audit_log (agent_id, timestamp)",
    "CREATE INDEX ix_audit_log_event_type_timestamp ON audit_log (event_type, timestamp)",
    "CREATE INDEX ix_audit_log_session_id ON audit_log (session_id)",
    "CREATE UNIQUE INDEX ix_audit_log_client_token ON audit_log (client_token)",
    """CREATE TABLE session_participants (
    session_id VARCHAR(255) NOT NULL,
    agent_id VARCHAR(255) NOT NULL,
    agent_type VARCHAR(255) NOT NULL,
    role VARCHAR(255) NOT NULL,
    joined_at DATETIME NOT NULL,
    CONSTRAINT pk_session_participants PRIMARY KEY (session_id, agent_id),
    CONSTRAINT fk_session_participants_session_id_sessions FOREIGN KEY(session_id)
        REFERENCES sessions (id) ON DELETE CASCADE,
    CONSTRAINT ck_session_participants_agent_id_not_empty CHECK (length(agent_id) > 0),
    CONSTRAINT ck_session_participants_agent_type_not_empty CHECK (length(agent_type) > 0),
    CONSTRAINT ck_session_participants_role_not_empty CHECK (length(role) > 0)
)""",
    """CREATE INDEX ix_session_participants_agent_id_session_id
    ON session_participants (agent_id, session_id)""",
    # full-text search: an external-content FTS5 table kept in sync by
    # triggers, so rows written by either backend are searchable
    """CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages',
    content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
    """CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END""",
    """CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
END""",
    """CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
END""",
)
