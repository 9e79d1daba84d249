"""ConnectionManager.run: an unknown outcome is never forgotten by a later attempt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contextstore import ConnectionManager, DatabaseUnavailableError, Settings


async def test_unknown_outcome_survives_later_failures(tmp_path: Path) -> None:
    db = ConnectionManager(Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}"))
    attempts = 0

    async def work(conn: Any) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            # the connection dies while an autocommit write is in flight
            raise ConnectionResetError(104, "reset while the INSERT was in flight")
        # every retry then fails before anything is sent
        raise ConnectionRefusedError(111, "refused")

    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.run(work, write=True, idempotent=True, autocommit=True)
    finally:
        await db.dispose()
    assert attempts > 1  # the idempotent write was retried
    # the last attempt alone says "nothing written"; the first may have committed
    assert caught.value.may_have_committed is True
    assert "earlier attempt may have committed" in str(caught.value)
