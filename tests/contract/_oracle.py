"""A pure-Python model of the contract, to check every backend against.

Each function restates one rule of DESIGN.md (and the semantics in
``contextstore.repositories.protocols``) without any database, so a test can
compute what a backend *should* return and compare the whole answer at once.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from contextstore import AuditEvent, Message, Session, Viewer


def can_see(viewer: Viewer, message: Message) -> bool:
    """The visibility rule: who may read ``message``."""
    if viewer.is_admin or message.visibility == "public":
        return True
    if message.sender == viewer.agent_id:
        return True  # the sender always sees what they sent
    if message.visibility == "agent_only":
        return viewer.agent_type == message.sender_type
    return False  # private and admin_only: nobody else


def visible(viewer: Viewer, messages: Iterable[Message]) -> list[Message]:
    return [m for m in messages if can_see(viewer, m)]


def message_key(message: Message) -> tuple[datetime, int]:
    """Keyset order of messages: (timestamp, id)."""
    return (message.timestamp, message.id)


def session_key(session: Session) -> tuple[datetime, str]:
    """Keyset order of sessions: (created_at, id)."""
    return (session.created_at, session.id)


def audit_key(event: AuditEvent) -> tuple[datetime, int]:
    """Keyset order of audit events: (timestamp, id)."""
    return (event.timestamp, event.id)


#: letters that are a letter with a mark to a reader but have no decomposition
_LETTER_FOLDS = {"\u0131": "i", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ŧ": "t"}
_LIGATURES = {"æ": "ae", "œ": "oe"}


def _is_cjk(char: str) -> bool:
    """Han ideographs, kana, bopomofo and the iteration marks: a word each."""
    cp = ord(char)
    return (
        0x3005 <= cp <= 0x3007
        or 0x3040 <= cp <= 0x312F
        or 0x31A0 <= cp <= 0x31BF
        or 0x31F0 <= cp <= 0x31FF
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x3FFFF
    )


def word_list(text: str) -> list[str]:
    """The words of the search rule, restated one character at a time: case-
    and accent-folded (compatibility forms decomposed, marks dropped except the
    kana voicing marks, which recombine), split at every character that is not
    a letter or digit, each CJK character a word, no minimum length, no stop
    words."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    kept = []
    for char in folded:
        if unicodedata.category(char).startswith("M") and char not in "\u3099\u309a":
            continue
        kept.append(_LETTER_FOLDS.get(char) or _LIGATURES.get(char) or char)
    out: list[str] = []
    current = ""
    for char in unicodedata.normalize("NFC", "".join(kept)):
        if char.isalnum() and not _is_cjk(char):
            current += char
            continue
        if current:
            out.append(current)
            current = ""
        if _is_cjk(char):
            out.append(char)
    if current:
        out.append(current)
    return out


def words(text: str) -> set[str]:
    """The distinct words of ``text`` (see :func:`word_list`)."""
    return set(word_list(text))


def contains_word(content: str, word: str) -> bool:
    """Whole-word, case-insensitive match of one distinctive search word."""
    return word.casefold() in words(content)


def bucket_start(moment: datetime, bucket: str) -> datetime:
    """``moment`` truncated to the start of its minute, hour or day, in UTC."""
    moment = moment.astimezone(UTC)
    if bucket == "minute":
        return moment.replace(second=0, microsecond=0)
    if bucket == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    raise AssertionError(f"unknown bucket {bucket!r}")


def is_utc(moment: datetime | None) -> bool:
    """Aware, with a zero UTC offset."""
    return moment is not None and moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def strict_json(value: Any) -> str:
    """A canonical text of a JSON value that tells False from 0 and [] from {}.

    Python says ``False == 0`` and ``1 == 1.0``; JSON round trips must not.
    Key order is ignored (keys are sorted).
    """
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
