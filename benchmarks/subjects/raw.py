"""What the hand-written SQL subjects share: the column lists, the statements, the base class.

Each raw subject is one driver (aiosqlite, asyncpg, aiomysql); the statements
differ only in their placeholder style, so they are built here once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..corpus import MessageData
from ..plan import PAGE_SIZE
from .base import PagePosition, Subject

MESSAGE_COLUMNS = (
    "m.id, m.session_id, m.sender, m.sender_type, m.content, m.visibility, "
    "m.message_type, m.metadata, m.parent_message_id, m.timestamp"
)
MEMORY_COLUMNS = "agent_id, session_id, {key}, value, metadata, created_at, updated_at, expires_at"
#: ``search_text``: the words search finds a message by, which every writer of
#: this schema stores beside the content (contextstore's normalisation)
INSERT_COLUMNS = (
    "session_id, sender, sender_type, content, visibility, message_type, metadata, {ts}, "
    "search_text"
)
_MESSAGE_FIELDS = tuple(name.removeprefix("m.") for name in MESSAGE_COLUMNS.split(", "))
_MEMORY_FIELDS = tuple(MEMORY_COLUMNS.format(key="key").split(", "))


class RawSubject(Subject, ABC):
    """Shared parts of the hand-written SQL subjects.

    Rows are decoded into what a caller can use - dicts with parsed JSON and
    aware UTC datetimes, the information core's records carry - but no
    validated model is built.
    """

    name = "raw"
    #: the server version string, read on open.
    server_version: str = ""

    @staticmethod
    def _time(value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime (the driver's own value here)."""
        return value  # type: ignore[no-any-return]

    def _message(self, row: Sequence[Any]) -> dict[str, Any]:
        message = dict(zip(_MESSAGE_FIELDS, row, strict=False))
        message["metadata"] = json.loads(message["metadata"])
        message["timestamp"] = self._time(message["timestamp"])
        return message

    def _entry(self, row: Sequence[Any]) -> dict[str, Any]:
        entry = dict(zip(_MEMORY_FIELDS, row, strict=True))
        entry["value"] = json.loads(entry["value"])
        entry["metadata"] = json.loads(entry["metadata"])
        for name in ("created_at", "updated_at", "expires_at"):
            if entry[name] is not None:
                entry[name] = self._time(entry[name])
        return entry

    @abstractmethod
    async def seed(self, session_id: str, items: Sequence[MessageData], start: datetime) -> None:
        """Bulk-load the read session: one message every 10 ms from ``start`` (untimed)."""

    @abstractmethod
    async def far_position(self, session_id: str, page_number: int) -> PagePosition:
        """The (time, id) of the last visible row before page ``page_number``."""

    @abstractmethod
    async def id_range(self, session_id: str) -> tuple[int, int]:
        """Smallest and largest message id of a session."""

    @abstractmethod
    async def analyze(self) -> None:
        """Gather planner statistics after seeding, as a production database has them."""

    async def settle(self) -> None:
        """Before each timed batch of a write (untimed): leave the database as no
        subject's earlier writes would charge the next one for. Nothing by default."""


def visibility_predicate(viewer: str, viewer_type: str) -> str:
    """The visibility predicate over ``m`` for a non-admin viewer (placeholders given)."""
    return (
        f"(m.visibility = 'public' OR m.sender = {viewer} "
        f"OR (m.visibility = 'agent_only' AND m.sender_type = {viewer_type}))"
    )


def message_sql(ph: Callable[[int], str], *, ts: str = "m.timestamp") -> dict[str, str]:
    """The message statements of a raw subject, in its placeholder style."""
    visible = visibility_predicate(ph(2), ph(3))
    return {
        "get": f"SELECT {MESSAGE_COLUMNS} FROM messages AS m WHERE m.id = {ph(1)} AND {visible}",
        "newest": (
            f"SELECT {MESSAGE_COLUMNS} FROM messages AS m "
            f"WHERE m.session_id = {ph(1)} AND {visible} "
            f"ORDER BY {ts} DESC, m.id DESC LIMIT {PAGE_SIZE + 1}"
        ),
        "first_page": (
            f"SELECT {MESSAGE_COLUMNS} FROM messages AS m "
            f"WHERE m.session_id = {ph(1)} AND {visible} "
            f"ORDER BY {ts}, m.id LIMIT {PAGE_SIZE + 1}"
        ),
        "next_page": (
            f"SELECT {MESSAGE_COLUMNS} FROM messages AS m "
            f"WHERE m.session_id = {ph(1)} AND {visible} "
            # sargable keyset predicate: the range on the time column is an index bound
            f"AND {ts} >= {ph(4)} AND ({ts} > {ph(5)} OR m.id > {ph(6)}) "
            f"ORDER BY {ts}, m.id LIMIT {PAGE_SIZE + 1}"
        ),
        "position": (
            f"SELECT {ts}, m.id FROM messages AS m "
            f"WHERE m.session_id = {ph(1)} AND {visible} "
            f"ORDER BY {ts}, m.id LIMIT 1 OFFSET {ph(4)}"
        ),
        "range": f"SELECT min(m.id), max(m.id) FROM messages AS m WHERE m.session_id = {ph(1)}",
    }
