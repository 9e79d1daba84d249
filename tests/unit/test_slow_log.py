"""The slow-statement log's text rules, without a database: a long text is cut,
a statement with its values written into the text is logged without them (the
timing itself is tested on the three dialects in tests/observability)."""

from __future__ import annotations

import logging

import pytest

from contextstore._slow import LOGGER_NAME, MAX_TEXT, _without_values, report


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]


def test_a_long_statement_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER_NAME)
    sql = "SELECT " + ", ".join(["?"] * 5000)
    report(sql, 2.0, 1.0)
    (message,) = messages(caplog)
    assert message.startswith("slow statement (2000.0 ms, over 1000 ms): SELECT ?, ?")
    assert message.endswith(f"... ({len(sql)} characters)")
    assert len(message) < MAX_TEXT + 100


def test_a_statement_at_the_threshold_is_not_slow(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER_NAME)
    report("SELECT 1", 0.25, 0.25)
    assert messages(caplog) == []


def test_a_statement_with_its_values_in_the_text_is_logged_without_them() -> None:
    # what MySQL's bulk path sends: the driver's escaped literals in the text
    sql = "INSERT INTO t (a, b) VALUES ('secret-value', 1), ('x', 2)"
    assert _without_values(sql) == "INSERT INTO t (a, b) VALUES (values not shown)"
    assert "secret" not in _without_values("REPLACE t SET a = 'secret-value'")
