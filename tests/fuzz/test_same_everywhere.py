"""A rejected input is rejected the same way on every backend: same class, same message.

Each invalid call runs on all four backends (legacy and core SQLite, PostgreSQL,
MariaDB); the limits are checked before any SQL, by the one ``_validate``
module both backends share, so the four errors must be identical. Valid calls
are left to the per-repository tests (their outcome may depend on the data).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ._harness import EXAMPLES, FUZZ, Call, Fuzz, Strategies
from .test_audit import STRATEGIES as AUDIT
from .test_memory import STRATEGIES as MEMORY
from .test_messages import STRATEGIES as MESSAGES
from .test_participants import STRATEGIES as PARTICIPANTS
from .test_sessions import STRATEGIES as SESSIONS

ALL: Strategies = {**SESSIONS, **MESSAGES, **MEMORY, **AUDIT, **PARTICIPANTS}


@pytest.mark.sqlite
@pytest.mark.legacy
@pytest.mark.postgresql
@pytest.mark.mysql
def test_rejections_are_identical_on_every_backend(
    tmp_path: Path, postgresql_empty_url: str, mysql_empty_url: str
) -> None:
    targets = [
        ("legacy", f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}"),
        ("core", f"sqlite+aiosqlite:///{tmp_path / 'core.db'}"),
        ("core", postgresql_empty_url),
        ("core", mysql_empty_url),
    ]
    compared = 0
    with contextlib.ExitStack() as stack:
        fuzzes = [stack.enter_context(Fuzz(backend, url)) for backend, url in targets]
        state = fuzzes[0].state
        # every strategy built once, from the first backend's seed (the seeds are alike)
        calls = {
            method: make(state) for method, make in ALL.items() if method != "memory.purge_expired"
        }

        @settings(FUZZ, max_examples=EXAMPLES * 12)
        @given(st.sampled_from(sorted(calls)).flatmap(calls.__getitem__))
        def example(drawn: Call) -> None:
            nonlocal compared
            assume(drawn.valid is False)
            errors = [fuzz.check(drawn) for fuzz in fuzzes]
            seen = {(type(e).__name__, str(e)) for e in errors}
            assert len(seen) == 1, f"{drawn.describe()}: {seen}"
            compared += 1

        example()
    assert compared > 0
    print(f"\n{compared} rejected calls compared across the four backends")
