"""One search on every dialect: ``messages.search_text`` and full-text indexes over it.

Revision ID: 0002
Revises: 0001_baseline
Create Date: 2026-12-04 00:00:00

Until this revision each dialect's full-text engine decided what a word is,
and they disagreed (accents, ``user@example.com``, ``3.14159``, ``foo_bar``,
short words and stop words on MariaDB). From here on contextstore decides:
every message carries ``search_text``, its words normalised and encoded as
plain ASCII index terms by contextstore's writers, and each dialect indexes
that column so that its own tokenizer sees exactly those terms:

* SQLite: the FTS5 external-content table ``messages_fts`` over
  ``search_text`` with the ``ascii`` tokenizer, kept in sync by triggers;
* PostgreSQL: ``search_vector``, STORED generated as
  ``to_tsvector('simple', search_text)``, with its GIN index;
* MySQL/MariaDB: the FULLTEXT index ``ix_messages_search_text_fulltext``.

Upgrade: the old full-text objects are dropped first (so the backfill does
not maintain them), the column is added (nullable: no table rewrite),
existing rows are backfilled in batches by primary key, and the new
full-text objects are built once over the result. Offline (``--sql``) there
are no rows to read: the SQL adds the column and the indexes, and rows that
existed before stay unsearchable until an online upgrade is run instead.
Downgrade restores revision 0001's objects over ``content``.

Frozen history: like every revision this imports nothing from
``contextstore``. :func:`search_text` below is the normalisation as this
revision defines it (version 1), spelled out; while this is the newest
revision it must equal ``contextstore._facts.search_text``
(``tests/migrations/test_search_text.py`` checks it). A later change of the
normalisation needs a revision of its own that backfills again.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002_search_text"
down_revision: str | Sequence[str] | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# -- the normalisation, version 1 -------------------------------------------

MAX_INDEXED_WORDS = 10_000
MAX_TERM_LENGTH = 32
_CJK = (
    "\u3005-\u3007\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_UNICODE_WORD = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")
_LETTER_FOLDS = str.maketrans(
    {
        "\u0131": "i",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "ħ": "h",
        "ŧ": "t",
        "æ": "ae",
        "œ": "oe",
    }
)
_KEPT_MARKS = frozenset({0x3099, 0x309A})


@functools.cache
def _combining_marks() -> re.Pattern[str]:
    ranges: list[str] = []
    for plane in (range(0x20000), range(0xE0000, 0xE1000)):
        start: int | None = None
        for cp in (*plane, plane.stop):
            mark = cp in plane and cp not in _KEPT_MARKS and unicodedata.category(chr(cp))[0] == "M"
            if mark and start is None:
                start = cp
            elif not mark and start is not None:
                ranges.append(f"{chr(start)}-{chr(cp - 1)}")
                start = None
    return re.compile(f"[{''.join(ranges)}]+")


def search_tokens(text: str) -> list[str]:
    """The words of ``text``: case- and accent-folded, split at non-letters and
    non-digits, each CJK ideograph and kana a word of its own."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    folded = _combining_marks().sub("", folded.translate(_LETTER_FOLDS))
    return _UNICODE_WORD.findall(unicodedata.normalize("NFC", folded))


def search_term(token: str) -> str:
    """``zw`` + an ASCII word, ``zu`` + the hex of any other, ``zh`` + a hash if too long."""
    term = f"zw{token}" if token.isascii() else f"zu{token.encode().hex()}"
    if len(term) <= MAX_TERM_LENGTH:
        return term
    return f"zh{hashlib.blake2b(token.encode(), digest_size=15).hexdigest()}"


def search_text(content: str) -> str:
    """The terms of ``content``'s first ``MAX_INDEXED_WORDS`` distinct words."""
    tokens = search_tokens(content)
    if len(tokens) > MAX_INDEXED_WORDS:
        seen: set[str] = set()
        kept: list[str] = []
        for token in tokens:
            if token not in seen:
                if len(seen) == MAX_INDEXED_WORDS:
                    continue
                seen.add(token)
            kept.append(token)
        tokens = kept
    return " ".join(map(search_term, tokens))


# -- DDL ----------------------------------------------------------------------

_SQLITE_OLD_REMOVE = (
    "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);"
)
_SQLITE_OLD_ADD = "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);"
_SQLITE_NEW_REMOVE = (
    "INSERT INTO messages_fts(messages_fts, rowid, search_text) "
    "VALUES ('delete', old.id, old.search_text);"
)
_SQLITE_NEW_ADD = "INSERT INTO messages_fts(rowid, search_text) VALUES (new.id, new.search_text);"
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS messages_fts_ai",
    "DROP TRIGGER IF EXISTS messages_fts_ad",
    "DROP TRIGGER IF EXISTS messages_fts_au",
    "DROP TABLE IF EXISTS messages_fts",
)

#: per dialect family: (revision 0001's objects over content, this revision's
#: over search_text), each as (create, drop).
FULLTEXT_DDL: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "sqlite": (
        (
            (
                "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', "
                "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
                "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
                f"{_SQLITE_OLD_ADD} END",
                "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
                f"{_SQLITE_OLD_REMOVE} END",
                "CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
                f"{_SQLITE_OLD_REMOVE} {_SQLITE_OLD_ADD} END",
                "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
            ),
            _SQLITE_DROP,
        ),
        (
            (
                # the terms are ASCII letters and digits: the ascii tokenizer
                # splits at the spaces between them and changes nothing else
                "CREATE VIRTUAL TABLE messages_fts USING fts5(search_text, content='messages', "
                "content_rowid='id', tokenize='ascii')",
                "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
                f"{_SQLITE_NEW_ADD} END",
                "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
                f"{_SQLITE_NEW_REMOVE} END",
                "CREATE TRIGGER messages_fts_au AFTER UPDATE OF search_text ON messages BEGIN "
                f"{_SQLITE_NEW_REMOVE} {_SQLITE_NEW_ADD} END",
                "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
            ),
            _SQLITE_DROP,
        ),
    ),
    "postgresql": (
        (
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
        (
            (
                "ALTER TABLE messages ADD COLUMN search_vector tsvector "
                "GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED",
                "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
            ),
            (
                "DROP INDEX IF EXISTS ix_messages_search_vector",
                "ALTER TABLE messages DROP COLUMN IF EXISTS search_vector",
            ),
        ),
    ),
    "mysql": (
        (
            ("CREATE FULLTEXT INDEX ix_messages_content_fulltext ON messages (content)",),
            ("DROP INDEX ix_messages_content_fulltext ON messages",),
        ),
        (
            ("CREATE FULLTEXT INDEX ix_messages_search_text_fulltext ON messages (search_text)",),
            ("DROP INDEX ix_messages_search_text_fulltext ON messages",),
        ),
    ),
}

#: rows read per backfill batch, and the most characters of search text sent in
#: one UPDATE (far below MySQL's 16 MiB ``max_allowed_packet``; terms are ASCII).
BACKFILL_ROWS = 500
BACKFILL_CHARS = 2_000_000

_messages = sa.table(
    "messages", sa.column("id", sa.BigInteger()), sa.column("content"), sa.column("search_text")
)


def _family() -> str:
    name = op.get_context().dialect.name
    if name in ("mysql", "mariadb"):
        return "mysql"
    if name in ("sqlite", "postgresql"):
        return name
    raise NotImplementedError(f"revision 0002 does not support the {name!r} dialect")


def _backfill() -> None:
    """``search_text`` of every existing message, by primary-key batches; each
    UPDATE sets a batch's rows in one statement (one round trip)."""
    if op.get_context().as_sql:
        return  # offline: no rows to read (see the module docstring)
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_messages.c.id, _messages.c.content)
            .where(_messages.c.id > last)
            .order_by(_messages.c.id)
            .limit(BACKFILL_ROWS)
        ).all()
        if not rows:
            return
        pending: dict[int, str] = {}
        size = 0
        for row_id, content in rows:
            text = search_text(content)
            pending[row_id] = text
            size += len(text)
            if size >= BACKFILL_CHARS:
                _update(bind, pending)
                pending, size = {}, 0
        _update(bind, pending)
        last = rows[-1][0]


def _update(bind: sa.engine.Connection, texts: dict[int, str]) -> None:
    if not texts:
        return
    bind.execute(
        sa.update(_messages)
        .where(_messages.c.id.in_(list(texts)))
        .values(search_text=sa.case(texts, value=_messages.c.id))
    )


def _text_type(family: str) -> sa.types.TypeEngine[str]:
    # like content: MEDIUMTEXT on MySQL/MariaDB, where TEXT holds 64 KiB
    return mysql.MEDIUMTEXT() if family == "mysql" else sa.Text()


def upgrade() -> None:
    family = _family()
    (_old_create, old_drop), (new_create, _new_drop) = FULLTEXT_DDL[family]
    for statement in old_drop:
        op.execute(statement)
    op.add_column("messages", sa.Column("search_text", _text_type(family), nullable=True))
    _backfill()
    for statement in new_create:
        op.execute(statement)


def downgrade() -> None:
    family = _family()
    (old_create, _old_drop), (_new_create, new_drop) = FULLTEXT_DDL[family]
    for statement in new_drop:
        op.execute(statement)
    op.drop_column("messages", "search_text")
    for statement in old_create:
        op.execute(statement)
