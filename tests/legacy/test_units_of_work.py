"""Units of work on the legacy backend: the repositories only, like ``store.db``."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from contextstore import ConfigurationError
from contextstore.schema import sessions

from .conftest import OpenStore

pytestmark = [pytest.mark.sqlite, pytest.mark.legacy]


async def test_statement_methods_on_a_legacy_unit_are_a_configuration_error(
    open_store: OpenStore,
) -> None:
    async with open_store("legacy") as store, store.transaction() as tx:
        await tx.sessions.create(purpose="plan", created_by="planner", session_id="s1")
        with pytest.raises(ConfigurationError, match="backend 'core'"):
            await tx.fetch_value(select(func.count()).select_from(sessions))
        # refused before any SQL: the unit goes on and commits
        await tx.participants.join("s1", "coder")
    async with open_store("legacy") as store:
        assert [p.agent_id for p in await store.participants.list("s1")] == ["coder"]
