"""SQLAlchemy's asyncpg adapter (SQLAlchemy 2.0): the isolation level a transaction uses.

Quarantined here because it reads the adapter's private
``AsyncAdapt_asyncpg_connection._isolation_setting``: the adapter switches to
autocommit through its public ``isolation_level`` attribute, but keeps the
level to switch back to only in that private one. ``tests/dialects/test_postgresql.py``
and the round-trip tests show reads run without BEGIN and writes inside one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["configured_isolation"]


def configured_isolation(adapter: Any) -> Any:
    """The isolation level the engine configured for ``adapter`` (its non-autocommit level)."""
    return adapter._isolation_setting
