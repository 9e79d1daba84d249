"""The Literal-typed parameters, as a type checker sees them: ``usage.py`` under mypy --strict."""

from __future__ import annotations

from pathlib import Path

from mypy import api

USAGE = Path(__file__).with_name("usage.py")


def test_usage_type_checks_and_every_wrong_literal_is_flagged() -> None:
    # mypy's default cache (.mypy_cache, shared with `mypy src`) keeps this fast
    out, err, status = api.run(
        [
            "--strict",
            "--warn-unused-ignores",
            "--no-error-summary",
            str(USAGE),
        ]
    )
    assert status == 0, out + err
    assert out == ""
