"""The public Store API as a subject: ``core`` and ``legacy`` are its two backends.

Both subjects are this one class with a different ``backend``, so core and
legacy make exactly the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contextstore import NewMessage, Settings, Store, Viewer

from ..corpus import VIEWER_ID, VIEWER_TYPE, MessageData
from ..plan import MEMORY_AGENT, PAGE_SIZE, POOL_SIZE, SEARCH_LIMIT
from .base import PagePosition, Subject


class StoreSubject(Subject):
    """The public Store API, on the core or the legacy backend."""

    def __init__(self, name: str, url: str, *, backend: str) -> None:
        self.name = name
        self._url = url
        self._backend = backend
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._store

    async def open(self) -> None:
        options: dict[str, Any] = {"database_url": self._url, "backend": self._backend}
        if self._backend == "core":
            options.update(pool_size=POOL_SIZE, max_overflow=0)
        self._viewer = Viewer(agent_id=VIEWER_ID, agent_type=VIEWER_TYPE)
        store = Store(Settings(**options))
        await store.connect()
        self._store = store

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()

    @staticmethod
    def _fields(item: MessageData) -> dict[str, Any]:
        """The keyword arguments of ``messages.add`` for ``item``."""
        return {
            "sender": item.sender,
            "content": item.content,
            "sender_type": item.sender_type,
            "visibility": item.visibility,
            "message_type": item.message_type,
            "metadata": item.metadata,
        }

    async def add(self, session_id: str, item: MessageData) -> int:
        message = await self.store.messages.add(session_id, **self._fields(item))
        return message.id

    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int:
        batch = [
            NewMessage(
                sender=item.sender,
                content=item.content,
                sender_type=item.sender_type,
                visibility=item.visibility,
                message_type=item.message_type,
                metadata=item.metadata,
            )
            for item in items
        ]
        return len(await self.store.messages.add_many(session_id, batch))

    async def get(self, message_id: int) -> int | None:
        message = await self.store.messages.get(message_id, viewer=self._viewer)
        return None if message is None else message.id

    async def list_newest(self, session_id: str) -> list[int]:
        page = await self.store.messages.list(
            session_id, viewer=self._viewer, limit=PAGE_SIZE, order="desc"
        )
        return [message.id for message in page.items]

    async def page(self, session_id: str, position: PagePosition | None) -> list[int]:
        cursor = None if position is None else position.cursor
        page = await self.store.messages.list(
            session_id, viewer=self._viewer, limit=PAGE_SIZE, order="asc", cursor=cursor
        )
        return [message.id for message in page.items]

    async def search(self, query: str) -> list[int]:
        hits = await self.store.messages.search(query, viewer=self._viewer, limit=SEARCH_LIMIT)
        return [hit.message.id for hit in hits]

    async def memory_set(self, key: str, value: Any) -> None:
        await self.store.memory.set(MEMORY_AGENT, key, value)

    async def memory_get(self, key: str) -> Any:
        entry = await self.store.memory.get(MEMORY_AGENT, key)
        return None if entry is None else entry.value

    async def pooled_get(self, message_id: int) -> int | None:
        return await self.get(message_id)

    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        # the single-call methods' calls, on the transaction's repositories
        async with self.store.transaction() as tx:
            message = await tx.messages.add(session_id, **self._fields(item))
            await tx.messages.get(message.id, viewer=self._viewer)
            await tx.memory.set(MEMORY_AGENT, key, value)
            await tx.memory.get(MEMORY_AGENT, key)
            await tx.messages.get(message_id, viewer=self._viewer)
        return message.id

    async def walk_to(self, session_id: str, page_number: int) -> str:
        """The cursor of page ``page_number``, reached by following next_cursor.

        The walk runs on a Store of its own, closed afterwards: PostgreSQL plans
        a prepared statement from the parameters of its first executions on a
        connection, so 999 walk positions on the timed pool would leave its
        page statement planned for each call, while raw's connection (which
        finds the position with another statement) first runs it at the far
        position. Both subjects' timed connections thus start with the same
        history: none.
        """
        walker = Store(Settings(database_url=self._url, backend=self._backend))
        await walker.connect()
        try:
            cursor: str | None = None
            for number in range(1, page_number):
                page = await walker.messages.list(
                    session_id, viewer=self._viewer, limit=PAGE_SIZE, order="asc", cursor=cursor
                )
                if page.next_cursor is None:
                    raise RuntimeError(f"the read session has only {number} pages")
                cursor = page.next_cursor
        finally:
            await walker.close()
        if cursor is None:
            raise RuntimeError("page_number must be at least 2")
        return cursor
