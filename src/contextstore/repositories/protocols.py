"""One Protocol per repository: the contract both backends (core and legacy) implement.

Method names say what happens on absence: ``get`` returns None, ``update``
raises ``NotFoundError``, ``delete``/``leave`` return False. The rules the
data keeps (visibility, memory scope and expiry, input limits, ordering and
cursors, search) are described in the documentation, page "Repositories"
(``docs/guide/repositories.md``); each method's docstring below is its
reference.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from ..models import (
    ActivityBucket,
    AuditEvent,
    Bucket,
    MemoryEntry,
    Message,
    NewMessage,
    Order,
    Page,
    Participant,
    SearchHit,
    Session,
    SessionActivity,
    Viewer,
    Visibility,
)

__all__ = [
    "AuditRepository",
    "MemoryRepository",
    "MessageRepository",
    "ParticipantRepository",
    "SessionRepository",
]


@runtime_checkable
class SessionRepository(Protocol):
    """Sessions, the shared workspaces agents collaborate in (``store.sessions``)."""

    async def create(
        self,
        *,
        purpose: str,
        created_by: str,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create an active session.

        Args:
            purpose: what the session is for (1-255 characters).
            created_by: the agent id of its creator (1-255 characters).
            metadata: a JSON object of at most 64 KiB serialised; None means ``{}``.
            session_id: the id to give it (1-255 characters); None generates a
                random one (32 hex digits).

        Returns:
            The new session: ``is_active`` True, ``created_at == updated_at``.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            ConflictError: ``session_id`` is already taken.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the session may exist.
        """
        ...

    async def get(self, session_id: str) -> Session | None:
        """Read one session.

        Args:
            session_id: the session's id.

        Returns:
            The session, or None when there is none with that id.

        Raises:
            ValidationError: ``session_id`` is not a valid id.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def list(
        self,
        *,
        created_by: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Session]:
        """List sessions, newest first (``created_at``, then id, descending), a page at a time.

        Args:
            created_by: only the sessions this agent created.
            active: only active (True) or only inactive (False) sessions; None
                for both.
            limit: the most sessions on one page (1-1,000).
            cursor: the ``next_cursor`` of the previous page of the same
                listing (same filters); None for the first page.

        Returns:
            One page; its ``next_cursor`` is None on the last page.

        Raises:
            ValidationError: an argument breaks an input limit, or ``cursor``
                is not a cursor of this listing.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def update(
        self,
        session_id: str,
        *,
        purpose: str | None = None,
        metadata: dict[str, Any] | None = None,
        is_active: bool | None = None,
    ) -> Session:
        """Change the given fields of a session; a field left None keeps its value.

        ``updated_at`` becomes now when anything changes; with no field given
        the session is returned as it is. ``metadata`` replaces the whole
        object (it is not merged).

        Args:
            session_id: the session to change.
            purpose: the new purpose.
            metadata: the new metadata object (at most 64 KiB serialised).
            is_active: True to reopen the session, False to close it.

        Returns:
            The session as stored after the change.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            NotFoundError: there is no session ``session_id``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the change may have landed.
        """
        ...

    async def delete(self, session_id: str) -> bool:
        """Delete a session with its messages, memory entries and participants.

        One atomic operation. Audit events of the session stay, with their
        ``session_id`` set to None.

        Args:
            session_id: the session to delete.

        Returns:
            True when a session was deleted, False when there was none.

        Raises:
            ValidationError: ``session_id`` is not a valid id.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the session may be gone.
        """
        ...

    async def activity(self, session_id: str, *, viewer: Viewer) -> SessionActivity:
        """Summarise the messages of a session that ``viewer`` may see.

        Only the messages the visibility rules let ``viewer`` read count (an
        admin's count is every message), so the summary tells nothing of the
        others: not how many, not who sent them, not when.

        Args:
            session_id: the session to summarise.
            viewer: who is asking.

        Returns:
            ``message_count``, ``unique_senders`` and ``last_message_at`` of
            the visible messages (None when there is none).

        Raises:
            ValidationError: ``session_id`` is not a valid id, or ``viewer``
                is not a valid Viewer.
            NotFoundError: there is no session ``session_id``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...


@runtime_checkable
class MessageRepository(Protocol):
    """Messages posted to sessions, read through visibility rules (``store.messages``)."""

    async def add(
        self,
        session_id: str,
        *,
        sender: str,
        content: str,
        sender_type: str = "generic",
        visibility: Visibility = "public",
        message_type: str = "agent_response",
        metadata: dict[str, Any] | None = None,
        parent_message_id: int | None = None,
    ) -> Message:
        """Post a message to a session; its ``timestamp`` is now.

        Safe to retry inside: a retry after a lost COMMIT finds the message
        instead of posting it twice.

        Args:
            session_id: the session to post to.
            sender: the agent id of the sender (1-255 characters).
            content: the text (1-100,000 characters).
            sender_type: the sender's agent type, which ``agent_only``
                visibility compares with the viewer's.
            visibility: ``public``, ``private``, ``agent_only`` or ``admin_only``.
            message_type: a free label (1-255 characters).
            metadata: a JSON object of at most 64 KiB serialised; None means ``{}``.
            parent_message_id: the message this one answers, in the same session.

        Returns:
            The message as stored, with its new id.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            NotFoundError: there is no session ``session_id``, or
                ``parent_message_id`` is not a message of that session (a
                missing parent and one in another session fail alike).
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def add_many(
        self, session_id: str, messages: Sequence[NewMessage]
    ) -> builtins.list[Message]:
        """Post several messages to one session, all or nothing.

        Every item is checked before any SQL runs; the rows are written in one
        transaction and share one timestamp. Safe to retry inside, like ``add``.

        Args:
            session_id: the session to post to.
            messages: the new messages (the fields of ``add``). An empty
                sequence returns ``[]`` without touching the database.

        Returns:
            The messages as stored, in input order, with ascending ids.

        Raises:
            ValidationError: ``messages`` is not a sequence of ``NewMessage``,
                or any item breaks an input limit; nothing was written.
            NotFoundError: there is no session ``session_id``, or a
                ``parent_message_id`` is not a message of that session;
                nothing was written.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def get(self, message_id: int, *, viewer: Viewer) -> Message | None:
        """Read one message, if ``viewer`` may see it.

        Args:
            message_id: the message's id (a positive 64-bit integer).
            viewer: who is reading.

        Returns:
            The message, or None when it does not exist or ``viewer`` may not
            see it (the two cases cannot be told apart).

        Raises:
            ValidationError: ``message_id`` is not a valid id, or ``viewer``
                is not a valid ``Viewer``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def list(
        self,
        session_id: str,
        *,
        viewer: Viewer,
        limit: int = 50,
        cursor: str | None = None,
        order: Order = "asc",
        sender: str | None = None,
    ) -> Page[Message]:
        """List the messages of a session that ``viewer`` may see, a page at a time.

        Pages are keyset pages in ``(timestamp, id)`` order: messages with
        equal timestamps are neither skipped nor repeated, and a message added
        while paging in ascending order shows up once, on a later page.

        Args:
            session_id: the session to list; a missing session gives one
                empty last page.
            viewer: who is reading.
            limit: the most messages on one page (1-1,000).
            cursor: the ``next_cursor`` of the previous page of the same
                listing (same session, order and sender); None for the first page.
            order: ``asc`` (oldest first) or ``desc`` (newest first).
            sender: only the messages of this sender.

        Returns:
            One page; its ``next_cursor`` is None on the last page.

        Raises:
            ValidationError: an argument breaks an input limit, or ``cursor``
                is not a cursor of this listing.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def count(self, session_id: str, *, viewer: Viewer) -> int:
        """Count the messages of a session that ``viewer`` may see.

        Args:
            session_id: the session to count; a missing session counts 0.
            viewer: who is reading.

        Returns:
            The number of visible messages.

        Raises:
            ValidationError: ``session_id`` or ``viewer`` is not valid.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def search(
        self,
        query: str,
        *,
        viewer: Viewer,
        session_id: str | None = None,
        limit: int = 20,
    ) -> builtins.list[SearchHit]:
        """Full-text search over the content of the messages ``viewer`` may see.

        Content and query are split into words by one normalisation, the
        same on every backend and database: case- and accent-folded
        (``ecole`` finds ``ÉCOLE``, ``istanbul`` finds ``İstanbul``), split
        at every character that is not a letter or digit (``user@example.com``
        holds ``user``, ``example``, ``com``; ``foo_bar`` holds ``foo`` and
        ``bar``), each CJK ideograph and kana a word of its own, no minimum
        length and no stop words. The first 32 distinct words of the query are
        used; quotes, operators and wildcards are ordinary text. A message
        matches when it holds any of the words, as a whole word; messages with
        more (and rarer) matches rank first. See the documentation, page
        "Repositories", section "Search".

        Args:
            query: the search text (1-1,000 characters, not blank).
            viewer: who is reading.
            session_id: search this session only; None searches every session.
            limit: the most hits returned (1-1,000).

        Returns:
            Hits best first (``score`` a float, higher is better; ties newest
            id first); ``[]`` when nothing matches or the query has no words.

        Raises:
            ValidationError: an argument breaks an input limit.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def feed(
        self, *, viewer: Viewer, limit: int = 50, cursor: str | None = None
    ) -> Page[Message]:
        """The messages ``viewer`` may see in every session it has joined, newest first.

        Sessions count when ``viewer.agent_id`` is a participant; admins see
        every visibility, but only in the sessions they joined. Keyset pages
        on ``(timestamp, id)``, descending.

        Args:
            viewer: who is reading.
            limit: the most messages on one page (1-1,000).
            cursor: the ``next_cursor`` of the previous page of this viewer's
                feed; None for the first page.

        Returns:
            One page; its ``next_cursor`` is None on the last page.

        Raises:
            ValidationError: an argument breaks an input limit, or ``cursor``
                is not a cursor of this listing.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...


@runtime_checkable
class MemoryRepository(Protocol):
    """Private key/value memory of each agent, global or per session (``store.memory``)."""

    async def set(
        self,
        agent_id: str,
        key: str,
        value: Any,
        *,
        session_id: str | None = None,
        ttl: float | timedelta | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = True,
    ) -> MemoryEntry:
        """Store ``value`` under ``key`` in one scope of an agent's memory.

        A scope is ``(agent_id, session_id)``; ``session_id`` None is the
        agent's global memory. A scope holds one entry per key. Overwriting
        keeps ``created_at`` and sets ``updated_at`` to now; an entry past its
        expiry counts as absent and is replaced. Safe to retry inside.

        Args:
            agent_id: the owner (1-255 characters).
            key: the key (1-255 characters, exact: ``"k"`` and ``"k "`` differ).
            value: any JSON value (None, False, 0, ``""`` and ``[]`` included)
                of at most 1 MiB serialised.
            session_id: the session of the scope; None for global memory.
            ttl: lifetime in seconds, or a ``timedelta``, from 1 second to 1
                year: ``expires_at`` is now + ``ttl``. None never expires
                (and clears the expiry of an entry it overwrites).
            metadata: a JSON object of at most 64 KiB serialised; None means ``{}``.
            overwrite: False refuses to replace a live entry.

        Returns:
            The entry as stored.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            ConflictError: ``overwrite`` is False and the key holds a live entry.
            NotFoundError: there is no session ``session_id``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def get(
        self, agent_id: str, key: str, *, session_id: str | None = None
    ) -> MemoryEntry | None:
        """Read one live entry of an agent's memory.

        Args:
            agent_id: the owner; nobody else's id reads the entry.
            key: the key.
            session_id: the session of the scope; None for global memory.

        Returns:
            The entry, or None when the key is absent or has expired (even
            before ``purge_expired`` removed it).

        Raises:
            ValidationError: an argument is not a valid id or key.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def list(
        self,
        agent_id: str,
        *,
        session_id: str | None = None,
        prefix: str | None = None,
        limit: int = 100,
    ) -> builtins.list[MemoryEntry]:
        """List the live entries of exactly one scope, ordered by key.

        Args:
            agent_id: the owner.
            session_id: the session of the scope; None lists global memory
                only (not the agent's session scopes).
            prefix: only keys starting with this text, compared literally
                and case-sensitively (``%``, ``_`` and backslash are plain
                characters).
            limit: the most entries returned (1-1,000).

        Returns:
            The entries in key order (code-point order), at most ``limit``.

        Raises:
            ValidationError: an argument breaks an input limit.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def delete(self, agent_id: str, key: str, *, session_id: str | None = None) -> bool:
        """Delete one entry of an agent's memory.

        Args:
            agent_id: the owner.
            key: the key.
            session_id: the session of the scope; None for global memory.

        Returns:
            True when a live entry was deleted; False when the key was absent
            or had already expired.

        Raises:
            ValidationError: an argument is not a valid id or key.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the entry may be gone.
        """
        ...

    async def purge_expired(self) -> int:
        """Delete every expired entry, of every agent and scope.

        Expired entries are invisible to reads anyway; this reclaims their space.

        Returns:
            The number of entries removed.

        Raises:
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether entries may be gone.
        """
        ...


@runtime_checkable
class AuditRepository(Protocol):
    """The append-only audit log of sensitive actions (``store.audit``)."""

    async def record(
        self,
        event_type: str,
        *,
        agent_id: str,
        session_id: str | None = None,
        resource: str | None = None,
        action: str | None = None,
        result: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append an event to the audit log; its ``timestamp`` is now.

        Safe to retry inside: a retry after a lost COMMIT finds the event
        instead of recording it twice.

        Args:
            event_type: what happened (1-255 characters).
            agent_id: the agent that did it (1-255 characters).
            session_id: the session it concerns, if any.
            resource: what it was done to (1-255 characters), if given.
            action: the action taken (1-255 characters), if given.
            result: the outcome (1-255 characters), if given.
            metadata: a JSON object of at most 64 KiB serialised; None means ``{}``.

        Returns:
            The event as stored, with its new id.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            NotFoundError: there is no session ``session_id``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def list(
        self,
        *,
        agent_id: str | None = None,
        session_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """List audit events, newest first (``timestamp``, then id, descending), a page at a time.

        Args:
            agent_id: only the events of this agent.
            session_id: only the events of this session.
            event_type: only events of this type.
            since: only events at or after this moment (inclusive; an aware
                datetime, any time zone).
            until: only events before this moment (exclusive; aware).
            limit: the most events on one page (1-1,000).
            cursor: the ``next_cursor`` of the previous page of the same
                listing (same filters); None for the first page.

        Returns:
            One page; its ``next_cursor`` is None on the last page.

        Raises:
            ValidationError: an argument breaks an input limit (a naive
                ``since`` or ``until`` included), or ``cursor`` is not a
                cursor of this listing.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def activity(
        self,
        *,
        bucket: Bucket = "hour",
        since: datetime | None = None,
        until: datetime | None = None,
        agent_id: str | None = None,
    ) -> builtins.list[ActivityBucket]:
        """Count audit events per time bucket and event type.

        Args:
            bucket: the bucket width: ``minute``, ``hour`` or ``day`` (in UTC).
            since: only events at or after this moment (inclusive; aware).
            until: only events before this moment (exclusive; aware).
            agent_id: only the events of this agent.

        Returns:
            One ``ActivityBucket(start, event_type, count)`` per bucket and
            type that has events, ordered by ``start`` (aware UTC, truncated
            to the bucket), then ``event_type``.

        Raises:
            ValidationError: an argument breaks an input limit (an unknown
                ``bucket``, a naive ``since`` or ``until``).
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...


@runtime_checkable
class ParticipantRepository(Protocol):
    """Who takes part in which session (``store.participants``)."""

    async def join(
        self,
        session_id: str,
        agent_id: str,
        *,
        agent_type: str = "generic",
        role: str = "member",
    ) -> Participant:
        """Make an agent a participant of a session.

        Idempotent: joining again returns the existing membership unchanged
        (its ``agent_type``, ``role`` and ``joined_at`` are kept), no error.

        Args:
            session_id: the session to join.
            agent_id: the agent joining (1-255 characters).
            agent_type: the agent's type (1-255 characters).
            role: its role in the session (1-255 characters).

        Returns:
            The membership as stored.

        Raises:
            ValidationError: an argument breaks an input limit; nothing was written.
            NotFoundError: there is no session ``session_id``.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def leave(self, session_id: str, agent_id: str) -> bool:
        """End an agent's membership of a session.

        Args:
            session_id: the session.
            agent_id: the agent leaving.

        Returns:
            True when a membership was removed, False when there was none.

        Raises:
            ValidationError: an argument is not a valid id.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached;
                ``may_have_committed`` tells whether the membership may be gone.
        """
        ...

    async def list(self, session_id: str) -> builtins.list[Participant]:
        """List the participants of a session in join order (``joined_at``, then agent id).

        Args:
            session_id: the session; a missing session has no participants.

        Returns:
            Every participant (not paginated).

        Raises:
            ValidationError: ``session_id`` is not a valid id.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...

    async def sessions_for(
        self, agent_id: str, *, active: bool | None = None
    ) -> builtins.list[Session]:
        """List the sessions an agent takes part in, newest first (``created_at``, then id).

        Args:
            agent_id: the participant.
            active: only active (True) or only inactive (False) sessions; None
                for both.

        Returns:
            Every such session (not paginated).

        Raises:
            ValidationError: an argument breaks an input limit.
            QueryTimeoutError: the statement ran past ``statement_timeout``.
            DatabaseUnavailableError: the database could not be reached.
        """
        ...
