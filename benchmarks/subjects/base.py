"""What every subject implements: one method per timed operation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..corpus import MessageData


@dataclass
class PagePosition:
    """Where the far page starts: a cursor for the Store, a (time, id) for raw SQL."""

    cursor: str | None = None
    after: tuple[Any, int] | None = None


class Subject(ABC):
    """One implementation under test; every method is one timed operation."""

    name: str

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Connect (untimed)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release every connection (untimed)."""

    @abstractmethod
    async def add(self, session_id: str, item: MessageData) -> int: ...

    @abstractmethod
    async def add_many(self, session_id: str, items: Sequence[MessageData]) -> int: ...

    @abstractmethod
    async def get(self, message_id: int) -> int | None: ...

    @abstractmethod
    async def list_newest(self, session_id: str) -> list[int]: ...

    @abstractmethod
    async def page(self, session_id: str, position: PagePosition | None) -> list[int]: ...

    @abstractmethod
    async def search(self, query: str) -> list[int]: ...

    @abstractmethod
    async def memory_set(self, key: str, value: Any) -> None: ...

    @abstractmethod
    async def memory_get(self, key: str) -> Any: ...

    @abstractmethod
    async def pooled_get(self, message_id: int) -> int | None:
        """``get`` on the pool of ``POOL_SIZE`` connections (the concurrent case)."""

    @abstractmethod
    async def unit_of_work(
        self, session_id: str, item: MessageData, message_id: int, key: str, value: Any
    ) -> int:
        """Five calls in one transaction, committed once; returns the new message's id.

        ``add`` of ``item`` to ``session_id``, ``get`` of that new message,
        ``memory_set`` of ``key`` to ``value``, ``memory_get`` of ``key`` and
        ``get`` of ``message_id`` (a read-session id), each as the subject's
        single-call method does it.
        """
