"""The benchmark's command line: its options, and a usage error before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import cli


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])

    assert exit_info.value.code == 0
    output = capsys.readouterr().out
    assert "--quick" in output
    assert "--dialect" in output
    assert "--chart" in output


def test_an_unknown_dialect_is_rejected_before_running(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(**_kwargs: Any) -> Any:
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(cli, "run_benchmarks", must_not_run)

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--dialect", "oracle"])

    assert exit_info.value.code == 2
    assert "invalid choice: 'oracle'" in capsys.readouterr().err


def test_the_chart_goes_beside_the_markdown_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    async def record(**kwargs: Any) -> int:
        calls.append(kwargs)
        return 0

    monkeypatch.setattr(cli, "run_benchmarks", record)
    markdown = tmp_path / "b.md"

    assert cli.main(["--quick", "--markdown", str(markdown)]) == 0
    assert (
        cli.main(["--quick", "--markdown", str(markdown), "--chart", str(tmp_path / "c.png")]) == 0
    )
    assert cli.main(["--quick"]) == 0

    assert [call["chart_path"] for call in calls] == [
        tmp_path / "b-core-vs-raw.png",
        tmp_path / "c.png",
        None,
    ]
