from __future__ import annotations

import contextstore.errors as errors


def test_tree_matches_the_design() -> None:
    assert issubclass(errors.ValidationError, errors.ContextStoreError)
    assert issubclass(errors.ValidationError, ValueError)
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.PoolExhaustedError, errors.DatabaseUnavailableError)
    for name in ("ConflictError", "ConfigurationError", "QueryTimeoutError"):
        assert issubclass(getattr(errors, name), errors.ContextStoreError)


def test_may_have_committed_defaults_to_false() -> None:
    assert errors.DatabaseUnavailableError("x").may_have_committed is False
    assert errors.DatabaseUnavailableError("x", may_have_committed=True).may_have_committed
