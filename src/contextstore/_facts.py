"""Facts the core and the legacy backend share: one home for each.

Both backends write the same SQLite file, so whatever decides how a value is
stored, how an error is classified or how a search query is read must be the
same code for both, or they drift apart. This module holds those facts and
imports nothing of contextstore: the dialect recipes (``_dialects``) and the
legacy package both import it, and neither imports the other.

* the clock: aware UTC with microseconds;
* SQLite: the busy timeout, the result codes and what they mean, the text
  layout of a stored DATETIME and of its time buckets, the full-text table,
  which URLs are in-memory databases;
* search: the words of a text (the one normalisation every backend and
  dialect searches by), the index terms they are written as in
  ``messages.search_text``, the terms a query searches for, and the FTS5
  expression that finds them;
* JSON: how a JSON column's value becomes text and back (orjson, with the
  standard library where orjson would differ from it);
* the schema revision: where contextstore records it (``VERSION_TABLE``), and
  how to recognise the one an older release recorded in Alembic's default
  table (``OLD_VERSION_TABLE``, ``OLD_RELEASE_REVISIONS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import orjson

__all__ = [
    "BUCKET_LAYOUT",
    "BUSY_TIMEOUT_MS",
    "FIRST_TABLE",
    "FTS_TABLE",
    "MAX_INDEXED_WORDS",
    "MAX_QUERY_WORDS",
    "MAX_TERM_LENGTH",
    "OLD_RELEASE_REVISIONS",
    "OLD_VERSION_TABLE",
    "VERSION_TABLE",
    "Probes",
    "SqliteErrorKind",
    "collection_paused",
    "fts5_query",
    "is_memory_database",
    "json_bytes_loads",
    "json_loads",
    "json_text",
    "jsonb_loads",
    "old_release_stamp",
    "search_term",
    "search_text",
    "search_tokens",
    "search_words",
    "sqlite_error_kind",
    "sqlite_uri",
    "sqlite_url_problem",
    "utcnow",
    "wait_bound",
]

T = TypeVar("T")


def json_text(value: Any) -> str:
    """A JSON column's value as text: orjson's compact UTF-8, or the standard
    library's for what orjson refuses (integers beyond 64 bits) so that every
    value validation admits is stored."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def json_loads(text: str | bytes) -> Any:
    """A JSON column's text as its value. orjson reads integers beyond 64 bits as
    floats and refuses ``NaN``: a document with a run of 19 digits, or one
    orjson refuses, is read by the standard library, exactly."""
    if isinstance(text, bytes):
        text = text.decode()
    if (
        len(text) < _LONG_DIGITS_RUN
        or text.encode("utf-8", "surrogatepass").translate(_DIGITS_ONLY).find(_DIGIT_RUN) < 0
    ):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def json_bytes_loads(data: bytes) -> Any:
    """A JSON document as UTF-8 bytes (PostgreSQL's ``json`` in binary format is
    the text itself) as its value: :func:`json_loads`'s rules in one call,
    since it runs for every JSON value of every row read."""
    if len(data) < _LONG_DIGITS_RUN or data.translate(_DIGITS_ONLY).find(_DIGIT_RUN) < 0:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def jsonb_loads(data: bytes) -> Any:
    """A PostgreSQL ``jsonb`` value in binary format (a version byte, then the
    document's UTF-8 text) as its value, by :func:`json_bytes_loads`."""
    return json_bytes_loads(data[1:])


#: the table contextstore's Alembic history records its revision in, so that a
#: service's own Alembic history (in Alembic's default ``alembic_version``)
#: can live in the same database.
VERSION_TABLE = "contextstore_version"
#: where releases before ``VERSION_TABLE`` recorded contextstore's revision.
OLD_VERSION_TABLE = "alembic_version"
#: every revision those releases knew. Frozen: every later revision is
#: recorded in ``VERSION_TABLE`` from the start, so an ``OLD_VERSION_TABLE``
#: row with another value is a service's own.
OLD_RELEASE_REVISIONS = frozenset({"0001_baseline", "0002_search_text", "0003_json_fidelity"})
#: contextstore's table the baseline creates first; its presence tells an older
#: release's stamp from a service's revision that happens to have the same name.
FIRST_TABLE = "sessions"


def old_release_stamp(rows: Sequence[Sequence[Any]], *, has_tables: bool) -> str | None:
    """contextstore's revision among ``OLD_VERSION_TABLE``'s rows, if an older release wrote it.

    Asked only when ``VERSION_TABLE`` holds no revision (it is absent, or
    empty after an interrupted move). The rows are an older release's stamp
    when there is exactly one (contextstore's history is linear: several
    heads are a service's branched history), it is one of
    ``OLD_RELEASE_REVISIONS``, and contextstore's tables are there
    (``has_tables``: ``FIRST_TABLE`` exists), so a service's first revision
    called ``0001_baseline`` in a database without contextstore stays the
    service's.

    Args:
        rows: the rows of ``OLD_VERSION_TABLE`` (``version_num`` first).
        has_tables: whether ``FIRST_TABLE`` exists.

    Returns:
        The revision, or None when the rows are not contextstore's.
    """
    if not has_tables or len(rows) != 1:
        return None
    revision = str(rows[0][0])
    return revision if revision in OLD_RELEASE_REVISIONS else None


#: an integer literal that may not fit 64 bits (or digits inside a string: harmless)
_LONG_DIGITS_RUN = 19
#: ``bytes.translate`` table: every ASCII digit to ``0``, every other byte to a
#: space, so that a run of digits is a substring search, in C (a regular
#: expression's ``\d{19}`` costs about 1 µs on a 100-byte document, this 0.3:
#: it runs for every JSON value of every row read). JSON numbers are ASCII.
#: Searched with ``find``: ``in`` first tries the operand as a byte value,
#: and the TypeError it makes and drops costs as much as the search.
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_DIGIT_RUN = b"0" * _LONG_DIGITS_RUN


def utcnow() -> datetime:
    """The one clock of contextstore: aware UTC, microsecond precision."""
    return datetime.now(UTC)


#: the longest wait a caller's timeout asks for that is honoured as given; a
#: longer one (1e308, say) is this, which asyncio's clock can still add to.
LONGEST_WAIT = 86_400.0


def wait_bound(timeout: object) -> float | str:
    """A caller's ``timeout`` (seconds) as the wait to make, or why it cannot be one.

    Health probes never raise, so the refusal is a text for their report, not
    an exception: a timeout must be a positive finite number (not a bool).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        return f"timeout must be a positive number of seconds, got {type(timeout).__name__}"
    if isinstance(timeout, int):
        # an int of any size is exact; math.isfinite would overflow on 10**400
        return float(min(timeout, LONGEST_WAIT)) if timeout > 0 else _not_positive(timeout)
    if not math.isfinite(timeout) or timeout <= 0:
        return _not_positive(timeout)
    return min(timeout, LONGEST_WAIT)


class Probes:
    """Health probes run as tasks of their own, each abandoned at its deadline.

    A probe that outlives its deadline is cancelled and kept here until it
    ends, so that closing can wait for it; its failure is expected, so it is
    marked retrieved rather than logged as never retrieved.
    """

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    async def answer(self, probe: Coroutine[Any, Any, T], bound: float) -> asyncio.Task[T] | None:
        """``probe`` run within ``bound`` seconds: its finished task (result or
        failure), or None when it did not finish in time (then cancelled)."""
        task = asyncio.ensure_future(probe)
        self._running.add(task)
        task.add_done_callback(self._forget)
        try:
            done, _ = await asyncio.wait({task}, timeout=bound)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task not in done:
            task.cancel()
            return None
        return task

    async def close(self) -> None:
        """Cancel the probes still running and wait for them, briefly."""
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(self._running, timeout=1.0)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled():
            task.exception()


def _not_positive(timeout: float) -> str:
    return f"timeout must be a positive finite number of seconds, got {timeout!r}"


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused over a synchronous loop that makes
    many long-lived objects (a bulk write's rows and records).

    Each young-generation collection would otherwise rescan the growing
    batch: a sixth of a 20,000-row ``add_many``. Never held across an await.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- SQLite ----------------------------------------------------------------

#: how long a writer waits for the lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 30_000

# Extended result codes: https://www.sqlite.org/rescode.html
_CONFLICT = frozenset({1555, 2067})  # CONSTRAINT_PRIMARYKEY, CONSTRAINT_UNIQUE
_NOT_FOUND = frozenset({787})  # CONSTRAINT_FOREIGNKEY
# CONSTRAINT, CHECK, NOTNULL, TRIGGER, DATATYPE (a STRICT column's type)
_INVALID = frozenset({19, 275, 1299, 1811, 3091})
_BUSY_PRIMARY = frozenset({5, 6})  # BUSY, LOCKED
_UNAVAILABLE_PRIMARY = frozenset({14, 26})  # CANTOPEN, NOTADB
_INTERRUPT_PRIMARY = frozenset({9})  # INTERRUPT: sqlite3_interrupt, our statement timeout
_TOO_BIG_PRIMARY = frozenset({18})  # TOOBIG: a string or blob past SQLITE_MAX_LENGTH

SqliteErrorKind = Literal[
    "conflict", "not_found", "invalid", "busy", "unavailable", "timeout", "too_large"
]


def sqlite_error_kind(code: int | None) -> SqliteErrorKind | None:
    """What an (extended) SQLite result code means; None when it says nothing specific."""
    if code is None:
        return None
    if code in _CONFLICT:
        return "conflict"
    if code in _NOT_FOUND:
        return "not_found"
    if code in _INVALID:
        return "invalid"
    primary = code & 0xFF
    if primary in _BUSY_PRIMARY:
        return "busy"
    if primary in _UNAVAILABLE_PRIMARY:
        return "unavailable"
    if primary in _INTERRUPT_PRIMARY:
        return "timeout"
    if primary in _TOO_BIG_PRIMARY:
        return "too_large"
    return None


#: ``strftime`` layouts truncating a stored DATETIME (SQLAlchemy's SQLite text,
#: ``YYYY-MM-DD HH:MM:SS.ffffff``) to the start of its bucket, in the same layout.
BUCKET_LAYOUT: Mapping[str, str] = {
    "minute": "%Y-%m-%d %H:%M:00.000000",
    "hour": "%Y-%m-%d %H:00:00.000000",
    "day": "%Y-%m-%d 00:00:00.000000",
}

#: the FTS5 external-content table over ``messages.search_text`` (rowid =
#: messages.id), created by the migrations and kept in sync by triggers there.
FTS_TABLE = "messages_fts"


def is_memory_database(database: str | None, query: Mapping[str, str | Sequence[str]]) -> bool:
    """True for an in-memory SQLite database (each connection would see its own).

    Args:
        database: the URL's database part (``url.database``).
        query: the URL's query (``url.query``); SQLAlchemy parses
            ``sqlite:///file:x?mode=memory&uri=true`` into database ``file:x``
            and query ``{"mode": "memory", ...}``.
    """
    database = database or ""
    mode = query.get("mode", ())
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    return database in ("", ":memory:") or "memory" in modes or "mode=memory" in database


#: the SQLite URI parameters (https://www.sqlite.org/uri.html) both backends
#: hand to SQLite, given ``uri=true``; contextstore sets the rest (timeouts,
#: threads, isolation) itself
SQLITE_URI_PARAMETERS = frozenset({"mode", "cache", "immutable", "nolock", "vfs", "psow"})
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def sqlite_url_problem(database: str | None, query: Mapping[str, Any]) -> str | None:
    """Why a SQLite URL's query cannot be honoured the same way by both backends
    (None when it can): only SQLite's URI parameters, and only with ``uri=true``."""
    keys = sorted(query)
    if any(not isinstance(value, str) for value in query.values()):
        return "database_url: a SQLite URL option is given more than once"
    unknown = [key for key in keys if key != "uri" and key not in SQLITE_URI_PARAMETERS]
    if unknown:
        return (
            f"database_url: SQLite URL option(s) {', '.join(unknown)} are not supported; "
            f"the options SQLite itself reads ({', '.join(sorted(SQLITE_URI_PARAMETERS))}) "
            "are, with uri=true"
        )
    uri = str(query.get("uri", "false")).lower()
    if uri not in _TRUE | _FALSE:
        return f"database_url: uri must be true or false, got {query['uri']!r}"
    if uri in _FALSE and len(keys) > (1 if "uri" in query else 0):
        given = ", ".join(key for key in keys if key != "uri")
        return (
            f"database_url: SQLite reads {given} only from a URI filename: add uri=true "
            "(sqlite:///file:PATH?mode=ro&uri=true)"
        )
    if "?" in (database or "") or "#" in (database or ""):
        return "database_url: a SQLite file name cannot hold '?' or '#'"
    return None


def sqlite_uri(database: str, query: Mapping[str, Any]) -> str | None:
    """The ``file:`` URI both backends open for a SQLite URL with ``uri=true``
    (None without it): the path, then SQLite's parameters in the URL's order."""
    if str(query.get("uri", "false")).lower() not in _TRUE:
        return None
    target = database if database.startswith("file:") else f"file:{database}"
    options = "&".join(f"{key}={value}" for key, value in query.items() if key != "uri")
    return f"{target}?{options}" if options else target


# -- search ----------------------------------------------------------------
#
# One search on every dialect: contextstore, not the database, decides what
# the words of a text are. A message's words are written beside it, encoded
# (``messages.search_text``), and each dialect's full-text index runs over
# that column; a query goes through the same function. The encoding is chosen
# so that every engine's own tokenizer sees exactly our words and nothing
# else: each word becomes one term of ASCII letters and digits, at least 3
# and at most 32 characters long, starting with ``z`` (see :func:`search_term`).

#: how many distinct words of a message are indexed (the rest is not searchable):
#: bounds the index entry of a 100,000-character message on every dialect
#: (PostgreSQL refuses a ``tsvector`` beyond 1 MiB).
MAX_INDEXED_WORDS = 10_000
#: how many distinct words of a query are searched for.
MAX_QUERY_WORDS = 32
#: the longest term; longer ones are hashed. Below InnoDB's
#: ``innodb_ft_max_token_size`` (84), far below PostgreSQL's 2,047-byte lexemes.
MAX_TERM_LENGTH = 32

#: scripts written without spaces between words: each character is a word of its
#: own (Han ideographs with their extensions and compatibility forms, kana,
#: bopomofo, the iteration marks), so a word inside a sentence can be found.
_CJK = (
    "\u3005-\u3007\u3040-\u30ff\u3100-\u312f\u31a0-\u31bf\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
)
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_WORD = re.compile(r"[^\W_]+")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_WORD = re.compile(f"[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
#: letters with no decomposition that a reader still sees as a letter with a mark
_LETTER_FOLDS = {
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
_LETTER_FOLD = re.compile(f"[{''.join(_LETTER_FOLDS)}]")
#: kana voicing marks survive the mark removal: NFC puts them back on their kana
#: (\u304b\u3099 -> \u304c), so \u306f and \u3070 stay different words
_KEPT_MARKS = frozenset({0x3099, 0x309A})


@functools.cache
def _combining_marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Every character of Unicode category M (marks) but the kana voicing marks:
    those of the BMP, and those beyond (a separate class, so that the first is
    one of ``re``'s fast 16-bit character sets).

    Built on first use (about 40 ms) from the ``unicodedata`` of the running
    Python; marks are assigned in planes 0, 1 and 14 only.
    """
    ranges: list[tuple[int, int]] = []
    for plane in (range(0x20000), range(0xE0000, 0xE1000)):
        start: int | None = None
        for cp in (*plane, plane.stop):
            mark = cp in plane and cp not in _KEPT_MARKS and unicodedata.category(chr(cp))[0] == "M"
            if mark and start is None:
                start = cp
            elif not mark and start is not None:
                ranges.append((start, cp - 1))
                start = None

    def pattern(selected: list[tuple[int, int]]) -> re.Pattern[str]:
        return re.compile(f"[{''.join(f'{chr(a)}-{chr(b)}' for a, b in selected)}]+")

    # no range straddles U+FFFF: U+FFFF is not a mark
    return (
        pattern([(a, b) for a, b in ranges if b <= 0xFFFF]),
        pattern([(a, b) for a, b in ranges if a > 0xFFFF]),
    )


def search_tokens(text: str) -> list[str]:
    """The words of ``text`` as search sees them, in order, repeats kept.

    * case- and accent-folded: Unicode compatibility decomposition (NFKD),
      case folding, every combining mark removed, a few letters that have no
      decomposition folded by hand (dotless i, ``ø đ ð ł ħ ŧ æ œ``), then NFC; so
      ``İstanbul``, ``ISTANBUL`` and ``istanbul`` are one word, ``ÉCOLE`` is
      ``ecole``, ``Straße`` is ``strasse``, ``ﬁ`` is ``fi``;
    * split at every character that is not a letter or a digit (``_``, ``@``,
      ``.``, ``-``, apostrophes, spaces...): ``user@example.com`` is ``user``,
      ``example``, ``com``; ``3.14159`` is ``3`` and ``14159``; ``foo_bar`` is
      ``foo`` and ``bar``;
    * each Han ideograph, kana and bopomofo character is a word by itself
      (those scripts put no spaces between words); other scripts are split at
      non-letters only (a Thai phrase is one word);
    * no minimum length and no stop words.
    """
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    # NFKD first: a compatibility form may decompose to a capital (U+210C is H)
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    if _LETTER_FOLD.search(folded) is not None:
        folded = _LETTER_FOLD.sub(lambda match: _LETTER_FOLDS[match.group()], folded)
    marks, astral_marks = _combining_marks()
    folded = marks.sub("", folded)
    if _ASTRAL.search(folded) is not None:
        folded = astral_marks.sub("", folded)
    folded = unicodedata.normalize("NFC", folded)
    if _CJK_CHAR.search(folded) is None:
        return _WORD.findall(folded)
    return _CJK_WORD.findall(folded)


def search_term(token: str) -> str:
    """The index term of one word of :func:`search_tokens`.

    ``zw`` + the word when it is ASCII (letters and digits), ``zu`` + the hex of
    its UTF-8 otherwise, ``zh`` + a 120-bit BLAKE2b of it when that would be
    longer than :data:`MAX_TERM_LENGTH`. Every term is therefore one plain
    ASCII word of 3-32 characters: MariaDB's default 3-character minimum and
    its stop words (none starts with ``z``), PostgreSQL's parser and locale,
    and FTS5's tokenizer all see exactly it, and no collation of any dialect
    can make two different words equal.
    """
    term = f"zw{token}" if token.isascii() else f"zu{token.encode().hex()}"
    if len(term) <= MAX_TERM_LENGTH:
        return term
    return f"zh{hashlib.blake2b(token.encode(), digest_size=15).hexdigest()}"


def search_text(content: str) -> str:
    """``messages.search_text`` for a message's content: its terms, space-separated,
    repeats kept (ranking counts them), of its first :data:`MAX_INDEXED_WORDS`
    distinct words."""
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
    if not tokens:
        return ""
    joined = " zw".join(tokens)
    if joined.isascii() and max(map(len, tokens)) <= MAX_TERM_LENGTH - 2:
        return "zw" + joined  # the common case (accents folded too): every term is zw + word
    return " ".join(map(search_term, tokens))


def search_words(text: str, limit: int = MAX_QUERY_WORDS) -> list[str]:
    """The index terms a query searches for: its first ``limit`` distinct words
    (:func:`search_tokens`), each as :func:`search_term`.

    Terms are ASCII letters and digits only, so no operator, quote or wildcard
    of any engine's query syntax ever reaches the database; a message matches
    when it holds any of them.
    """
    return list(dict.fromkeys(map(search_term, dict.fromkeys(search_tokens(text)))))[:limit]


def fts5_query(text: str) -> str | None:
    """The FTS5 ``MATCH`` expression for a user's search text; None when it has no words.

    The terms (:func:`search_words`) are quoted as FTS5 strings and joined with
    ``OR``: a message matches when it contains any of them, and ``bm25`` ranks
    messages with more (and rarer) matching words first.
    """
    terms = search_words(text)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)
