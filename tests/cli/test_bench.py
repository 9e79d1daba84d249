"""`contextstore bench` hands its arguments to the benchmark harness unchanged."""

from __future__ import annotations

from typer.testing import CliRunner

from contextstore.cli import app


def test_bench_help_is_the_harness_help() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"])

    assert result.exit_code == 0, result.output
    assert "--quick" in result.output
    assert "--dialect" in result.output


def test_bench_rejects_an_unknown_dialect_before_running() -> None:
    result = CliRunner().invoke(app, ["bench", "--dialect", "oracle"])

    assert result.exit_code == 2
    assert "invalid choice: 'oracle'" in result.output
