"""contextstore: the async SQLAlchemy Core data layer of a shared-context service."""

from __future__ import annotations

from .connection import ConnectionManager as ConnectionManager
from .errors import ConfigurationError as ConfigurationError
from .errors import ConflictError as ConflictError
from .errors import ContextStoreError as ContextStoreError
from .errors import DatabaseUnavailableError as DatabaseUnavailableError
from .errors import NotFoundError as NotFoundError
from .errors import PoolExhaustedError as PoolExhaustedError
from .errors import QueryTimeoutError as QueryTimeoutError
from .errors import ValidationError as ValidationError
from .models import ActivityBucket as ActivityBucket
from .models import AuditEvent as AuditEvent
from .models import HealthReport as HealthReport
from .models import MemoryEntry as MemoryEntry
from .models import Message as Message
from .models import NewMessage as NewMessage
from .models import OffsetPage as OffsetPage
from .models import Page as Page
from .models import Participant as Participant
from .models import PoolStats as PoolStats
from .models import ReplicaHealth as ReplicaHealth
from .models import SearchHit as SearchHit
from .models import Session as Session
from .models import SessionActivity as SessionActivity
from .models import Viewer as Viewer
from .repositories.table import TableRepository as TableRepository
from .settings import Settings as Settings
from .store import Store as Store
from .store import Transaction as Transaction

__all__ = [
    "ActivityBucket",
    "AuditEvent",
    "ConfigurationError",
    "ConflictError",
    "ConnectionManager",
    "ContextStoreError",
    "DatabaseUnavailableError",
    "HealthReport",
    "MemoryEntry",
    "Message",
    "NewMessage",
    "NotFoundError",
    "OffsetPage",
    "Page",
    "Participant",
    "PoolExhaustedError",
    "PoolStats",
    "QueryTimeoutError",
    "ReplicaHealth",
    "SearchHit",
    "Session",
    "SessionActivity",
    "Settings",
    "Store",
    "TableRepository",
    "Transaction",
    "ValidationError",
    "Viewer",
]
