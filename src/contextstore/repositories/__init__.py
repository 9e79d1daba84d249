"""Repository protocols (both backends implement them) and the Core implementations."""

from __future__ import annotations

from .protocols import (
    AuditRepository as AuditRepository,
)
from .protocols import (
    MemoryRepository as MemoryRepository,
)
from .protocols import (
    MessageRepository as MessageRepository,
)
from .protocols import (
    ParticipantRepository as ParticipantRepository,
)
from .protocols import (
    SessionRepository as SessionRepository,
)

__all__ = [
    "AuditRepository",
    "MemoryRepository",
    "MessageRepository",
    "ParticipantRepository",
    "SessionRepository",
]
