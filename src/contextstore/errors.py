"""The one error tree of contextstore.

Every failure that crosses the public API is one of these; driver and
SQLAlchemy exceptions are translated in ``contextstore._translate`` and chained
as ``__cause__``::

    ContextStoreError
    ├── ValidationError (also ValueError)   bad input; nothing was written
    ├── NotFoundError (also LookupError)    update/add against a missing session or parent
    ├── ConflictError                       unique key taken, overwrite=False
    ├── ConfigurationError                  settings that cannot work
    ├── QueryTimeoutError                   statement_timeout passed
    └── DatabaseUnavailableError            cannot reach the database after retries
        └── PoolExhaustedError              no connection within pool_timeout

Messages never contain a password: URLs are rendered through
``sqlalchemy.engine.URL``, which masks it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

__all__ = [
    "ConfigurationError",
    "ConflictError",
    "ContextStoreError",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PoolExhaustedError",
    "QueryTimeoutError",
    "ValidationError",
]


class ContextStoreError(Exception):
    """Base of every error contextstore raises."""


class ValidationError(ContextStoreError, ValueError):
    """Input broke a documented limit (checked before any SQL), or the database
    refused a value as invalid or a request as too large; nothing was written."""


class NotFoundError(ContextStoreError, LookupError):
    """The session, parent message or row an operation needs does not exist."""


class ConflictError(ContextStoreError):
    """A unique key is already taken (for example ``overwrite=False`` on a live key)."""


class ConfigurationError(ContextStoreError):
    """The settings cannot work (unknown scheme, sync-only driver, bad pool size...)."""


class QueryTimeoutError(ContextStoreError):
    """A statement ran longer than ``statement_timeout``; its transaction was rolled back."""


class DatabaseUnavailableError(ContextStoreError):
    """The database could not be reached, or the connection was lost.

    Attributes:
        may_have_committed: ``True`` when the connection was lost while a write
            or its COMMIT was in flight, so the outcome is unknown; ``False``
            when nothing can have been written.
    """

    def __init__(self, message: str, *, may_have_committed: bool = False) -> None:
        super().__init__(message)
        self.may_have_committed = may_have_committed


class PoolExhaustedError(DatabaseUnavailableError):
    """No pooled connection became free within ``pool_timeout``."""


# -- the database's refusals, reworded by the caller that knows its terms --------

#: what a refusal by the database says, by kind: the same on every dialect and
#: backend, never the database's own text (tables, constraints, values), which
#: stays in the error's ``__cause__``
REFUSALS: Final[dict[str, str]] = {
    "conflict": "a row with the same unique key already exists",
    "not_found": "a row this write refers to does not exist",
    "invalid": "a value was refused by the database",
    "auth": (
        "the database refused the login: wrong user name or password, or no access to this database"
    ),
    "busy": "transaction rolled back by the database (lock conflict)",
    "too_large": (
        "the request is larger than the database accepts at once; nothing was written "
        "(send fewer or smaller items per call)"
    ),
    "unavailable": "cannot reach the database",
    "error": "the database reported an error (the original is chained as __cause__)",
}


# lower case: it reads as the function it replaced, ``with _in_terms(...)``
class _in_terms:
    """The database's refusals raised inside, as errors in the caller's terms:
    ``missing`` for a foreign key's, ``taken`` for a unique key's.

    The translation of a driver error cannot know which row a key refers to,
    so it raises the generic, dialect-independent refusal (``REFUSALS``); the
    repository that made the call knows, and rewords it here. Its own errors
    (a parent it checked, say) already speak its terms and pass unchanged.
    The original driver error stays the ``__cause__``.

    A class rather than a ``contextmanager`` generator: writes such as
    ``messages.add`` enter one on every call, and the generator's machinery
    costs several times the class's two attributes.
    """

    __slots__ = ("_missing", "_taken")

    def __init__(self, *, missing: str | None = None, taken: str | None = None) -> None:
        self._missing = missing
        self._taken = taken

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if error is None:
            return
        if isinstance(error, NotFoundError):
            missing = self._missing_text()
            if missing is not None and str(error) == REFUSALS["not_found"]:
                raise NotFoundError(missing) from error.__cause__
        elif isinstance(error, ConflictError):
            taken = self._taken_text()
            if taken is not None and str(error) == REFUSALS["conflict"]:
                raise ConflictError(taken) from error.__cause__
        # anything else passes unchanged

    def _missing_text(self) -> str | None:
        return self._missing

    def _taken_text(self) -> str | None:
        return self._taken


def no_session(session_id: str) -> str:
    """The message of a call about a session that does not exist."""
    return f"session {session_id!r} does not exist"


def key_taken(agent_id: str, key: str) -> str:
    """The message of ``memory.set(overwrite=False)`` on a live key."""
    return f"memory key {key!r} of agent {agent_id!r} already exists (overwrite=False)"


# lower case, as _in_terms
class _session_terms(_in_terms):
    """A write into the session ``session_id``: a foreign key's refusal says the
    session does not exist, written only when that happens (``messages.add``
    enters this on every call)."""

    __slots__ = ("_session_id",)

    def __init__(self, session_id: str) -> None:
        self._session_id = session_id

    def _missing_text(self) -> str | None:
        return no_session(self._session_id)

    def _taken_text(self) -> str | None:
        return None


# lower case, as _in_terms: it reads as the function it was
class _memory_terms(_in_terms):
    """``memory.set``'s refusals by the database in its caller's terms (both
    backends); the messages are written only when a refusal needs one (every
    ``set`` enters this)."""

    __slots__ = ("_agent_id", "_key", "_session_id")

    def __init__(self, agent_id: str, key: str, session_id: str | None) -> None:
        self._agent_id = agent_id
        self._key = key
        self._session_id = session_id

    def _missing_text(self) -> str | None:
        session_id = self._session_id
        return None if session_id is None else no_session(session_id)

    def _taken_text(self) -> str | None:
        return key_taken(self._agent_id, self._key)
