"""Arguments that cannot work are refused when the app is built, with a message
naming them, not at the first request or probe."""

from __future__ import annotations

import math

import pytest
from fastapi import FastAPI

from contextstore import ConfigurationError, ContextStoreError
from contextstore.fastapi import add_exception_handlers, health_router

from .test_import import _run


@pytest.mark.parametrize("timeout", [0, -1.0, math.nan, math.inf, True, "5"])
def test_health_router_refuses_a_timeout_that_cannot_bound_a_probe(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match="health_router: timeout must be a positive"):
        health_router(timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_after", [-1, 1.5, True, "5"])
def test_add_exception_handlers_refuses_a_bad_retry_after(retry_after: object) -> None:
    app = FastAPI()
    with pytest.raises(ConfigurationError, match="retry_after must be a whole number"):
        add_exception_handlers(app, retry_after=retry_after)  # type: ignore[arg-type]
    assert ContextStoreError not in app.exception_handlers


def test_a_fastapi_without_dependency_scopes_is_refused() -> None:
    # before FastAPI 0.121 a unit of work could only commit after the response
    done = _run(
        "import fastapi\n"
        "def Depends(dependency=None, *, use_cache=True): ...\n"
        "fastapi.Depends = Depends\n"
        "try:\n"
        "    import contextstore.fastapi\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "needs FastAPI 0.121 or later" in done.stdout
