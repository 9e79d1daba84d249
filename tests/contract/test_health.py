"""``store.health(timeout)`` never raises, whatever it is given.

A timeout that is not a positive finite number of seconds is reported in the
report's ``error``; a very long one is honoured (the probe answers at once).
The same on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from contextstore import HealthReport, Store

pytestmark = pytest.mark.asyncio

NOT_A_TIMEOUT: list[Any] = [
    math.nan,
    math.inf,
    -math.inf,
    0,
    0.0,
    -1,
    -1e-9,
    None,
    "5",
    True,
    b"5",
    [5],
]
LONG_TIMEOUTS: list[Any] = [1e308, 10**400, 86_401, 3, 0.5]


async def test_a_timeout_that_is_not_a_positive_finite_number_is_reported(store: Store) -> None:
    for timeout in NOT_A_TIMEOUT:
        report = await store.health(timeout=timeout)
        assert isinstance(report, HealthReport)
        assert report.ok is False, timeout
        assert report.error is not None
        assert report.error.startswith("timeout must be a positive"), (timeout, report.error)
        assert report.backend == store.backend
    # the Store still answers a proper probe afterwards
    assert (await store.health(timeout=5.0)).ok


async def test_any_positive_finite_timeout_is_honoured(store: Store) -> None:
    for timeout in LONG_TIMEOUTS:
        report = await store.health(timeout=timeout)
        assert report.ok, (timeout, report.error)
        assert report.error is None
